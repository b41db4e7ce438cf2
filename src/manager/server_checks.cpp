// Connection checks of fixed servers: a TCP connect to each enabled server, all at once, bounded by
// one timeout. A server that accepts is running; one that refuses or stays silent is missing, then
// dead (Manager::recordServerCheck). Kasm marks servers the same way from its own checks.
//
// A VNC server is also logged in to: TigerVNC counts every connection that ends before it has
// authenticated as a failed login and, after five, refuses its address for a while, so a bare
// connect every few seconds would lock the proxy out of an idle server. The check completes VNC
// Authentication with the stored password (which clears that count) and a shared ClientInit (which
// disconnects nobody). A VNC server with no stored password (its users give theirs) is not checked.

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include "auth/vnc_auth.hpp"
#include "manager/manager_impl.hpp"

namespace kasm {
namespace {

// Why a VNC check failed when the server refused the stored password. Such a server is not logged
// in to again (each try would count against the proxy's address) until its password is changed.
constexpr std::string_view kVncRefused = "the server refused the stored VNC password";

struct Probe {
  ServerId id;
  int fd = -1;
  std::string failure;  // Set when the check already failed (no address, refused at once).
  bool done = false;
  std::optional<std::string> vnc_password;  // Set for a VNC server: log in after connecting.
};

using Deadline = std::chrono::steady_clock::time_point;

// Reads exactly `n` bytes before `deadline`.
bool readExactly(int fd, unsigned char* out, std::size_t n, Deadline deadline) {
  std::size_t got = 0;
  while (got < n) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    const ssize_t r = ::recv(fd, out + got, n - got, 0);
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

bool writeAll(int fd, const void* data, std::size_t n) {
  return ::send(fd, data, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
}

// The client side of an RFB 3.8 handshake up to ServerInit; empty on success, else why not.
std::string vncLogin(int fd, const std::string& password, Deadline deadline) {
  unsigned char version[12];
  if (!readExactly(fd, version, 12, deadline) || std::memcmp(version, "RFB 003.", 8) != 0) return "no RFB greeting";
  if (!writeAll(fd, "RFB 003.008\n", 12)) return "connection lost";
  unsigned char count = 0;
  if (!readExactly(fd, &count, 1, deadline) || count == 0) return "the server offers no security type";
  unsigned char types[255];
  if (!readExactly(fd, types, count, deadline)) return "connection lost";
  const bool none = std::memchr(types, 1, count) != nullptr;
  const bool vnc = std::memchr(types, 2, count) != nullptr;
  const unsigned char chosen = none ? 1 : vnc ? 2 : 0;
  if (chosen == 0) return "no security type the proxy speaks";
  if (!writeAll(fd, &chosen, 1)) return "connection lost";
  if (chosen == 2) {
    unsigned char challenge[16];
    if (!readExactly(fd, challenge, 16, deadline)) return "connection lost";
    const auto response = auth::detail::vncAuthResponse(password, challenge);
    if (!writeAll(fd, response.data(), response.size())) return "connection lost";
  }
  unsigned char result[4];
  if (!readExactly(fd, result, 4, deadline)) return "connection lost";
  if (result[0] | result[1] | result[2] | result[3]) return std::string(kVncRefused);
  const unsigned char shared = 1;
  if (!writeAll(fd, &shared, 1)) return "connection lost";
  unsigned char init[24];
  if (!readExactly(fd, init, 24, deadline)) return "no ServerInit";
  return {};
}

// Starts a non-blocking connect; `failure` says why when it could not start.
void startProbe(Probe& p, const Server& s) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* ai = nullptr;
  std::string host = s.hostname;
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const std::string port = std::to_string(s.port);
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &ai); rc != 0 || !ai) {
    p.failure = "cannot resolve " + host + ": " + ::gai_strerror(rc);
    return;
  }
  p.fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (p.fd < 0) {
    p.failure = std::string("no socket: ") + std::strerror(errno);
  } else if (::connect(p.fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
    p.failure = std::string("connection failed: ") + std::strerror(errno);
  }
  ::freeaddrinfo(ai);
}

}  // namespace

Result<int> Manager::checkServers(Duration timeout) {
  auto& im = *impl_;
  KASM_ASSIGN_OR_RETURN(auto rows, im.repo.list<Server>());
  std::vector<Probe> probes;
  for (const auto& r : rows) {
    if (!r.value.enabled) continue;
    Probe p;
    p.id = r.value.id;
    if (r.value.connection_type == ServerConnectionType::kVnc) {
      if (r.value.connection_password_sealed.empty()) continue;  // See the top of this file.
      if (r.value.status_reason == kVncRefused) {
        p.failure = r.value.status_reason;
        probes.push_back(std::move(p));
        continue;
      }
      auto password = im.unsealSecret(r.value.connection_password_sealed);
      if (!password.ok()) {
        p.failure = "the stored VNC password does not unseal";
      } else {
        p.vnc_password = std::move(*password);
      }
    }
    if (p.failure.empty()) startProbe(p, r.value);
    probes.push_back(std::move(p));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<Probe*> waiting;
    for (auto& p : probes) {
      if (p.done || !p.failure.empty() || p.fd < 0) continue;
      fds.push_back({p.fd, POLLOUT, 0});
      waiting.push_back(&p);
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (fds.empty() || left <= 0) break;
    if (::poll(fds.data(), fds.size(), static_cast<int>(left)) < 0 && errno != EINTR) break;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) waiting[i]->failure = std::string("connection failed: ") + std::strerror(err);
      waiting[i]->done = true;
    }
  }
  // VNC servers that accepted: log in, one after the other, each within its own timeout.
  for (auto& p : probes) {
    if (p.done && p.failure.empty() && p.vnc_password) {
      const std::string why = vncLogin(p.fd, *p.vnc_password, std::chrono::steady_clock::now() + timeout);
      if (!why.empty()) p.failure = why;
    }
  }
  int answering = 0;
  for (auto& p : probes) {
    if (p.fd >= 0) ::close(p.fd);
    const bool answered = p.done && p.failure.empty();
    if (!answered && p.failure.empty()) p.failure = "no answer within the check's timeout";
    answering += answered ? 1 : 0;
    // The row may be gone by now (removed meanwhile): nothing to record then.
    auto r = recordServerCheck(p.id, answered, p.failure);
    if (!r.ok() && r.error().code() != ErrorCode::kNotFound) return r.error();
  }
  return answering;
}

}  // namespace kasm
