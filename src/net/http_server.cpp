// HttpServer: accept loop, per-connection request loop (one coroutine per connection on its own
// thread), dispatch to the session proxy or the application handler (http_handler.cpp), and
// graceful stop.

#include "kasm/net/http_server.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <condition_variable>
#include <unordered_map>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "net/http_server_impl.hpp"
#include "net/stream_io.hpp"

namespace kasm::net {

using namespace detail;

// ---- server --------------------------------------------------------------------------------------

detail::Connection::~Connection() {
  bool trim = false;
  {
    std::lock_guard lock(server.conns_mutex);
    server.conns.erase(id);
    if (counted) {
      if (auto it = server.per_address.find(remote); it != server.per_address.end() && --it->second == 0) {
        server.per_address.erase(it);
      }
    }
    trim = server.connectionClosed();
    server.conns_changed.notify_all();
  }
#if defined(__GLIBC__)
  // glibc keeps freed memory in its arenas; only a trim unmaps the free pages inside them. Posted,
  // so that it runs once this connection's members and its coroutine's frame are freed too.
  if (trim) asio::post(transport.get_executor(), [] { malloc_trim(0); });
#else
  (void)trim;
#endif
}

namespace {

// "/desktop/..." and the bare "/desktop" (redirected by the proxy), but not "/desktopx".
bool routesToProxy(std::string_view target, std::string_view prefix) {
  if (target.starts_with(prefix)) return true;
  std::string_view bare = prefix.substr(0, prefix.size() - 1);
  return target == bare || (target.starts_with(bare) && target.size() > bare.size() && target[bare.size()] == '?');
}

}  // namespace

// Thousands of connections leave thousands of small freed blocks spread over the heap, which glibc
// keeps for reuse: after a peak the process would stay at its peak size. The heap is trimmed when
// many connections have gone since the last peak: once the last one closes, or when they fell to
// half the peak (at most once a second then: a trim walks the whole heap).
bool HttpServer::Impl::connectionClosed() {
  constexpr std::size_t kWorthTrimming = 64;  // Connections gone; below this, little to give back.
  const std::size_t open = conns.size();
  if (conns_peak < open + kWorthTrimming) return false;
  const auto now = std::chrono::steady_clock::now();
  if (open > 0 && (open * 2 > conns_peak || now - last_trim < std::chrono::seconds(1))) return false;
  conns_peak = open;
  last_trim = now;
  return true;
}

Awaitable<> HttpServer::Impl::acceptLoop() {
  while (!stopping.load()) {
    auto& ctx = *contexts[next_context++ % contexts.size()];
    auto [ec, socket] = co_await acceptor->async_accept(ctx, kAwaitTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping.load()) co_return;
      continue;  // EMFILE and friends: keep accepting others.
    }
    {
      std::lock_guard lock(conns_mutex);
      if (conns.size() >= options.max_connections) {
        socket.close(ec);
        continue;
      }
    }
    socket.set_option(tcp::no_delay(true), ec);
    setKeepAlive(socket, options.tcp_keepalive_idle, options.tcp_keepalive_interval);
    std::string address;
    if (auto remote = socket.remote_endpoint(ec); !ec) address = remote.address().to_string();
    if (options.max_connections_per_address > 0) {
      std::lock_guard lock(conns_mutex);
      if (per_address[address] >= options.max_connections_per_address) {
        socket.close(ec);
        continue;
      }
      ++per_address[address];
    }
    auto conn = std::make_shared<Connection>(*this, std::move(socket));
    conn->remote = std::move(address);
    conn->counted = options.max_connections_per_address > 0;
    conn->transport.tcp().setWriteStall(options.write_stall_timeout);
    if (ssl) conn->transport.enableTls(*ssl);
    {
      std::lock_guard lock(conns_mutex);
      conn->id = ++next_conn_id;
      conns.emplace(conn->id, conn);
      conns_peak = std::max(conns_peak, conns.size());
    }
    auto ex = conn->transport.get_executor();
    asio::co_spawn(ex, serve(std::move(conn)), asio::detached);
  }
}

namespace {
// Lingering close: after our FIN, read and drop what the client still sends for a moment, so
// closing with unread input does not turn into a reset that destroys the error response we just
// wrote (a client sending a refused body is still writing). A coroutine of its own: its 8 KiB sink
// is allocated at the close, not in the frame of every connection for its whole life (a tunnel
// lives in serve()'s frame for hours).
Awaitable<> lingeringClose(Transport& t) {
  beast::error_code ignored;
  t.tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
  if (t.tcp().socket().is_open()) {
    t.tcp().expires_after(std::chrono::seconds(1));
    std::array<char, 8192> sink;
    std::size_t drained = 0;
    while (drained < 1024 * 1024) {
      auto [ec, n] = co_await t.tcp().async_read_some(asio::buffer(sink), kAwaitTuple);
      if (ec) break;
      drained += n;
    }
  }
  t.close();
}
}  // namespace

namespace {

// Reads what the socket holds now (up to 4 KiB, through a stack buffer so that nothing is
// allocated when it holds nothing) into `buffer`. Returns the bytes read; 0 with `ec` set to
// would_block when there were none, or with the error (eof included).
std::size_t readAvailable(TcpStream& s, beast::flat_buffer& buffer, beast::error_code& ec) {
  char bytes[4096];
  const std::size_t n = s.readSomeNow(asio::buffer(bytes), ec);
  if (n > 0) {
    ec = {};
    buffer.commit(asio::buffer_copy(buffer.prepare(n), asio::buffer(bytes, n)));
  }
  return n;
}

}  // namespace

Awaitable<> HttpServer::Impl::serve(std::shared_ptr<Connection> conn) {
  Transport& t = conn->transport;
  try {
    if (t.secure()) {
      t.tcp().expires_after(options.header_timeout);
      auto [ec] = co_await t.tls()->async_handshake(asio::ssl::stream_base::server, kAwaitTuple);
      if (ec) {
        t.close();
        co_return;
      }
    }
    beast::flat_buffer buffer;
    bool first = true;
    while (!stopping.load()) {
      // The keep-alive wait and the header read have separate clocks: a client may sit idle
      // between requests, but once it starts a request it must finish the header in time.
      conn->idle = true;
      if (buffer.size() == 0) {
        t.tcp().expires_after(first ? options.header_timeout : options.idle_timeout);
        if (t.secure()) {
          // The TLS stream may hold decrypted bytes that the socket's readiness does not show.
          auto [ec, n] = co_await t.async_read_some(buffer.prepare(4096), kAwaitTuple);
          if (ec) break;
          buffer.commit(n);
        } else {
          // A request that is already there is read at once; otherwise the connection gives back
          // what it holds between requests and waits for readability without a buffer.
          beast::error_code ec;
          while (readAvailable(t.tcp(), buffer, ec) == 0 && ec == asio::error::would_block) {
            releaseIfEmpty(buffer);
            giveMessageHead(conn->head);
            if (proxy) releaseIdleProxyState(conn->proxy_state);
            auto [wec] = co_await t.tcp().async_wait(tcp::socket::wait_read, kAwaitTuple);
            if (wec) {
              ec = wec;
              break;
            }
          }
          if (ec) break;
        }
      }
      conn->idle = false;
      first = false;
      t.tcp().expires_after(options.header_timeout);

      if (proxy) {
        // The proxy's fast path takes a plain request head without a body straight from the
        // buffer; anything else (and any read error, replayed below) goes through Beast.
        if (!conn->head) conn->head = takeMessageHead();
        auto& head = *conn->head;
        ScanResult scan;
        for (;;) {
          const auto data = buffer.cdata();
          scan = scanRequestHead(std::string_view(static_cast<const char*>(data.data()), data.size()), head);
          if (scan != ScanResult::kIncomplete || buffer.size() > options.max_header_bytes) break;
          auto [rec, n] = co_await t.async_read_some(buffer.prepare(readRoom(buffer)), kAwaitTuple);
          if (rec) break;
          buffer.commit(n);
        }
        if (scan == ScanResult::kSimple && head.head_bytes <= options.max_header_bytes &&
            routesToProxy(head.target, proxy->prefix()) && proxyFastEligible(proxy->impl(), head)) {
          ClientContext ctx{t, conn->remote, stopping, conn->proxy_state};
          if (!co_await serveProxiedFast(proxy->impl(), ctx, buffer, head)) break;
          continue;
        }
      }

      // The scanned head is not used on this path, which may turn into a tunnel for hours.
      giveMessageHead(conn->head);
      HeaderParser parser;
      parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
      // Body limits are applied after routing: the handler path checks max_body_bytes, the proxy
      // streams bodies of any size.
      parser.body_limit(boost::none);
      auto ec = co_await parseHeader(t, buffer, parser);
      if (ec) {
        t.tcp().expires_after(std::chrono::seconds(2));
        if (ec == beast::error::timeout) {
          co_await writeSimple(t, 11, 408, "request header timeout\n", false);
        } else if (ec == http::error::header_limit) {
          co_await writeSimple(t, 11, 431, "request header too large\n", false);
        } else if (!isQuietClose(ec)) {
          co_await writeSimple(t, 11, 400, "malformed request: " + ec.message() + "\n", false);
        }
        break;
      }

      if (parser.get().version() != 10 && parser.get().version() != 11) {
        t.tcp().expires_after(std::chrono::seconds(2));
        co_await writeSimple(t, 11, 505, "only HTTP/1.0 and HTTP/1.1 are served\n", false);
        break;
      }
      bool keep = false;
      std::string_view target(parser.get().target().data(), parser.get().target().size());
      if (!options.sockets.empty() && beast::websocket::is_upgrade(parser.get())) {
        if (auto route = options.sockets.find(target.substr(0, target.find('?'))); route != options.sockets.end()) {
          co_await serveSocketRoute(t, conn->remote, parser, route->second);
          break;
        }
      }
      if (proxy && routesToProxy(target, proxy->prefix())) {
        ClientContext ctx{t, conn->remote, stopping, conn->proxy_state};
        ctx.connection = conn;
        keep = co_await serveProxied(proxy->impl(), ctx, buffer, parser);
        // A VNC bridge took the connection over: it owns the socket now, and this coroutine's
        // frame (with the request's buffer and parser) is freed for the bridge's whole life.
        if (ctx.handed_over) co_return;
      } else {
        keep = co_await serveHandler(*conn, buffer, parser);
      }
      if (!keep) break;
    }
  } catch (...) {
    // A broken connection ends here; others are unaffected.
  }
  co_await lingeringClose(t);
}

void HttpServer::Impl::closeConnections(bool only_idle) {
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(conns_mutex);
    for (auto& [id, weak] : conns) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) {
    asio::post(c->transport.get_executor(), [c, only_idle] {
      if (!only_idle || c->idle) c->transport.close();
    });
  }
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  stop(Duration(0));
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(HttpServerOptions options, HttpHandler handler,
                                                      std::shared_ptr<SessionProxy> proxy) {
  if (!handler) return invalidArgument("HttpServer: a handler is required");
  if (options.io_threads < 1) return invalidArgument("HttpServer: io_threads must be at least 1");
  if (options.max_connections < 1) return invalidArgument("HttpServer: max_connections must be at least 1");
  beast::error_code ec;
  auto address = asio::ip::make_address(options.address, ec);
  if (ec) return invalidArgument("HttpServer: '" + options.address + "' is not an IP address");

  auto impl = std::make_unique<Impl>();
  if (options.tls) {
    impl->ssl.emplace(asio::ssl::context::tls_server);
    auto& ctx = *impl->ssl;
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    ctx.use_certificate_chain_file(options.tls->cert_file, ec);
    if (ec) return unavailable("HttpServer: cannot load certificate " + options.tls->cert_file + ": " + ec.message());
    ctx.use_private_key_file(options.tls->key_file, asio::ssl::context::pem, ec);
    if (ec) return unavailable("HttpServer: cannot load key " + options.tls->key_file + ": " + ec.message());
  }
  if (options.handler_threads > 0) {
    impl->pool = std::make_unique<BlockingPool>(options.handler_threads);
    handler = runOnPool(*impl->pool, std::move(handler));
  }
  impl->handler = std::move(handler);
  impl->proxy = std::move(proxy);

  for (int i = 0; i < options.io_threads; ++i) {
    // Concurrency hint 1: each context is run by exactly one thread.
    impl->contexts.push_back(std::make_unique<asio::io_context>(1));
    impl->work.push_back(asio::make_work_guard(*impl->contexts.back()));
  }
  auto& acceptor = impl->acceptor.emplace(*impl->contexts.front());
  tcp::endpoint endpoint(address, options.port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return unavailable("HttpServer: cannot listen on " + options.address + ":" + std::to_string(options.port) + ": " +
                       ec.message());
  }
  impl->port = acceptor.local_endpoint(ec).port();
  impl->options = std::move(options);

  Impl* raw = impl.get();
  asio::co_spawn(raw->contexts.front()->get_executor(), raw->acceptLoop(), asio::detached);
  for (auto& ctx : raw->contexts) {
    raw->threads.emplace_back([ioc = ctx.get()] {
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (...) {
          // A handler threw past its coroutine; keep the loop alive for everyone else.
        }
      }
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

std::uint16_t HttpServer::port() const noexcept {
  return impl_->port;
}

std::string HttpServer::baseUrl() const {
  std::string host = impl_->options.address;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return std::string(impl_->ssl ? "https://" : "http://") + host + ":" + std::to_string(impl_->port);
}

void HttpServer::stop(Duration deadline) {
  std::lock_guard stop_lock(impl_->stop_mutex);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->stopping.store(true);
  asio::post(impl_->acceptor->get_executor(), [impl = impl_.get()] {
    beast::error_code ec;
    impl->acceptor->close(ec);
  });
  impl_->closeConnections(/*only_idle=*/true);
  {
    std::unique_lock lock(impl_->conns_mutex);
    impl_->conns_changed.wait_for(lock, deadline, [&] { return impl_->conns.empty(); });
  }
  impl_->closeConnections(/*only_idle=*/false);
  {
    // Closed sockets make their coroutines finish promptly; give them a moment to unwind.
    std::unique_lock lock(impl_->conns_mutex);
    impl_->conns_changed.wait_for(lock, std::chrono::milliseconds(500), [&] { return impl_->conns.empty(); });
  }
  impl_->work.clear();
  for (auto& ctx : impl_->contexts) ctx->stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  if (impl_->pool) impl_->pool->shutdown();
}

}  // namespace kasm::net
