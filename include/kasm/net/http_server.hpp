#pragma once

// An asynchronous, multi-threaded HTTP/1.1 server (Boost.Asio/Beast inside, none of it here).
// kasm-server serves its APIs with it, and the session proxy (kasm/net/session_proxy.hpp) mounts on
// it; an integrator may embed both in their own portal.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"
#include "kasm/net/web_socket.hpp"

namespace kasm::net {

class SessionProxy;

// Header fields in arrival order. Lookups ignore ASCII case, as HTTP requires; a name may repeat.
class HttpHeaders {
 public:
  using Field = std::pair<std::string, std::string>;

  // The first value of `name`, or nullopt. The view is valid until the headers change.
  std::optional<std::string_view> find(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name).has_value(); }
  // Appends a field (keeps existing ones of the same name).
  void add(std::string name, std::string value);
  // Replaces every field of that name by one.
  void set(std::string name, std::string value);
  // Removes every field of that name.
  void remove(std::string_view name);

  const std::vector<Field>& fields() const noexcept { return fields_; }
  bool empty() const noexcept { return fields_.empty(); }

 private:
  std::vector<Field> fields_;
};

// True when a and b are equal ignoring ASCII case.
bool equalsIgnoreCase(std::string_view a, std::string_view b) noexcept;

// Decodes %XX escapes (and '+' as space when `plus_is_space`, for query strings). InvalidArgument
// for a truncated or non-hex escape.
Result<std::string> percentDecode(std::string_view s, bool plus_is_space = false);

// A complete request as a handler sees it: the body is already read (up to max_body_bytes).
struct HttpRequest {
  std::string method;                                      // "GET", "POST", ...
  std::string target;                                      // As sent: "/api/x?a=1".
  std::string path;                                        // Target before '?', not decoded.
  std::vector<std::pair<std::string, std::string>> query;  // Decoded query parameters, in order.
  HttpHeaders headers;
  std::string body;
  std::string remote_address;  // Peer IP ("127.0.0.1", "::1").
  bool secure = false;         // Arrived over TLS.

  // The first decoded query parameter of that name.
  std::optional<std::string_view> queryParam(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  HttpHeaders headers;
  std::string body;

  // A response with a body and its Content-Type.
  static HttpResponse text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  static HttpResponse json(int status, std::string body) { return text(status, std::move(body), "application/json"); }
};

// Sends the response of one request. Copyable; every copy refers to the same request. Call it once,
// from any thread, at any later time (a handler may hand it to a worker and return at once); later
// calls are ignored. If every copy is destroyed without a call, the client gets a 500, so a
// forgotten path never hangs a connection.
class Responder {
 public:
  struct State;
  explicit Responder(std::shared_ptr<State> state) : state_(std::move(state)) {}

  void operator()(HttpResponse response) const;
  // True once a response was given (by any copy).
  bool answered() const;

 private:
  std::shared_ptr<State> state_;
};

// The application: called once per request, on an I/O thread unless handler_threads > 0. It must
// not block an I/O thread: run blocking work (store, manager, agent calls) through BlockingPool or
// set handler_threads.
using HttpHandler = std::function<void(HttpRequest, Responder)>;

// A fixed set of threads for blocking work, with a bounded queue. Thread-safe.
class BlockingPool {
 public:
  // `threads` >= 1; `max_queue` tasks may wait beyond the running ones.
  explicit BlockingPool(std::size_t threads, std::size_t max_queue = 10000);
  // Finishes the queued tasks, then joins.
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Queues a task; ResourceExhausted when the queue is full, FailedPrecondition after shutdown.
  Result<void> post(std::function<void()> task);
  // Stops taking tasks, runs those already queued, joins the threads. Idempotent.
  void shutdown();

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  std::size_t max_queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// Wraps a handler so it runs on `pool` instead of the calling I/O thread; a full queue answers 503.
HttpHandler runOnPool(BlockingPool& pool, HttpHandler handler);

// A WebSocket the server serves itself at an exact path (HttpServerOptions::sockets): an upgrade
// request there is given to `open`, which authorizes it and returns the socket's handlers; an error
// refuses the upgrade with its status (Unauthenticated 401, PermissionDenied 403, NotFound 404,
// ResourceExhausted 429, FailedPrecondition and Unavailable 503, InvalidArgument 400, others 500).
// A plain request to the path goes to the handler as usual.
struct HttpSocketRoute {
  // Called with the upgrade request (no body). On `pool` when set (it may block there), else on the
  // I/O thread (it must not block). `socket` may be used at once: what it sends goes out once the
  // handshake is done.
  std::function<Result<WebSocketHandlers>(const HttpRequest&, std::shared_ptr<WebSocket>)> open;
  BlockingPool* pool = nullptr;
  std::size_t max_message = 1024 * 1024;       // A larger incoming message closes the socket.
  std::size_t queue_bytes = 16 * 1024 * 1024;  // Unsent bytes beyond this close the socket.
};

struct TlsOptions {
  std::string cert_file;  // PEM certificate chain.
  std::string key_file;   // PEM private key.
};

// Returns the certificate and key in `dir` ("server.crt", "server.key"), generating a self-signed
// ECDSA P-256 pair for localhost/127.0.0.1/::1 first if either is missing. The directory is created
// (0700) if needed and the key is written with mode 0600. Blocking (file I/O); call at startup.
Result<TlsOptions> ensureSelfSignedCertificate(const std::string& dir);

struct HttpServerOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal to listen on.
  std::uint16_t port = 0;             // 0 = an ephemeral port; see HttpServer::port().
  int io_threads = 2;                 // Threads running the event loop.
  // > 0: the server owns a BlockingPool of that size and every handler call runs on it.
  std::size_t handler_threads = 0;
  std::size_t max_header_bytes = 16 * 1024;  // Larger request headers get 431.
  std::size_t max_body_bytes = 1024 * 1024;  // Larger bodies get 413 (never read in full).
  // Exact paths whose bodies may be larger (or must be smaller) than max_body_bytes, e.g. an
  // endpoint that takes files. Keep them few: a body is held in memory until its handler ends.
  std::map<std::string, std::size_t, std::less<>> body_limits;
  Duration header_timeout = std::chrono::seconds(10);  // Whole request header; then 408 and close.
  Duration idle_timeout = std::chrono::seconds(60);    // Keep-alive wait for the next request.
  Duration body_timeout = std::chrono::seconds(60);    // Reading a request body, writing a response.
  // Open connections (tunnels included) at most; a connection beyond is closed as soon as it is
  // accepted, so a flood of idle sockets cannot exhaust descriptors and memory.
  std::size_t max_connections = 10000;
  // Open connections from one client address at most (0: no limit); one beyond is closed as soon
  // as it is accepted. Behind a load balancer every client shares its address: raise or turn off.
  std::size_t max_connections_per_address = 0;
  // TCP keep-alive probes on accepted connections, so that a client that vanished (a half-open
  // connection) is found in about idle + 3 * interval instead of holding its tunnel for hours.
  // Zero: off.
  Duration tcp_keepalive_idle = std::chrono::seconds(60);
  Duration tcp_keepalive_interval = std::chrono::seconds(10);
  // A client that takes no byte of what is being sent to it (a response, a tunnel's traffic) for
  // this long is disconnected, even while it keeps sending: a reader that stopped reading must not
  // hold its buffers and its tunnel until the idle timeout. A slow reader that makes progress is
  // never cut. Zero: no limit.
  Duration write_stall_timeout = std::chrono::seconds(60);
  std::optional<TlsOptions> tls;  // Set = HTTPS only.
  // WebSockets the server serves itself, by exact path (without the query).
  std::map<std::string, HttpSocketRoute, std::less<>> sockets;
};

// Accepts connections and dispatches requests: paths under a mounted SessionProxy's prefix go to the
// proxy (streaming, WebSocket upgrades), everything else to the handler. Malformed requests get 400
// and a closed connection; one client's failure never affects others.
//
// Threading: start() and stop() are thread-safe; callbacks run on the I/O threads (or the handler
// pool). The destructor calls stop(0).
class HttpServer {
 public:
  // Binds, listens and starts the I/O threads. `proxy` may be null. InvalidArgument for a bad
  // address or options, Unavailable when the port cannot be bound, or the TLS files cannot be read.
  static Result<std::unique_ptr<HttpServer>> start(HttpServerOptions options, HttpHandler handler,
                                                   std::shared_ptr<SessionProxy> proxy = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (the ephemeral one when options.port was 0).
  std::uint16_t port() const noexcept;
  // "https://127.0.0.1:PORT" or "http://..." as clients reach it.
  std::string baseUrl() const;

  // Graceful shutdown: stops accepting, closes idle keep-alive connections, lets requests in flight
  // finish (without keep-alive) for up to `deadline`, then closes what is left (tunnels included)
  // and joins the I/O threads. Idempotent; must not be called from an I/O or handler thread.
  void stop(Duration deadline = std::chrono::seconds(5));

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kasm::net
