// Connections that stop being HTTP: an upgrade the upstream accepted (bytes copied both ways by an
// UpgradeTunnel, upgrade_tunnel.hpp) and the VNC bridge (WebSocket messages on the client side, raw
// RFB on the session's port), opaque or speaking RFB itself (proxy_rfb.cpp).

#include "net/proxy_impl.hpp"
#include "net/proxy_rfb.hpp"
#include "net/stream_io.hpp"
#include "net/upgrade_tunnel.hpp"
#include "net/vnc_bridge.hpp"
#include "net/ws_frame.hpp"

namespace kasm::net::detail {

namespace {

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
  // Send on whatever each side already buffered, then hand the connection to the tunnel.
  auto& client_t = client.transport;
  if (buffer.size() > 0) {
    guard.clientTraffic(buffer.size());
    if (co_await writeAll(up, buffer.data())) co_return;
    buffer.consume(buffer.size());
  }
  if (state.upstream_buffer.size() > 0) {
    guard.upstreamTraffic(state.upstream_buffer.size());
    if (co_await writeAll(client_t, state.upstream_buffer.data())) co_return;
    state.upstream_buffer.consume(state.upstream_buffer.size());
  }
  // Neither HTTP buffer is used again while the tunnel lives (it may live for hours).
  buffer.shrink_to_fit();
  state.upstream_buffer.shrink_to_fit();
  if (!client.connection) {  // Only a server connection can be handed over (HttpServer always can).
    up.close();
    client_t.close();
    co_return;
  }
  // From here on the tunnel owns the connection: the request's coroutines return and the server
  // neither closes nor reuses it.
  std::make_shared<UpgradeTunnel>(proxy, client_t, up, guard)->start(std::move(client.connection));
  client.handed_over = true;
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
