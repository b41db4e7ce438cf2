#pragma once

// Loopback peers for the kasm::net tests: tiny upstreams (HTTP echo, WebSocket echo, raw TCP echo)
// and blocking clients, all on 127.0.0.1 with Beast's synchronous API so the tests read plainly.

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace kasm::net::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

// Accepts on an ephemeral loopback port and runs `serve` on a thread per connection. The
// destructor shuts every connection down, joins the handlers, then closes.
class LoopbackListener {
 public:
  using Serve = std::function<void(tcp::socket&)>;
  explicit LoopbackListener(Serve serve)
      : serve_(std::move(serve)), acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { acceptLoop(); });
  }
  ~LoopbackListener() {
    stopping_ = true;
    beast::error_code ec;
    // Wake accept() by connecting once; then close everything.
    tcp::socket poke(ioc_);
    poke.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    accept_thread_.join();
    // Shutting a connection down wakes its handler if it is blocked in a read. The handler owns its
    // socket object (it may close it meanwhile), so the shutdown goes through a duplicate of the
    // descriptor taken at accept, which no one else closes or reuses; the sockets are closed once
    // their handlers are done (touching them from here raced with the handlers: found by TSan).
    {
      std::lock_guard lock(mutex_);
      for (int fd : wake_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : threads_) t.join();
    for (auto& s : sockets_) s->close(ec);
    for (int fd : wake_fds_) ::close(fd);
  }
  std::uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_.load(); }

 private:
  void acceptLoop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(ioc_);
      beast::error_code ec;
      acceptor_.accept(*socket, ec);
      if (ec || stopping_) return;
      accepted_++;
      std::lock_guard lock(mutex_);
      sockets_.push_back(socket);
      wake_fds_.push_back(::dup(socket->native_handle()));
      threads_.emplace_back([this, socket] {
        try {
          serve_(*socket);
        } catch (const std::exception&) {
        }
        beast::error_code ignored;
        socket->shutdown(tcp::socket::shutdown_both, ignored);
      });
    }
  }

  Serve serve_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::mutex mutex_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::vector<int> wake_fds_;  // dup()s of the accepted descriptors, for shutdown().
  std::vector<std::thread> threads_;
  std::thread accept_thread_;
};

// An HTTP upstream that describes what it received: a body of "key: value" lines (method, target,
// selected headers, body size), or, for GET /big/<n>, n bytes of a repeating pattern.
inline void serveHttpEcho(tcp::socket& socket) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    beast::error_code ec;
    http::read(socket, buffer, parser, ec);
    if (ec) return;
    auto& req = parser.get();
    http::response<http::string_body> res{http::status::ok, req.version()};
    std::string target(req.target());
    if (target.starts_with("/big/")) {
      std::size_t n = std::stoul(target.substr(5));
      res.body().resize(n);
      for (std::size_t i = 0; i < n; ++i) res.body()[i] = static_cast<char>('a' + i % 26);
    } else {
      auto header = [&](http::field f) { return std::string(req[f]); };
      res.body() = "method: " + std::string(req.method_string()) + "\ntarget: " + target +
                   "\ncookie: " + header(http::field::cookie) +
                   "\nauthorization: " + header(http::field::authorization) +
                   "\nx-forwarded-for: " + std::string(req["X-Forwarded-For"]) +
                   "\nx-forwarded-proto: " + std::string(req["X-Forwarded-Proto"]) +
                   "\nconnection: " + header(http::field::connection) +
                   "\nbody-size: " + std::to_string(req.body().size()) + "\n";
    }
    res.set(http::field::content_type, "text/plain");
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    if (req.method() == http::verb::head) {
      http::response_serializer<http::string_body> sr{res};
      http::write_header(socket, sr, ec);
    } else {
      http::write(socket, res, ec);
    }
    if (ec || !req.keep_alive()) return;
  }
}

// A WebSocket upstream that echoes every message.
inline void serveWebSocketEcho(tcp::socket& socket) {
  websocket::stream<tcp::socket&> ws(socket);
  ws.accept();
  beast::flat_buffer buffer;
  for (;;) {
    buffer.clear();
    ws.read(buffer);
    ws.binary(ws.got_binary());
    ws.write(buffer.data());
  }
}

// A raw TCP upstream that echoes bytes (stands in for a VNC server).
inline void serveTcpEcho(tcp::socket& socket) {
  char buf[16384];
  for (;;) {
    beast::error_code ec;
    std::size_t n = socket.read_some(asio::buffer(buf), ec);
    if (ec) return;
    asio::write(socket, asio::buffer(buf, n), ec);
    if (ec) return;
  }
}

inline tcp::socket connectTo(asio::io_context& ioc, std::uint16_t port) {
  tcp::socket s(ioc);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  return s;
}

// One blocking request on a fresh connection.
inline http::response<http::string_body> httpRequest(std::uint16_t port, http::request<http::string_body> req) {
  asio::io_context ioc;
  auto s = connectTo(ioc, port);
  req.set(http::field::host, "127.0.0.1");
  req.prepare_payload();
  http::write(s, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256 * 1024 * 1024);
  http::read(s, buffer, parser);
  return parser.release();
}

inline http::response<http::string_body> httpGet(std::uint16_t port, std::string target,
                                                 std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::request<http::string_body> req{http::verb::get, target, 11};
  for (auto& [k, v] : headers) req.set(k, v);
  return httpRequest(port, std::move(req));
}

// For hand-written upstreams: the next request head on `socket` (through the blank line), taken
// from the front of `in`, which keeps what was read beyond it; nullopt once the peer is gone.
inline std::optional<std::string> readRequestHead(tcp::socket& socket, std::string& in) {
  char buf[4096];
  std::size_t end;
  while ((end = in.find("\r\n\r\n")) == std::string::npos) {
    beast::error_code ec;
    const std::size_t n = socket.read_some(asio::buffer(buf), ec);
    if (ec) return std::nullopt;
    in.append(buf, n);
  }
  std::string head = in.substr(0, end + 4);
  in.erase(0, end + 4);
  return head;
}

// Writes raw bytes and reads whatever comes back until the server closes (bounded).
inline std::string rawExchange(std::uint16_t port, const std::string& bytes) {
  asio::io_context ioc;
  auto s = connectTo(ioc, port);
  beast::error_code write_error;  // The server may answer and close before it has read it all.
  asio::write(s, asio::buffer(bytes), write_error);
  std::string out;
  char buf[4096];
  for (int i = 0; i < 1000; ++i) {
    beast::error_code ec;
    std::size_t n = s.read_some(asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

}  // namespace kasm::net::testing
