// kasm-server: the reference server on the kasm library.

#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <cstdio>

#include "server_app.hpp"

namespace {
// Two per viewer for the 20,000 viewers a server serves at most, and a reserve.
constexpr rlim_t kWantedDescriptors = 2 * 20000 + 1024;
}  // namespace

int main(int argc, char** argv) {
  // Everything kasm-server writes (the database, its WAL, keys, certificates, the first admin's
  // password) is private to the account that runs it.
  ::umask(077);
  // Every viewer holds a socket to us and one to a desktop: take enough descriptors for the
  // 20,000 viewers a server serves at most, above the hard limit when the system allows it (root),
  // else every descriptor the hard limit allows (the soft limit is often 1,024).
  if (rlimit fds{}; ::getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < kWantedDescriptors) {
    const rlimit raised{kWantedDescriptors, std::max<rlim_t>(kWantedDescriptors, fds.rlim_max)};
    if (::setrlimit(RLIMIT_NOFILE, &raised) != 0 && fds.rlim_cur < fds.rlim_max) {
      fds.rlim_cur = fds.rlim_max;
      (void)::setrlimit(RLIMIT_NOFILE, &fds);
    }
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  auto config = kasm::server::parseConfig(args);
  if (!config.ok()) {
    const bool help = config.error().code() == kasm::ErrorCode::kFailedPrecondition;
    std::fprintf(help ? stdout : stderr, "%s\n", config.error().message().c_str());
    return help ? 0 : 2;
  }
  if (config->command == "api-key-create") {
    auto store = kasm::server::openStore(*config);
    if (!store.ok()) {
      std::fprintf(stderr, "kasm-server: %s\n", store.error().toString().c_str());
      return 1;
    }
    kasm::SystemClock clock;
    auto key = kasm::server::createApiKey(**store, clock, config->api_key_name);
    if (!key.ok()) {
      std::fprintf(stderr, "kasm-server: %s\n", key.error().toString().c_str());
      return 1;
    }
    std::printf("%s\n", key->c_str());
    return 0;
  }

  // Signals are taken by sigwait on this thread, so every other thread starts with them blocked.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto app = kasm::server::ServerApp::create(*config);
  if (!app.ok()) {
    std::fprintf(stderr, "kasm-server: %s\n", app.error().toString().c_str());
    return 1;
  }
  auto started = (*app)->start();
  if (!started.ok()) {
    std::fprintf(stderr, "kasm-server: %s\n", started.error().toString().c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  std::printf("{\"event\":\"stopping\",\"detail\":\"signal %d\"}\n", sig);
  std::fflush(stdout);
  (*app)->drain();
  (*app)->stop();
  return 0;
}
