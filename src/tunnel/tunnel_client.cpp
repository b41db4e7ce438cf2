// The agent's end of its reverse tunnel (kasm/tunnel/tunnel_client.hpp): a WebSocket client (TLS
// when the server URL is https) whose binary messages feed a Multiplexer that dials the targets the
// server names, once `allow` accepts them.

#include "kasm/tunnel/tunnel_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <thread>

#include "tunnel/multiplexer.hpp"

namespace kasm::tunnel {

namespace asio = detail::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using namespace asio::experimental::awaitable_operators;
using detail::Awaitable;
using detail::Executor;
using detail::Multiplexer;
using detail::Socket;
using detail::tcp;
using net::detail::kAwaitTuple;

namespace {

struct ServerUrl {
  bool tls = false;
  std::string host;  // Without brackets.
  std::string port;
  std::string base_path;  // Without a trailing '/'.
};

Result<ServerUrl> parseServerUrl(std::string_view url) {
  ServerUrl u;
  if (url.starts_with("https://")) {
    u.tls = true;
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else {
    return invalidArgument("tunnel: the server URL must start with http:// or https://");
  }
  const auto slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) u.base_path = std::string(url.substr(slash));
  while (!u.base_path.empty() && u.base_path.back() == '/') u.base_path.pop_back();
  if (authority.starts_with("[")) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return invalidArgument("tunnel: a malformed IPv6 address in the server URL");
    u.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':') return invalidArgument("tunnel: a malformed server URL");
    u.port = authority.empty() ? "" : std::string(authority.substr(1));
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty()) return invalidArgument("tunnel: the server URL has no host");
  if (u.port.empty()) u.port = u.tls ? "443" : "80";
  return u;
}

}  // namespace

struct TunnelClient::Impl {
  Impl(TunnelClientOptions o, ServerUrl u) : options(std::move(o)), url(std::move(u)) {}

  // Declared so that the io_context goes first (with the coroutine frames still queued in it,
  // which use what is declared before it) and its timers before it.
  TunnelClientOptions options;
  ServerUrl url;
  asio::thread_pool checks{1};  // Runs `allow`, which may block.
  asio::ssl::context ssl{asio::ssl::context::tls_client};
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::atomic<bool> finished{false};
  std::atomic<bool> is_connected{false};
  std::atomic<std::uint64_t> connect_count{0};
  asio::io_context io{1};
  std::optional<asio::steady_timer> pause;  // Between attempts; cancelled by stop().
  std::function<void()> close_current;      // Closes the live tunnel (on io).

  // What the multiplexer sends, until the WebSocket's writer takes it.
  struct Outbox {
    explicit Outbox(asio::io_context& io) : wake(io, asio::steady_timer::time_point::max()) {}
    std::deque<std::string> frames;
    bool gone = false;
    asio::steady_timer wake;
  };

  void log(std::string_view event, std::string_view detail) const {
    if (options.log) options.log(event, detail);
  }

  // Runs `allow` off the tunnel's thread and resumes here.
  Awaitable<Result<void>> checkAllowed(std::string target) {
    struct Box {
      std::mutex mutex;
      std::optional<Result<void>> result;
    };
    auto box = std::make_shared<Box>();
    auto timer = std::make_shared<asio::steady_timer>(io, asio::steady_timer::time_point::max());
    asio::post(checks, [this, box, timer, target] {
      Result<void> r = permissionDenied("tunnel: the agent refused");
      try {
        r = options.allow(target);
      } catch (...) {
      }
      {
        std::lock_guard lock(box->mutex);
        box->result.emplace(std::move(r));
      }
      asio::post(io, [timer] { timer->cancel(); });
    });
    for (;;) {
      {
        std::lock_guard lock(box->mutex);
        if (box->result) co_return std::move(*box->result);
      }
      co_await timer->async_wait(kAwaitTuple);
    }
  }

  Awaitable<Result<Socket>> dial(std::string target) {
    if (!isValidTarget(target)) co_return invalidArgument("a malformed target");
    if (auto allowed = co_await checkAllowed(target); !allowed.ok()) {
      log("tunnel_open_refused", target + ": " + allowed.error().message());
      co_return allowed.error();
    }
    const auto colon = target.rfind(':');
    std::string host = target.substr(0, colon), port = target.substr(colon + 1);
    if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
    asio::ip::basic_resolver<tcp, Executor> resolver(io.get_executor());
    auto [rec, results] = co_await resolver.async_resolve(host, port, kAwaitTuple);
    if (rec) co_return unavailable("cannot resolve " + host + ": " + rec.message());
    Socket socket(io.get_executor());
    asio::steady_timer deadline(io, options.connect_timeout);
    deadline.async_wait([&socket](const boost::system::error_code& ec) {
      if (!ec) {
        boost::system::error_code ignored;
        socket.close(ignored);
      }
    });
    auto [cec, ep] = co_await asio::async_connect(socket, results, kAwaitTuple);
    deadline.cancel();
    if (cec) co_return unavailable("cannot connect to " + target + ": " + cec.message());
    co_return std::move(socket);
  }

  template <class Ws>
  Awaitable<void> exchange(Ws& ws) {
    auto outbox = std::make_shared<Outbox>(io);
    Multiplexer::Options mo;
    mo.max_streams = options.max_streams;
    auto mux = std::make_shared<Multiplexer>(
        io.get_executor(),
        [outbox](std::string frame) {
          if (outbox->gone) return false;
          outbox->frames.push_back(std::move(frame));
          outbox->wake.cancel();
          return true;
        },
        [this](std::string target) { return dial(std::move(target)); }, mo);
    auto reader = [&]() -> Awaitable<void> {
      beast::flat_buffer buffer;
      for (;;) {
        auto [ec, n] = co_await ws.async_read(buffer, kAwaitTuple);
        if (ec) {
          log("tunnel_closed", ec.message());
          co_return;
        }
        if (ws.got_text()) {
          log("tunnel_closed", "the server sent a text message");
          co_return;
        }
        const auto data = buffer.cdata();
        auto r = mux->onFrame(std::string_view(static_cast<const char*>(data.data()), data.size()));
        buffer.consume(buffer.size());
        if (!r.ok()) {
          log("tunnel_closed", r.error().message());
          co_return;
        }
      }
    };
    auto writer = [&]() -> Awaitable<void> {
      ws.binary(true);
      for (;;) {
        if (outbox->frames.empty()) {
          outbox->wake.expires_at(asio::steady_timer::time_point::max());
          co_await outbox->wake.async_wait(kAwaitTuple);
          if (stopping.load()) co_return;
          continue;
        }
        std::string frame = std::move(outbox->frames.front());
        outbox->frames.pop_front();
        auto [ec, n] = co_await ws.async_write(asio::buffer(frame), kAwaitTuple);
        if (ec) co_return;
      }
    };
    close_current = [&ws, outbox] {
      outbox->wake.cancel();
      beast::get_lowest_layer(ws).close();
    };
    co_await (reader() || writer());
    close_current = nullptr;
    outbox->gone = true;
    outbox->frames.clear();
    mux->closeAll();
    is_connected.store(false);
  }

  template <class Ws>
  Awaitable<Result<void>> handshake(Ws& ws, const std::string& host_field) {
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::client);
    // Pings every half of idle_timeout find a dead server (or balancer) and keep idle tunnels open
    // through balancers that cut silent connections after a minute.
    timeouts.idle_timeout = std::chrono::seconds(40);
    timeouts.keep_alive_pings = true;
    timeouts.handshake_timeout = options.connect_timeout;
    ws.set_option(timeouts);
    ws.read_message_max(kMaxFrame);
    ws.auto_fragment(false);
    const std::string token = options.token ? options.token() : std::string();
    ws.set_option(websocket::stream_base::decorator([this, token](websocket::request_type& req) {
      req.set(beast::http::field::authorization, "Bearer " + token);
      req.set("X-Kasm-Agent-Id", options.agent.str());
      if (!options.boot_id.empty()) req.set("X-Kasm-Boot-Id", options.boot_id);
      req.set(beast::http::field::user_agent, "kasm-agent tunnel");
    }));
    websocket::response_type res;
    auto [ec] = co_await ws.async_handshake(res, host_field, url.base_path + options.path, kAwaitTuple);
    if (ec) {
      std::string why = ec.message();
      if (res.result_int() != 0) why = "HTTP " + std::to_string(res.result_int()) + ": " + std::string(res.body());
      co_return unavailable("tunnel handshake: " + why);
    }
    co_return Result<void>{};
  }

  // One tunnel, from connecting to its end.
  Awaitable<Result<void>> once() {
    asio::ip::basic_resolver<tcp, Executor> resolver(io.get_executor());
    auto [rec, results] = co_await resolver.async_resolve(url.host, url.port, kAwaitTuple);
    if (rec) co_return unavailable("cannot resolve " + url.host + ": " + rec.message());
    const bool v6 = url.host.find(':') != std::string::npos;
    const std::string host_field = (v6 ? "[" + url.host + "]" : url.host) + ":" + url.port;
    beast::basic_stream<tcp, Executor> stream(io.get_executor());
    stream.expires_after(options.connect_timeout);
    auto [cec, ep] = co_await stream.async_connect(results, kAwaitTuple);
    if (cec) co_return unavailable("cannot connect to " + host_field + ": " + cec.message());
    stream.expires_never();
    stream.socket().set_option(tcp::no_delay(true));
    if (url.tls) {
      websocket::stream<beast::ssl_stream<beast::basic_stream<tcp, Executor>>> ws(std::move(stream), ssl);
      auto& tls = ws.next_layer();
      if (!SSL_set_tlsext_host_name(tls.native_handle(), url.host.c_str())) {
        co_return unavailable("tunnel: cannot set the TLS server name");
      }
      if (!options.insecure) tls.set_verify_callback(asio::ssl::host_name_verification(url.host));
      beast::get_lowest_layer(ws).expires_after(options.connect_timeout);
      auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::client, kAwaitTuple);
      if (hec) co_return unavailable("TLS with " + host_field + ": " + hec.message());
      beast::get_lowest_layer(ws).expires_never();
      if (auto h = co_await handshake(ws, host_field); !h.ok()) co_return h.error();
      connected();
      co_await exchange(ws);
    } else {
      websocket::stream<beast::basic_stream<tcp, Executor>> ws(std::move(stream));
      if (auto h = co_await handshake(ws, host_field); !h.ok()) co_return h.error();
      connected();
      co_await exchange(ws);
    }
    co_return Result<void>{};
  }

  void connected() {
    is_connected.store(true);
    connect_count.fetch_add(1);
    log("tunnel_open", options.server);
  }

  Awaitable<void> run() {
    Duration wait = options.reconnect_min;
    while (!stopping.load()) {
      const auto began = std::chrono::steady_clock::now();
      Result<void> r = unavailable("tunnel: failed");
      try {
        r = co_await once();
      } catch (const std::exception& e) {
        r = unavailable(std::string("tunnel: ") + e.what());
      }
      if (stopping.load()) break;
      if (!r.ok()) log("tunnel_failed", r.error().message());
      // A tunnel that lived a while starts the pauses over; repeated failures back off.
      if (std::chrono::steady_clock::now() - began > std::chrono::seconds(30)) wait = options.reconnect_min;
      pause.emplace(io, wait);
      co_await pause->async_wait(kAwaitTuple);
      wait = std::min<Duration>(wait * 2, options.reconnect_max);
    }
  }
};

TunnelClient::TunnelClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TunnelClient::~TunnelClient() {
  stop();
}

Result<std::unique_ptr<TunnelClient>> TunnelClient::start(TunnelClientOptions options) {
  if (!options.allow) return invalidArgument("tunnel: `allow` is required");
  KASM_ASSIGN_OR_RETURN(auto url, parseServerUrl(options.server));
  auto impl = std::make_unique<Impl>(std::move(options), std::move(url));
  boost::system::error_code ec;
  if (impl->options.insecure) {
    impl->ssl.set_verify_mode(asio::ssl::verify_none);
  } else {
    impl->ssl.set_verify_mode(asio::ssl::verify_peer);
    if (!impl->options.ca_file.empty()) {
      impl->ssl.load_verify_file(impl->options.ca_file, ec);
      if (ec) return invalidArgument("tunnel: cannot read " + impl->options.ca_file + ": " + ec.message());
    } else {
      impl->ssl.set_default_verify_paths(ec);
    }
  }
  auto* raw = impl.get();
  asio::co_spawn(raw->io, raw->run(), asio::detached);
  raw->thread = std::thread([raw] {
    raw->io.run();
    raw->finished.store(true);
  });
  return std::unique_ptr<TunnelClient>(new TunnelClient(std::move(impl)));
}

bool TunnelClient::connected() const {
  return impl_->is_connected.load();
}

std::uint64_t TunnelClient::connects() const {
  return impl_->connect_count.load();
}

void TunnelClient::stop() {
  auto& im = *impl_;
  if (im.stopping.exchange(true)) return;
  asio::post(im.io, [&im] {
    if (im.pause) im.pause->cancel();
    if (im.close_current) im.close_current();
  });
  // Streams end once their sockets close; a dial in progress ends within connect_timeout. Past a
  // few seconds the loop is stopped where it stands.
  for (int i = 0; i < 300 && !im.finished.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!im.finished.load()) im.io.stop();
  if (im.thread.joinable()) im.thread.join();
  im.checks.join();
}

}  // namespace kasm::tunnel
