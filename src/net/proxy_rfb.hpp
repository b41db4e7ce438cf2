#pragma once

// Internal to kasm::net: the VNC bridge's RFB side (proxy_rfb.cpp) and what it shares with the
// rest of the bridge (proxy_tunnel.cpp): the WebSocket type on our Transport and the relays.

#include <boost/beast/websocket.hpp>
#include <string>
#include <string_view>

#include "net/proxy_impl.hpp"
#include "net/ws_transport.hpp"

namespace kasm::net::detail {

namespace websocket = beast::websocket;
using VncWebSocket = websocket::stream<Transport&>;

// A tunnel's sockets each carry the idle deadline: every operation on a socket moves it, so a
// socket times out only when nothing moved on it either way (a one-way stream keeps both alive:
// reads keep its source, writes its destination).
inline void armIdle(Transport& t, Duration idle) {
  if (idle > Duration::zero()) {
    t.tcp().expires_after(idle);
  } else {
    t.tcp().expires_never();
  }
}

// The proxy's RFB client handshake with the desktop, up to and including its SecurityResult
// (ClientInit is sent once the browser has sent its own). Bounded by upstream_timeout. Returns an
// empty string on success, else why it failed, in words for the browser's user.
Awaitable<std::string> greetDesktop(SessionProxy::Impl& proxy, Transport& up, std::string_view password);

// The RFB server handshake with the browser over `ws` (only security type None offered, bounded
// by upstream_timeout), then the desktop's shared ClientInit, then the relay both ways with the
// browser's messages filtered. With `desktop_failure` set, the browser gets it as an RFB failure
// reason instead and the WebSocket closes.
Awaitable<> serveRfbViewer(SessionProxy::Impl& proxy, ClientContext& client, VncWebSocket& ws, Transport& up,
                           ConnectionState& state, ExchangeGuard& guard, const std::string& desktop_failure);

// Hands a reason to ProxyOptions::on_vnc_error, when set.
void reportVncError(SessionProxy::Impl& proxy, ExchangeGuard& guard, std::string_view why);

// Desktop to browser: each read of the desktop's port goes out as one binary message.
Awaitable<> relayDesktopToBrowser(SessionProxy::Impl& proxy, ClientContext& client, VncWebSocket& ws, Transport& up,
                                  ConnectionState& state, ExchangeGuard& guard);

}  // namespace kasm::net::detail
