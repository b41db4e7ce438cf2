#pragma once

// Internal to kasm::net: the Beast/Asio types shared by the server and the proxy. Only
// src/net/*.cpp include this, so the public headers and their users never compile Beast.

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <ctime>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"
#include "net/http_scan.hpp"

namespace kasm::net::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
// One thread per io_context (see HttpServer): a connection, its upstream and its timers share one
// thread, so no strands and no cross-thread wake-ups on the data path.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;

// Coroutine completion tokens: exceptions for "give up on this connection", tuples where an error
// is an expected outcome to branch on.
// Coroutines are bound to the concrete io_context executor, not any_io_executor: every resumption
// then dispatches without type erasure.
template <class T = void>
using Awaitable = asio::awaitable<T, Executor>;
inline constexpr asio::use_awaitable_t<Executor> kAwait{};
inline constexpr auto kAwaitTuple = asio::as_tuple(asio::use_awaitable_t<Executor>{});

class TimedSocket;

// The clock of socket deadlines: CLOCK_MONOTONIC_COARSE, read without a timer-counter access
// (a few ns where steady_clock costs tens, and a proxied request moves several deadlines). Its
// resolution of a few milliseconds is finer than the sweep period.
inline std::int64_t deadlineClockNs() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Deadlines of every TimedSocket of one io_context, checked by one periodic timer. Moving a
// deadline is a clock read and a store, where a timer per operation (beast::basic_stream) costs a
// timerfd update per request; the price is a resolution of kSweepPeriod.
class DeadlineSweeper : public asio::detail::execution_context_service_base<DeadlineSweeper> {
 public:
  static constexpr std::chrono::milliseconds kSweepPeriod{50};

  explicit DeadlineSweeper(asio::execution_context& ctx);
  void shutdown() override;
  void add(TimedSocket* socket);
  void remove(TimedSocket* socket);

 private:
  void arm();
  void sweep();
  void growReactorPool();

  std::mutex mutex_;
  std::vector<TimedSocket*> sockets_;
  // Asio's reactor keeps one state object per descriptor it ever watched at once, in a pool it
  // never frees. Grown one connection at a time, those objects end up scattered among the
  // connections' other allocations and pin their pages after every connection closed (malloc_trim
  // cannot return a page that holds one). So the pool is grown ahead of need, kPoolBatch states at
  // a time allocated together (sockets opened and closed at once): the pages they share hold
  // nothing else. pool_ counts the states this context's reactor has for TimedSockets.
  static constexpr std::size_t kPoolBatch = 256;
  std::size_t pool_ = 0;
  bool growing_ = false;
  asio::steady_timer timer_;
  bool running_ = false;
  bool shut_down_ = false;
};

// A TCP socket with a deadline for whatever operations are pending or started before it passes:
// when it passes, pending operations are cancelled and complete with beast::error::timeout, and so
// do operations started later, until the next expires_after()/expires_never().
class TimedSocket {
 public:
  using executor_type = Executor;
  using lowest_layer_type = Socket::lowest_layer_type;

  explicit TimedSocket(Socket&& socket) : socket_(std::move(socket)) { register_(); }
  explicit TimedSocket(const Executor& ex) : socket_(ex) { register_(); }
  ~TimedSocket() { sweeper_->remove(this); }
  TimedSocket(const TimedSocket&) = delete;
  TimedSocket& operator=(const TimedSocket&) = delete;

  Socket& socket() noexcept { return socket_; }
  lowest_layer_type& lowest_layer() noexcept { return socket_.lowest_layer(); }
  executor_type get_executor() noexcept { return socket_.get_executor(); }

  template <class Rep, class Period>
  void expires_after(std::chrono::duration<Rep, Period> d) {
    deadline_ns_.store(deadlineClockNs() + std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(),
                       std::memory_order_relaxed);
    timed_out_ = false;
  }
  void expires_never() {
    deadline_ns_.store(kNever, std::memory_order_relaxed);
    timed_out_ = false;
  }
  // True when the last deadline passed (what a cancelled operation's operation_aborted meant).
  bool timedOut() const noexcept { return timed_out_; }

  // A write that waits this long for the peer to take bytes (an asynchronous write, or a wait until
  // writable) times the socket out as a deadline would, whatever the deadline says: a reader that
  // stopped reading must not keep its buffers until the idle timeout, which the other direction's
  // traffic may keep pushing back. Zero: no limit. Each such wait starts its own period, so a slow
  // reader that makes progress is never cut.
  void setWriteStall(Duration d) {
    write_stall_ns_ = d.count() <= 0 ? kNever : std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(beast::error_code, std::size_t)>(
        [this](auto handler, const Buffers& b) {
          if (timed_out_) return failLater(std::move(handler));
          socket_.async_read_some(b, mapTimeout(std::move(handler)));
        },
        token, buffers);
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(beast::error_code, std::size_t)>(
        [this](auto handler, const Buffers& b) {
          if (timed_out_) return failLater(std::move(handler));
          armWriteStall();
          socket_.async_write_some(b, mapTimeout</*write=*/true>(std::move(handler)));
        },
        token, buffers);
  }
  // Waits until the socket is readable or writable (reactor readiness, no data moved).
  template <class Token>
  auto async_wait(tcp::socket::wait_type what, Token&& token) {
    return asio::async_initiate<Token, void(beast::error_code)>(
        [this](auto handler, tcp::socket::wait_type w) {
          if (timed_out_) return failLater</*with_size=*/false>(std::move(handler));
          if (w == tcp::socket::wait_write) {
            armWriteStall();
            socket_.async_wait(w, mapTimeout</*write=*/true>(std::move(handler)));
          } else {
            socket_.async_wait(w, mapTimeout(std::move(handler)));
          }
        },
        token, what);
  }

  // Non-blocking send from the calling handler: what the kernel takes now, or would_block when its
  // buffer is full. Saves the handler hop an asynchronous write costs even when it completes at
  // once (a posted completion and one more pass through the reactor).
  template <class Buffers>
  std::size_t writeSomeNow(const Buffers& buffers, beast::error_code& ec) {
    return now(ec, [&] { return socket_.write_some(buffers, ec); });
  }

  // Non-blocking receive: what is buffered in the kernel now, or would_block.
  template <class Buffers>
  std::size_t readSomeNow(const Buffers& buffers, beast::error_code& ec) {
    return now(ec, [&] { return socket_.read_some(buffers, ec); });
  }

  template <class Token>
  auto async_connect(const tcp::endpoint& endpoint, Token&& token) {
    return asio::async_initiate<Token, void(beast::error_code)>(
        [this](auto handler, const tcp::endpoint& e) {
          socket_.async_connect(e, [this, h = std::move(handler)](beast::error_code ec) mutable {
            if (ec && timed_out_) ec = beast::error::timeout;
            std::move(h)(ec);
          });
        },
        token, endpoint);
  }

  // Called by the sweeper on this socket's thread.
  void expireIfDue(std::int64_t now_ns) {
    if (timed_out_) return;
    if (deadline_ns_.load(std::memory_order_relaxed) > now_ns &&
        write_deadline_ns_.load(std::memory_order_relaxed) > now_ns) {
      return;
    }
    timed_out_ = true;
    beast::error_code ec;
    socket_.cancel(ec);
  }

 private:
  static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
  static constexpr std::int64_t kDefaultWriteStallNs = std::int64_t{60} * 1'000'000'000;

  void register_() {
    sweeper_ = &asio::use_service<DeadlineSweeper>(asio::query(socket_.get_executor(), asio::execution::context));
    sweeper_->add(this);
  }
  // A synchronous operation that must not block: refused after the deadline, run with the socket
  // in non-blocking mode (set once).
  template <class Op>
  std::size_t now(beast::error_code& ec, Op op) {
    if (timed_out_) {
      ec = beast::error::timeout;
      return 0;
    }
    if (!socket_.non_blocking()) {
      socket_.non_blocking(true, ec);
      if (ec) return 0;
    }
    return op();
  }

  void armWriteStall() {
    if (write_stall_ns_ != kNever) {
      write_deadline_ns_.store(deadlineClockNs() + write_stall_ns_, std::memory_order_relaxed);
    }
  }

  // Keeps the handler's executor and cancellation slot (coroutines rely on both). Handlers take
  // (error_code, size_t) or, for async_wait, (error_code). A write's completion ends its stall period.
  template <bool write = false, class Handler>
  auto mapTimeout(Handler&& handler) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    auto ex = asio::get_associated_executor(handler, socket_.get_executor());
    return asio::bind_cancellation_slot(slot, asio::bind_executor(ex, [this, h = std::forward<Handler>(handler)](
                                                                          beast::error_code ec, auto... n) mutable {
                                          if constexpr (write) {
                                            write_deadline_ns_.store(kNever, std::memory_order_relaxed);
                                          }
                                          if (ec == asio::error::operation_aborted && timed_out_)
                                            ec = beast::error::timeout;
                                          std::move(h)(ec, n...);
                                        }));
  }
  template <bool with_size = true, class Handler>
  void failLater(Handler&& handler) {
    auto ex = asio::get_associated_executor(handler, socket_.get_executor());
    asio::post(ex, [h = std::forward<Handler>(handler)]() mutable {
      if constexpr (!with_size) {
        std::move(h)(beast::error_code(beast::error::timeout));
      } else {
        std::move(h)(beast::error_code(beast::error::timeout), std::size_t{0});
      }
    });
  }

  friend class DeadlineSweeper;
  Socket socket_;
  DeadlineSweeper* sweeper_ = nullptr;
  std::size_t sweep_index_ = 0;  // Position in the sweeper's list, kept by the sweeper.
  std::atomic<std::int64_t> deadline_ns_{kNever};
  std::atomic<std::int64_t> write_deadline_ns_{kNever};  // While a write waits for the peer.
  std::int64_t write_stall_ns_ = kDefaultWriteStallNs;
  bool timed_out_ = false;
};

using TcpStream = TimedSocket;

// TCP keep-alive probes after `idle` of silence, every `interval`; three unanswered ones end the
// connection, so a peer that vanished (a half-open connection) is found. Zero `idle`: left off.
void setKeepAlive(Socket& socket, Duration idle, Duration interval);

// A byte stream that is plain TCP or TLS over it, chosen at run time, so the HTTP and proxy code is
// compiled once rather than once per stream type.
class Transport {
 public:
  using executor_type = Executor;

  explicit Transport(Socket&& socket) : tcp_(std::move(socket)) {}
  explicit Transport(const Executor& ex) : tcp_(ex) {}

  void enableTls(asio::ssl::context& ctx) { tls_ = std::make_unique<asio::ssl::stream<TcpStream&>>(tcp_, ctx); }
  bool secure() const noexcept { return tls_ != nullptr; }
  asio::ssl::stream<TcpStream&>* tls() noexcept { return tls_.get(); }
  TcpStream& tcp() noexcept { return tcp_; }
  executor_type get_executor() noexcept { return tcp_.get_executor(); }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    if (tls_) return tls_->async_read_some(buffers, std::forward<Token>(token));
    return tcp_.async_read_some(buffers, std::forward<Token>(token));
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    if (tls_) return tls_->async_write_some(buffers, std::forward<Token>(token));
    return tcp_.async_write_some(buffers, std::forward<Token>(token));
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
  // The server's connection itself (which owns `transport` and `proxy_state`), for the proxy to
  // take over: a VNC bridge keeps it alive once the request's coroutines have returned. Null on
  // the fast path, which never takes a connection over.
  std::shared_ptr<void> connection = nullptr;
  // Set by the proxy when it took the connection over: the server then neither reads the next
  // request from it nor closes it.
  bool handed_over = false;
};

using HeaderParser = http::request_parser<http::empty_body>;

// A connection's flat_buffers are given back between messages once empty, so a keep-alive
// connection waiting for its next request holds none; taking one again costs a malloc, well below
// what a request costs.
inline void releaseIfEmpty(beast::flat_buffer& b) {
  if (b.size() == 0 && b.capacity() > 0) b.shrink_to_fit();
}

// Gives back what a client connection's proxy state holds between requests (the fast path's
// response head and head text, an empty upstream buffer), before the connection waits idle for
// its next request. The kept upstream connection and the session registration stay.
void releaseIdleProxyState(std::shared_ptr<void>& proxy_state);

// An upgrade to one of HttpServerOptions::sockets (proxy_socket.cpp): authorized by the route,
// then served until either side closes.
Awaitable<void> serveSocketRoute(Transport& transport, const std::string& remote, HeaderParser& parser,
                                 const HttpSocketRoute& route);

// Serves one proxied request whose header is in `parser` (the body, if any, is still unread in
// `buffer` and the stream). Returns true when the client connection may be reused.
Awaitable<bool> serveProxied(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                             HeaderParser& parser);

// The fast path for a request whose head scanned as plain (http_scan.hpp) and that has no body or
// upgrade (proxyFastEligible): written and read without Beast's field containers. The head's
// bytes are still at the front of `buffer`.
bool proxyFastEligible(const SessionProxy::Impl& proxy, const MessageHead& head);
Awaitable<bool> serveProxiedFast(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                                 const MessageHead& head);

// Writes a small complete response (used for errors). `keep_alive` false adds Connection: close.
Awaitable<> writeSimple(Transport& stream, unsigned version, int status, std::string body, bool keep_alive,
                        const HttpHeaders* extra = nullptr);

}  // namespace kasm::net::detail
