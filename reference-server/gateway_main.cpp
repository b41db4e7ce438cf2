// kasm-gateway: the desktop gateway (kasm/gateway/gateway.hpp) as a program. kasm-server starts
// one beside itself by default; an installation can also run one per zone, on its own host, with
// the installation's gateway key file.
//
//   kasm-gateway --key-file FILE [--listen HOST:PORT] [--pins-file FILE] [--exit-with-parent]
//
// Prints "kasm-gateway: listening on HOST:PORT" on stdout once it accepts connections.

#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kasm/gateway/gateway.hpp"
#ifdef KASM_GATEWAY_HAS_RDP
#include "kasm/rdp/rdp_backend.hpp"
#endif
#ifdef KASM_GATEWAY_HAS_SSH
#include "kasm/ssh/ssh_backend.hpp"
#endif

namespace {

constexpr const char* kUsage =
    "usage: kasm-gateway --key-file FILE [--listen HOST:PORT] [--pins-file FILE] [--exit-with-parent]\n"
    "  --key-file FILE     the installation's gateway key (kasm-server writes <data-dir>/gateway.key)\n"
    "  --listen HOST:PORT  where to accept the proxy's connections (default 127.0.0.1:0, any free port)\n"
    "  --pins-file FILE    where server identities are pinned (default: FILE.pins beside the key)\n"
    "  --exit-with-parent  end when the process that started it ends (kasm-server's own gateway)\n";

int fail(const std::string& why) {
  std::fprintf(stderr, "kasm-gateway: %s\n%s", why.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  ::umask(077);
  std::vector<std::string> args(argv + 1, argv + argc);
  kasm::gateway::GatewayServerOptions options;
  std::string key_file;
  bool exit_with_parent = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string* { return i + 1 < args.size() ? &args[++i] : nullptr; };
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else if (a == "--key-file") {
      const auto* v = value();
      if (!v) return fail("--key-file needs a file");
      key_file = *v;
    } else if (a == "--listen") {
      const auto* v = value();
      const auto colon = v ? v->rfind(':') : std::string::npos;
      if (colon == std::string::npos) return fail("--listen needs HOST:PORT");
      options.listen_host = v->substr(0, colon);
      if (options.listen_host.size() > 2 && options.listen_host.front() == '[')
        options.listen_host = options.listen_host.substr(1, options.listen_host.size() - 2);
      try {
        const int port = std::stoi(v->substr(colon + 1));
        if (port < 0 || port > 65535) return fail("--listen: bad port");
        options.listen_port = static_cast<std::uint16_t>(port);
      } catch (...) {
        return fail("--listen: bad port");
      }
    } else if (a == "--pins-file") {
      const auto* v = value();
      if (!v) return fail("--pins-file needs a file");
      options.pins_file = *v;
    } else if (a == "--exit-with-parent") {
      exit_with_parent = true;
    } else {
      return fail("unknown argument " + a);
    }
  }
  if (key_file.empty()) return fail("--key-file is required");
  std::ifstream in(key_file);
  std::stringstream text;
  text << in.rdbuf();
  options.key = text.str();
  while (!options.key.empty() && (options.key.back() == '\n' || options.key.back() == '\r')) options.key.pop_back();
  if (!in || options.key.size() < 32) return fail("cannot read a key of 32 bytes or more from " + key_file);
  if (options.pins_file.empty()) options.pins_file = key_file + ".pins";
  if (exit_with_parent) ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (rlimit fds{}; ::getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < fds.rlim_max) {
    fds.rlim_cur = fds.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &fds);
  }

#ifdef KASM_GATEWAY_HAS_RDP
  kasm::spi::registerGatewayBackend("rdp", [] { return kasm::rdp::makeRdpBackend(); });
#endif
#ifdef KASM_GATEWAY_HAS_SSH
  kasm::spi::registerGatewayBackend("ssh", [] { return kasm::ssh::makeSshBackend(); });
#endif

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto server = kasm::gateway::GatewayServer::start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "kasm-gateway: %s\n", server.error().toString().c_str());
    return 1;
  }
  std::string backends;
  for (const auto& n : kasm::spi::gatewayBackendNames()) backends += (backends.empty() ? "" : ", ") + n;
  std::printf("kasm-gateway: listening on %s:%u (backends: %s)\n", options.listen_host.c_str(), (*server)->port(),
              backends.empty() ? "none" : backends.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  (*server)->stop();
  return 0;
}
