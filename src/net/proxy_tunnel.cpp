// Connections that stop being HTTP: an upgrade the upstream accepted (bytes copied both ways) and
// the VNC bridge (WebSocket messages on the client side, raw RFB on the session's port), opaque or
// speaking RFB itself (proxy_rfb.cpp).

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "net/proxy_impl.hpp"
#include "net/proxy_rfb.hpp"
#include "net/stream_io.hpp"
#include "net/vnc_bridge.hpp"
#include "net/ws_frame.hpp"

namespace kasm::net::detail {

namespace {
using namespace asio::experimental::awaitable_operators;

// Copies `in` to `out` until either side ends or idles out, then closes both. A silent side holds
// no buffer: the pump waits for readability, takes a relay buffer, reads and forwards until the
// read would block, and gives the buffer back. A TLS side keeps its buffer for the tunnel's life:
// its stream may hold decrypted bytes the socket's readiness says nothing about.
template <class CountFn>
Awaitable<> pump(SessionProxy::Impl& proxy, Transport& in, Transport& out, Duration idle, CountFn count) {
  RelayBuffer buf;
  // Whether the last read found the socket empty with no suspension since: only then is waiting
  // for readiness safe (an edge that came while nothing waited would otherwise be missed).
  bool drained = false;
  for (;;) {
    armIdle(in, idle);
    std::size_t n = 0;
    if (in.secure()) {
      buf.take(proxy.options.buffer_bytes, proxy.buffers_in_use);
      auto [ec, k] = co_await in.async_read_some(asio::buffer(buf.data(), buf.size()), kAwaitTuple);
      if (ec) break;
      n = k;
    } else {
      if (drained) {
        buf.release();
        auto [wec] = co_await in.tcp().async_wait(tcp::socket::wait_read, kAwaitTuple);
        if (wec) break;
      }
      buf.take(proxy.options.buffer_bytes, proxy.buffers_in_use);
      beast::error_code ec;
      n = in.tcp().readSomeNow(asio::buffer(buf.data(), buf.size()), ec);
      if (ec == asio::error::would_block) {
        drained = true;
        continue;
      }
      if (ec) break;
      // A short read emptied the socket: the next bytes raise a new edge.
      drained = n < buf.size();
    }
    count(n);
    armIdle(out, idle);
    // Most messages go out whole at once; only the rest, if any, waits for the socket.
    std::size_t sent = 0;
    if (!out.secure()) {
      beast::error_code sec;
      sent = out.tcp().writeSomeNow(asio::buffer(buf.data(), n), sec);
      if (sec && sec != asio::error::would_block) break;
    }
    if (sent < n) {
      drained = false;  // The write may suspend: readiness reported meanwhile is not seen again.
      if (auto wec = co_await writeAll(out, asio::buffer(buf.data() + sent, n - sent)); wec) break;
    }
  }
  in.close();
  out.close();
}

// Whether the request offers the "binary" subprotocol.
bool offersBinary(const http::request<http::empty_body>& req) {
  auto it = req.find(http::field::sec_websocket_protocol);
  if (it == req.end()) return false;
  for (auto p : http::token_list{it->value()}) {
    if (p == "binary") return true;
  }
  return false;
}

}  // namespace

Awaitable<> tunnelUpgraded(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                           ConnectionState& state, ExchangeGuard& guard) {
  Transport& up = *state.upstream;
  // WebSocket (or another upgrade) accepted by the upstream: from here on bytes are opaque.
  // Send on whatever each side already buffered, then pump both ways until either closes.
  auto& client_t = client.transport;
  if (buffer.size() > 0) {
    guard.clientTraffic(buffer.size());
    if (co_await writeAll(up, buffer.data())) co_return;
    buffer.consume(buffer.size());
  }
  if (state.upstream_buffer.size() > 0) {
    if (co_await writeAll(client_t, state.upstream_buffer.data())) co_return;
    state.upstream_buffer.consume(state.upstream_buffer.size());
  }
  // Neither HTTP buffer is used again while the tunnel lives (it may live for hours).
  buffer.shrink_to_fit();
  state.upstream_buffer.shrink_to_fit();
  const Duration idle = proxy.options.tunnel_idle_timeout;
  proxy.tunnels.fetch_add(1);
  co_await (pump(proxy, client_t, up, idle, [&](std::size_t n) { guard.clientTraffic(n); }) &&
            pump(proxy, up, client_t, idle, [&](std::size_t n) { guard.upstreamTraffic(n); }));
  proxy.tunnels.fetch_sub(1);
  state.upstream.reset();
  co_return;
}

Awaitable<bool> bridgeVnc(SessionProxy::Impl& proxy, ClientContext& client, HeaderParser& parser,
                          ConnectionState& state, ExchangeGuard& guard, const ProxyTarget& target) {
  Exchange& exchange = guard.exchange();
  releaseIfEmpty(state.upstream_buffer);  // Unused while the bridge lives (it may live for hours).
  // What Beast's accept checked beyond what made this an upgrade (GET, HTTP/1.1, Upgrade and
  // Connection): a key, and version 13 (another version gets 426 and the one we speak).
  const auto& req = parser.get();
  const std::string_view key = req[http::field::sec_websocket_key];
  const std::string_view version = req[http::field::sec_websocket_version];
  if (key.empty() || key.size() > 24 || version.empty() || req.find(http::field::host) == req.end()) {
    co_return co_await refuse(proxy, client, req.version(), false, 400, "proxy: not a WebSocket handshake");
  }
  if (version != "13") {
    HttpHeaders extra;
    extra.add("Sec-WebSocket-Version", "13");
    co_return co_await refuse(proxy, client, req.version(), false, 426, "proxy: WebSocket version 13 only", &extra);
  }
  // The bridge registers its upstream with the exchange (closeSession may cut it from now on).
  auto bridge = std::make_shared<VncBridge>(proxy, client.transport, guard);
  Transport& upstream = bridge->upstream();
  // The target's access, unless setViewerAccess already spoke for this connection (it is newer
  // than the authorizer's answer, which may have been read before the change).
  std::uint8_t unset = kAccessUnset;
  exchange.access.compare_exchange_strong(unset, accessCode(target.access));
  // Publish the bridge's kind before reading the access again: setViewerAccess stores the access
  // before it reads the kind, so a change made now is seen by one side or the other.
  // A terminal (SSH through a gateway) is relayed opaque: only RFB can be filtered.
  const bool rfb = target.protocol == SessionProtocol::kVnc;
  const bool speaks_rfb = rfb && (target.vnc_password.has_value() || exchange.access.load() == kAccessViewOnly);
  exchange.bridge = speaks_rfb ? kRfbBridge : kOpaqueBridge;
  if (!speaks_rfb && exchange.access.load() == kAccessViewOnly) {
    co_return co_await reject(proxy, client, parser, 403,
                              rfb ? "proxy: view-only access needs the desktop's VNC password"
                                  : "proxy: a terminal cannot be opened view-only");
  }
  if (auto ec = co_await connectUpstream(proxy, upstream, target); ec) {
    co_return co_await reject(proxy, client, parser, 502,
                              std::string(rfb ? "proxy: the session's VNC port does not answer: "
                                              : "proxy: the session's gateway does not answer: ") +
                                  ec.message());
  }
  // A gateway learns from the preamble where to connect; it comes before any byte of the stream.
  if (!target.upstream_preamble.empty()) {
    if (auto ec = co_await writeAll(upstream, asio::buffer(target.upstream_preamble)); ec) {
      co_return co_await reject(proxy, client, parser, 502, "proxy: the session's gateway closed: " + ec.message());
    }
  }
  std::string desktop_failure;
  if (speaks_rfb) {
    desktop_failure = co_await greetDesktop(proxy, upstream, target.vnc_password.value_or(""));
    if (!desktop_failure.empty()) reportVncError(proxy, guard, desktop_failure);
  }

  // The WebSocket handshake's answer. noVNC asks for the "binary" subprotocol (websockify's
  // name); it is echoed when offered.
  std::string answer =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
  answer += wsAcceptKey(key);
  answer += offersBinary(req) ? "\r\nSec-WebSocket-Protocol: binary\r\n\r\n" : "\r\n\r\n";
  client.transport.tcp().expires_after(proxy.options.upstream_timeout);
  if (co_await writeAll(client.transport, asio::buffer(answer))) co_return false;
  // The upgrade request's fields are not needed again; the bridge may live for hours.
  { [[maybe_unused]] auto request = parser.release(); }
  bridge->countTunnel();

  // The RFB handshake with the browser, when the proxy speaks RFB; its buffer is gone once the
  // relay starts.
  std::optional<BrowserChannel> browser;
  if (speaks_rfb) {
    browser.emplace(client.transport, bridge->reader());
    if (!co_await serveRfbViewer(proxy, *browser, upstream, guard, desktop_failure)) {
      upstream.close();
      client.transport.close();
      co_return false;
    }
  }
  if (!client.connection) {  // Only a server connection can be handed over (HttpServer always can).
    client.transport.close();
    co_return false;
  }
  // From here on the bridge owns the connection: the request's coroutines return and the server
  // neither closes nor reuses it.
  bridge->start(std::move(client.connection), speaks_rfb,
                browser ? browser->payload() : std::span<const unsigned char>{},
                browser ? browser->raw() : std::span<const unsigned char>{});
  client.handed_over = true;
  co_return false;
}

}  // namespace kasm::net::detail
