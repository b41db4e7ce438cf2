// The readiness probe: is something answering behind a published port?

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "kasm/agent/local_agent.hpp"

namespace kasm::agent {
namespace {

// How long a connection must stay open (or send its first bytes) to count as answered. Docker's
// userland proxy accepts on the published port before the container listens, and closes the
// connection at once when the container refuses it: a bare connect() would report ready too early.
constexpr int kSettleMillis = 30;

enum class Probe { kReady, kNotYet };

Probe probeOnce(const sockaddr_storage& address, socklen_t length, Duration connect_timeout) {
  int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Probe::kNotYet;
  Probe result = Probe::kNotYet;
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), length);
  bool connected = rc == 0;
  if (!connected && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(connect_timeout.count())) == 1) {
      int err = 0;
      socklen_t len = sizeof(err);
      connected = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
  }
  if (connected) {
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, kSettleMillis);
    if (ready == 0) {
      result = Probe::kReady;  // Held open: the server accepted and waits for us to speak.
    } else if (ready == 1 && !(p.revents & (POLLERR | POLLHUP))) {
      char byte;
      // A greeting (VNC, SSH) means ready; an immediate EOF means the proxy found nobody home.
      if (::recv(fd, &byte, 1, MSG_PEEK) > 0) result = Probe::kReady;
    }
  }
  ::close(fd);
  return result;
}

}  // namespace

Result<void> waitForTcp(const std::string& host_port, Duration connect_timeout, Duration interval, int attempts) {
  const auto colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return invalidArgument("readiness probe: '" + host_port + "' is not host:port");
  std::string host = host_port.substr(0, colon);
  const std::string port = host_port.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || !found) {
    return invalidArgument("readiness probe: '" + host_port + "' is not a numeric address and port");
  }
  sockaddr_storage address{};
  std::memcpy(&address, found->ai_addr, found->ai_addrlen);
  const socklen_t length = found->ai_addrlen;
  ::freeaddrinfo(found);

  // Sleeps grow from 5 ms to `interval`: a quick service is seen at once, and a slow one is not
  // hammered (each failed probe costs the engine's proxy a connect to the container too, which
  // slows the launches running beside it).
  Duration pause = std::min<Duration>(interval, std::chrono::milliseconds(5));
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (probeOnce(address, length, connect_timeout) == Probe::kReady) return okResult();
    std::this_thread::sleep_for(pause);
    pause = std::min<Duration>(interval, pause * 2);
  }
  return deadlineExceeded("nothing answered on " + host_port + " after " + std::to_string(attempts) + " attempts");
}

}  // namespace kasm::agent
