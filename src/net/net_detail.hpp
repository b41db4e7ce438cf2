#pragma once

// Internal to kasm::net: the Beast/Asio types shared by the server and the proxy. Only
// src/net/*.cpp include this, so the public headers and their users never compile Beast.

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <string>

#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"

namespace kasm::net::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Executor = asio::strand<asio::io_context::executor_type>;
using TcpStream = beast::basic_stream<tcp, Executor>;

// Coroutine completion tokens: exceptions for "give up on this connection", tuples where an error
// is an expected outcome to branch on.
inline constexpr auto kAwait = asio::use_awaitable;
inline constexpr auto kAwaitTuple = asio::as_tuple(asio::use_awaitable);

// A byte stream that is plain TCP or TLS over it, chosen at run time, so the HTTP and proxy code is
// compiled once rather than once per stream type. Timeouts come from the TCP layer (expires_after).
class Transport {
 public:
  using executor_type = Executor;

  explicit Transport(TcpStream::socket_type&& socket) : tcp_(std::move(socket)) {}
  explicit Transport(const Executor& ex) : tcp_(ex) {}

  void enableTls(asio::ssl::context& ctx) { tls_ = std::make_unique<asio::ssl::stream<TcpStream&>>(tcp_, ctx); }
  bool secure() const noexcept { return tls_ != nullptr; }
  asio::ssl::stream<TcpStream&>* tls() noexcept { return tls_.get(); }
  TcpStream& tcp() noexcept { return tcp_; }
  executor_type get_executor() noexcept { return tcp_.get_executor(); }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(beast::error_code, std::size_t)>(
        [this](auto handler, const Buffers& b) {
          if (tls_)
            tls_->async_read_some(b, std::move(handler));
          else
            tcp_.async_read_some(b, std::move(handler));
        },
        token, buffers);
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(beast::error_code, std::size_t)>(
        [this](auto handler, const Buffers& b) {
          if (tls_)
            tls_->async_write_some(b, std::move(handler));
          else
            tcp_.async_write_some(b, std::move(handler));
        },
        token, buffers);
  }

  // Abrupt close (no TLS close_notify): used on errors, timeouts and closeSession.
  void close() noexcept {
    beast::error_code ec;
    tcp_.socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp_.socket().close(ec);
  }

 private:
  TcpStream tcp_;
  std::unique_ptr<asio::ssl::stream<TcpStream&>> tls_;
};

// What the proxy needs to know about the client side of a connection.
struct ClientContext {
  Transport& transport;
  std::string remote_address;
  // Set by the server when it is stopping: finish this exchange, then close.
  const std::atomic<bool>& stopping;
  // Per-connection proxy state (kept upstream connection, buffers), owned by the connection so
  // keep-alive requests reuse it; the proxy alone knows its type.
  std::shared_ptr<void>& proxy_state;
};

using HeaderParser = http::request_parser<http::empty_body>;

// Serves one proxied request whose header is in `parser` (the body, if any, is still unread in
// `buffer` and the stream). Returns true when the client connection may be reused.
asio::awaitable<bool> serveProxied(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                                   HeaderParser& parser);

// Writes a small complete response (used for errors). `keep_alive` false adds Connection: close.
asio::awaitable<void> writeSimple(Transport& stream, unsigned version, int status, std::string body, bool keep_alive,
                                  const HttpHeaders* extra = nullptr);

}  // namespace kasm::net::detail
