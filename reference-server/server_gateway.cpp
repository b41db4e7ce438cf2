#include "server_gateway.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "kasm/auth/secret.hpp"
#include "kasm/gateway/gateway.hpp"
#include "server_app.hpp"

extern char** environ;

namespace kasm::server {

std::string findGatewayBinary() {
  if (const char* v = std::getenv("KASM_GATEWAY_BIN"); v && *v) return v;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  const auto beside = self.parent_path() / "kasm-gateway";
  return std::filesystem::exists(beside, ec) ? beside.string() : std::string();
}

Result<std::unique_ptr<GatewayProcess>> GatewayProcess::spawn(std::string binary, std::string key_file) {
  std::unique_ptr<GatewayProcess> p(new GatewayProcess(std::move(binary), std::move(key_file)));
  std::lock_guard lock(p->mu_);
  KASM_RETURN_IF_ERROR(p->launchLocked());
  return p;
}

GatewayProcess::~GatewayProcess() {
  std::lock_guard lock(mu_);
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
}

Result<void> GatewayProcess::launchLocked() {
  last_launch_ = std::chrono::steady_clock::now();
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return unavailable("cannot make a pipe for kasm-gateway");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  std::vector<std::string> args = {binary_, "--key-file", key_file_, "--listen", "127.0.0.1:0", "--exit-with-parent"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, binary_.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    return unavailable("cannot start " + binary_ + ": " + std::string(std::strerror(rc)));
  }
  // "kasm-gateway: listening on 127.0.0.1:PORT (backends: ...)"
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (line.find('\n') == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    pollfd pfd{out[0], POLLIN, 0};
    if (left <= 0 || ::poll(&pfd, 1, static_cast<int>(left)) <= 0) break;
    char buf[256];
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);  // Later lines go nowhere: the gateway logs on stderr.
  const std::string marker = "listening on ";
  const auto at = line.find(marker);
  const auto end = at == std::string::npos ? std::string::npos : line.find(' ', at + marker.size());
  if (at == std::string::npos || end == std::string::npos) {
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
    return unavailable("kasm-gateway did not start: " + (line.empty() ? std::string("no output") : line));
  }
  pid_ = pid;
  address_ = line.substr(at + marker.size(), end - at - marker.size());
  logLine("gateway_started", binary_ + " on " + address_ + " (pid " + std::to_string(pid) + ")");
  return {};
}

Result<std::string> GatewayProcess::address() {
  std::lock_guard lock(mu_);
  if (pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == pid_) {
    logLine("gateway_exited", "pid " + std::to_string(pid_) + "; starting a new one");
    pid_ = -1;
  }
  if (pid_ <= 0) {
    if (std::chrono::steady_clock::now() - last_launch_ < std::chrono::seconds(5))
      return unavailable("the desktop gateway is restarting; try again in a few seconds");
    KASM_RETURN_IF_ERROR(launchLocked());
  }
  return address_;
}

// ---- ServerApp: the gateway and the targets of fixed-server sessions ----------------------------

Result<void> ServerApp::setUpGateway(const std::string& key) {
  if (config_.gateway == "off") return {};
  std::string key_file = config_.gateway_key_file;
  if (key_file.empty()) {
    // Derived from the installation's key, so every server of the installation writes the same one
    // and a gateway on another host can be given it.
    key_file = config_.data_dir + "/gateway.key";
    const std::string derived = auth::hmacSha256(key, "kasm gateway key");
    const int fd = ::open(key_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, derived.data(), derived.size()) != static_cast<ssize_t>(derived.size())) {
      if (fd >= 0) ::close(fd);
      return unavailable("cannot write " + key_file);
    }
    ::close(fd);
    gateway_key_ = derived;
  } else {
    std::ifstream in(key_file);
    std::getline(in, gateway_key_);
    if (gateway_key_.size() < 32) return invalidArgument("the gateway key file " + key_file + " holds no usable key");
  }
  if (config_.gateway != "auto") {
    gateway_address_ = config_.gateway;
    return {};
  }
  const std::string binary = findGatewayBinary();
  if (binary.empty()) {
    logLine("gateway_missing", "kasm-gateway not found beside kasm-server; RDP and SSH servers cannot be opened");
    return {};
  }
  auto process = GatewayProcess::spawn(binary, key_file);
  if (!process.ok()) {
    // RDP and SSH servers stay unreachable (their viewers say why); nothing else depends on it.
    logLine("gateway_failed", process.error().toString());
    return {};
  }
  gateway_process_ = std::move(*process);
  return {};
}

Result<net::ProxyTarget> ServerApp::serverTarget(const api::SessionAccess& access, net::ProxyTarget target) {
  KASM_ASSIGN_OR_RETURN(ServerConnection c, manager_->serverConnection(access.session));
  switch (c.type) {
    case ServerConnectionType::kVnc:
      // The proxy answers the server's VNC authentication: no browser holds its password.
      target.protocol = SessionProtocol::kVnc;
      target.vnc_password = c.password;
      return target;
    case ServerConnectionType::kKasmVnc: target.protocol = SessionProtocol::kHttps; return target;
    case ServerConnectionType::kRdp:
    case ServerConnectionType::kSsh: break;
  }
  // The zone's own gateway first (run near its servers), else this server's.
  std::string address = c.zone_gateway.empty() ? gateway_address_ : c.zone_gateway;
  if (c.zone_gateway.empty() && gateway_process_) {
    KASM_ASSIGN_OR_RETURN(address, gateway_process_->address());
  }
  if (address.empty()) {
    return unavailable(
        "no desktop gateway runs for RDP and SSH servers (kasm-server --gateway; see docs/operations.md)");
  }
  const bool rdp = c.type == ServerConnectionType::kRdp;
  spi::GatewayRequest r;
  r.protocol = rdp ? "rdp" : "ssh";
  r.host = c.host;
  r.port = c.port;
  r.username = c.username;
  r.password = c.password;
  r.domain = c.domain;
  r.private_key = c.private_key;
  r.security = std::string(enumName(c.security));
  r.certificate_policy = std::string(enumName(c.certificate_policy));
  r.keyboard_layout = c.keyboard_layout;
  r.session_id = access.session.str();
  if (!rdp) {
    r.width = 120;  // Columns and rows until the terminal says its size.
    r.height = 40;
  }
  KASM_ASSIGN_OR_RETURN(target.upstream_preamble, gateway::sealRequest(gateway_key_, r, clock_.now()));
  target.upstream = address;
  if (rdp) {
    // The gateway presents RDP as RFB with no password of its own; the bridge still terminates
    // RFB, so view-only viewers are filtered as on any desktop.
    target.protocol = SessionProtocol::kVnc;
    target.vnc_password = "";
  } else {
    target.protocol = SessionProtocol::kSsh;
    target.vnc_password.reset();
  }
  return target;
}

}  // namespace kasm::server
