// Connection checks of fixed servers: a TCP connect to each enabled server, all at once, bounded by
// one timeout. A server that accepts is running; one that refuses or stays silent is missing, then
// dead (Manager::recordServerCheck). Kasm marks servers the same way from its own checks.

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "manager/manager_impl.hpp"

namespace kasm {
namespace {

struct Probe {
  ServerId id;
  int fd = -1;
  std::string failure;  // Set when the check already failed (no address, refused at once).
  bool done = false;
};

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
    startProbe(p, r.value);
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
