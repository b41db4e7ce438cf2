// GatewayServer: a plain POSIX accept loop with one thread per connection. Backends (FreeRDP,
// libssh) run blocking event loops of their own, so a thread each is the simple, honest model;
// the thread's stack is virtual memory, touched only as deep as the backend goes.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <set>
#include <thread>

#include "kasm/gateway/gateway.hpp"

namespace kasm::gateway {

struct GatewayServer::Impl {
  GatewayServerOptions options;
  FilePins pins;
  SystemClock clock;
  int listen_fd = -1;
  int wake[2] = {-1, -1};
  std::uint16_t port = 0;
  std::thread acceptor;
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::condition_variable idle;
  std::set<int> fds;  // Connections being served.

  explicit Impl(GatewayServerOptions o) : options(std::move(o)), pins(options.pins_file) {}

  void log(const std::string& what) { std::fprintf(stderr, "kasm-gateway: %s\n", what.c_str()); }

  // Reads the request line, one byte at a time after the first poll: it is short, and what follows
  // it belongs to the backend, so nothing past the "\n" may be consumed here.
  Result<std::string> readLine(int fd) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + options.request_timeout;
    char buf[512];
    while (line.size() < kMaxRequestLine) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) return deadlineExceeded("no request line in time");
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      // Peek, then take exactly up to the newline.
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_PEEK);
      if (n <= 0) return unavailable("closed before the request line");
      std::size_t take = static_cast<std::size_t>(n);
      bool done = false;
      for (std::size_t i = 0; i < take; ++i) {
        if (buf[i] == '\n') {
          take = i + 1;
          done = true;
          break;
        }
      }
      const ssize_t got = ::recv(fd, buf, take, 0);
      if (got <= 0) return unavailable("closed before the request line");
      line.append(buf, static_cast<std::size_t>(got));
      if (done) return line;
    }
    return invalidArgument("request line too long");
  }

  void serve(int fd) {
    auto line = readLine(fd);
    Result<spi::GatewayRequest> request =
        line.ok() ? openRequest(options.key, *line, clock.now()) : Result<spi::GatewayRequest>(line.error());
    if (!request.ok()) {
      log("refused a connection: " + request.error().toString());
      return;
    }
    auto backend = spi::makeGatewayBackend(request->protocol);
    if (!backend.ok()) {
      log("session " + request->session_id + ": " + backend.error().toString());
      return;
    }
    log("session " + request->session_id + ": " + request->protocol + " to " + request->host + ":" +
        std::to_string(request->port) + " as " + request->username);
    auto served = (*backend)->serve(*request, fd, pins);
    log("session " + request->session_id + ": ended" + (served.ok() ? "" : ": " + served.error().toString()));
  }

  void acceptLoop() {
    for (;;) {
      pollfd p[2] = {{listen_fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) continue;
      if (stopping || (p[1].revents & POLLIN)) return;
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      {
        std::lock_guard lock(mu);
        if (fds.size() >= options.max_connections) {
          log("connection limit reached (" + std::to_string(options.max_connections) + "); closing a new one");
          ::close(fd);
          continue;
        }
        fds.insert(fd);
      }
      std::thread([this, fd] {
        serve(fd);
        std::lock_guard lock(mu);
        fds.erase(fd);
        ::close(fd);
        idle.notify_all();
      }).detach();
    }
  }
};

GatewayServer::GatewayServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<GatewayServer>> GatewayServer::start(GatewayServerOptions options) {
  if (options.key.size() < 32) return invalidArgument("the gateway key must be at least 32 bytes");
  if (options.pins_file.empty()) return invalidArgument("the gateway needs a pins file");
  auto impl = std::make_unique<Impl>(std::move(options));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  addrinfo* ai = nullptr;
  const std::string port = std::to_string(impl->options.listen_port);
  if (::getaddrinfo(impl->options.listen_host.c_str(), port.c_str(), &hints, &ai) != 0 || !ai)
    return invalidArgument("cannot listen on '" + impl->options.listen_host + "': not a numeric address");
  impl->listen_fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(impl->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool bound = impl->listen_fd >= 0 && ::bind(impl->listen_fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
                     ::listen(impl->listen_fd, 128) == 0;
  ::freeaddrinfo(ai);
  if (!bound) {
    if (impl->listen_fd >= 0) ::close(impl->listen_fd);
    return unavailable("cannot listen on " + impl->options.listen_host + ":" + port);
  }
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  ::getsockname(impl->listen_fd, reinterpret_cast<sockaddr*>(&sa), &len);
  impl->port = ntohs(sa.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&sa)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&sa)->sin_port);
  if (::pipe2(impl->wake, O_CLOEXEC) != 0) {
    ::close(impl->listen_fd);
    return unavailable("cannot make the gateway's wake-up pipe");
  }
  impl->acceptor = std::thread([p = impl.get()] { p->acceptLoop(); });
  return std::unique_ptr<GatewayServer>(new GatewayServer(std::move(impl)));
}

GatewayServer::~GatewayServer() {
  stop();
}

std::uint16_t GatewayServer::port() const noexcept {
  return impl_->port;
}

std::size_t GatewayServer::activeConnections() const noexcept {
  std::lock_guard lock(impl_->mu);
  return impl_->fds.size();
}

void GatewayServer::stop() {
  auto& im = *impl_;
  if (im.stopping.exchange(true)) return;
  const char b = 1;
  (void)!::write(im.wake[1], &b, 1);
  if (im.acceptor.joinable()) im.acceptor.join();
  ::close(im.listen_fd);
  std::unique_lock lock(im.mu);
  // Backends end when their client socket does; the fds stay open (and owned by their threads)
  // until those threads close them, so no number is reused under a running backend.
  for (int fd : im.fds) ::shutdown(fd, SHUT_RDWR);
  im.idle.wait(lock, [&] { return im.fds.empty(); });
  ::close(im.wake[0]);
  ::close(im.wake[1]);
}

}  // namespace kasm::gateway
