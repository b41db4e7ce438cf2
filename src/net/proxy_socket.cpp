// The proxy's own WebSockets (ProxyOptions::app_socket, app_sockets): text messages in, text and binary out
// through a bounded queue, closed with the session or the viewer like any tunnel.

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <deque>

#include "net/proxy_impl.hpp"
#include "net/ws_transport.hpp"

namespace kasm::net::detail {

namespace {
using namespace asio::experimental::awaitable_operators;
namespace websocket = beast::websocket;

// Lives as long as anyone holds it (the application keeps it to send); touches the connection only
// on its executor and only until the exchange finished.
class AppSocket final : public ProxySocket, public std::enable_shared_from_this<AppSocket> {
 public:
  AppSocket(Executor ex, Transport& transport, std::size_t max_queue)
      : executor_(ex), transport_(transport), wake_(ex, asio::steady_timer::time_point::max()), max_queue_(max_queue) {}

  bool send(std::string text) override { return queue(std::move(text), false); }
  bool sendBinary(std::string bytes) override { return queue(std::move(bytes), true); }
  std::size_t queuedBytes() const override {
    std::lock_guard lock(mutex_);
    return queued_bytes_;
  }

  // Sends what is queued, then a close frame, then closes (a refusal's message reaches the
  // client). A client that does not read is cut by the writer's deadline.
  void close() override {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    poke();
  }

  // On the executor.
  Awaitable<> writer(websocket::stream<Transport&>& ws) {
    for (;;) {
      std::optional<Message> next;
      bool closed = false, closing = false;
      {
        std::lock_guard lock(mutex_);
        if (!queue_.empty()) {
          next = std::move(queue_.front());
          queue_.pop_front();
          queued_bytes_ -= next->data.size();
        }
        closed = closed_;
        closing = closing_;
      }
      if (closed) break;
      if (!next && closing) {
        transport_.tcp().expires_after(std::chrono::seconds(5));
        co_await ws.async_close(websocket::close_code::normal, kAwaitTuple);
        break;
      }
      if (!next) {
        wake_.expires_at(asio::steady_timer::time_point::max());
        co_await wake_.async_wait(kAwaitTuple);
        continue;
      }
      ws.text(!next->binary);
      auto [ec, n] = co_await ws.async_write(asio::buffer(next->data), kAwaitTuple);
      if (ec) break;
    }
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    transport_.close();
  }

  void finish() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      finished_ = true;
    }
  }
  bool isClosed() {
    std::lock_guard lock(mutex_);
    return closed_ || closing_;
  }

 private:
  // Wakes the writer (on the executor: timers are not thread-safe), and closes the socket when
  // the socket was closed from elsewhere.
  void poke() {
    asio::post(executor_, [self = shared_from_this()] {
      bool closed = false;
      {
        std::lock_guard lock(self->mutex_);
        if (self->finished_) return;
        closed = self->closed_;
      }
      if (closed) self->transport_.close();
      self->wake_.cancel();
    });
  }

  struct Message {
    std::string data;
    bool binary = false;
  };

  bool queue(std::string data, bool binary) {
    {
      std::lock_guard lock(mutex_);
      if (closed_ || closing_) return false;
      if (queued_bytes_ + data.size() > max_queue_) {
        // A client that does not read is not allowed to grow our memory: it goes.
        closed_ = true;
      } else {
        queued_bytes_ += data.size();
        queue_.push_back({std::move(data), binary});
      }
    }
    poke();
    return !isClosed();
  }

  Executor executor_;
  Transport& transport_;
  asio::steady_timer wake_;
  std::size_t max_queue_;
  mutable std::mutex mutex_;
  std::deque<Message> queue_;
  std::size_t queued_bytes_ = 0;
  bool closed_ = false;   // Cut now.
  bool closing_ = false;  // Closed once the queue is out.
  bool finished_ = false;
};

}  // namespace

namespace {

// The exchange of an accepted socket: the application's handlers get every message; the socket's
// queue goes out; whichever side ends first ends both.
Awaitable<bool> runSocket(Transport& transport, const http::request<http::empty_body>& request,
                          std::shared_ptr<AppSocket> socket, const WebSocketHandlers& handlers, std::size_t max_message,
                          std::atomic<std::size_t>* open_count, const std::function<void(std::size_t)>& on_traffic) {
  transport.tcp().expires_never();
  websocket::stream<Transport&> ws(transport);
  ws.read_message_max(max_message);
  ws.auto_fragment(false);
  // Pings keep the socket alive through proxies and find dead peers.
  auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
  timeouts.keep_alive_pings = true;
  ws.set_option(timeouts);
  auto [aec] = co_await ws.async_accept(request, kAwaitTuple);
  if (aec) {
    socket->finish();
    if (handlers.on_close) handlers.on_close();
    co_return false;
  }
  if (open_count) open_count->fetch_add(1);
  auto reader = [&]() -> Awaitable<> {
    beast::flat_buffer buffer;
    for (;;) {
      auto [ec, n] = co_await ws.async_read(buffer, kAwaitTuple);
      if (ec) break;
      if (on_traffic) on_traffic(n);
      const auto& handle = ws.got_text() ? handlers.on_message : handlers.on_binary;
      if (handle) {
        const auto data = buffer.cdata();
        try {
          handle(std::string_view(static_cast<const char*>(data.data()), data.size()));
        } catch (...) {
          break;
        }
      }
      buffer.consume(buffer.size());
    }
    socket->close();
  };
  co_await (reader() && socket->writer(ws));
  socket->finish();
  if (open_count) open_count->fetch_sub(1);
  if (handlers.on_close) {
    try {
      handlers.on_close();
    } catch (...) {
    }
  }
  co_return false;
}

}  // namespace

Awaitable<bool> serveAppSocket(SessionProxy::Impl& proxy, ClientContext& client, HeaderParser& parser,
                               ExchangeGuard& guard, const ProxyAuthRequest& auth, const ProxyTarget& target,
                               const ProxySocketOpener& opener) {
  auto socket = std::make_shared<AppSocket>(client.transport.get_executor(), client.transport,
                                            proxy.options.app_socket_queue_bytes);
  Result<ProxySocketHandlers> handlers = internalError("proxy: the app socket failed to open");
  try {
    handlers = opener(auth, target, socket);
  } catch (...) {
  }
  if (!handlers.ok()) {
    socket->finish();
    auto refusal = authRefusal(handlers.error());
    co_return co_await reject(proxy, client, parser, refusal.status, std::move(refusal.message), &refusal.extra);
  }
  co_return co_await runSocket(client.transport, parser.get(), socket, *handlers, proxy.options.app_socket_max_message,
                               &proxy.tunnels, [&guard](std::size_t n) { guard.clientTraffic(n); });
}

Awaitable<void> serveSocketRoute(Transport& transport, const std::string& remote, HeaderParser& parser,
                                 const HttpSocketRoute& route) {
  const auto& head = parser.get();
  const unsigned version = head.version();
  auto request = std::make_shared<HttpRequest>();
  request->method = std::string(head.method_string());
  request->target = std::string(head.target());
  const auto qmark = request->target.find('?');
  request->path = request->target.substr(0, qmark);
  if (qmark != std::string::npos) {
    std::string_view q = std::string_view(request->target).substr(qmark + 1);
    while (!q.empty()) {
      const auto amp = q.find('&');
      std::string_view part = q.substr(0, amp);
      q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
      const auto eq = part.find('=');
      auto key = percentDecode(part.substr(0, eq), true);
      auto value = percentDecode(eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1), true);
      if (!part.empty() && key.ok() && value.ok()) request->query.emplace_back(std::move(*key), std::move(*value));
    }
  }
  for (const auto& field : head) request->headers.add(std::string(field.name_string()), std::string(field.value()));
  request->remote_address = remote;
  request->secure = transport.secure();
  auto socket = std::make_shared<AppSocket>(transport.get_executor(), transport, route.queue_bytes);
  const auto open = [&route, request, socket]() -> Result<WebSocketHandlers> {
    try {
      return route.open(*request, socket);
    } catch (...) {
      return internalError("the socket failed to open");
    }
  };
  Result<WebSocketHandlers> handlers = internalError("the socket failed to open");
  if (route.pool) {
    handlers = co_await onPool<WebSocketHandlers>(*route.pool, open, "the server is busy");
  } else {
    handlers = open();
  }
  if (!handlers.ok()) {
    socket->finish();
    transport.tcp().expires_after(std::chrono::seconds(5));
    co_await writeSimple(transport, version, authStatus(handlers.error().code()), handlers.error().message() + "\n",
                         false);
    co_return;
  }
  co_await runSocket(transport, head, socket, *handlers, route.max_message, nullptr, {});
}

}  // namespace kasm::net::detail
