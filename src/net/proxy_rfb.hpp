#pragma once

// Internal to kasm::net: the VNC bridge's RFB side (proxy_rfb.cpp) and what it shares with the
// rest of the bridge (proxy_tunnel.cpp): the WebSocket type on our Transport and the relays.

#include <boost/beast/websocket.hpp>
#include <string>
#include <string_view>
#include <vector>

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

// What a VNC bridge reads from the browser at once. The bridge keeps this one small buffer for its
// life (a WebSocket stream may hold bytes of a frame, so waiting on the socket says nothing);
// viewers send small messages (keys, pointer), and a long clipboard simply takes several reads
// (Beast copies a frame's payload out of its own 1,536-byte read buffer anyway).
inline constexpr std::size_t kBrowserReadBytes = 1024;

// The proxy's RFB client handshake with the desktop, up to and including its SecurityResult
// (ClientInit is sent once the browser has sent its own). Bounded by upstream_timeout. Returns an
// empty string on success, else why it failed, in words for the browser's user.
Awaitable<std::string> greetDesktop(SessionProxy::Impl& proxy, Transport& up, std::string_view password);

// The RFB server handshake with the browser over `ws` (only security type None offered, bounded
// by upstream_timeout), then the desktop's shared ClientInit, then the relay both ways with the
// browser's messages filtered. With `desktop_failure` set, the browser gets it as an RFB failure
// reason instead and the WebSocket closes.
// `from_browser` is the bridge's kBrowserReadBytes buffer for the browser's bytes.
Awaitable<> serveRfbViewer(SessionProxy::Impl& proxy, ClientContext& client, VncWebSocket& ws, Transport& up,
                           std::vector<char>& from_browser, ExchangeGuard& guard, const std::string& desktop_failure);

// Hands a reason to ProxyOptions::on_vnc_error, when set.
void reportVncError(SessionProxy::Impl& proxy, ExchangeGuard& guard, std::string_view why);

// Desktop to browser: each read of the desktop's port goes out as one binary message. A silent
// desktop holds no relay buffer (see the tunnel's pump).
Awaitable<> relayDesktopToBrowser(SessionProxy::Impl& proxy, ClientContext& client, VncWebSocket& ws, Transport& up,
                                  ExchangeGuard& guard);

}  // namespace kasm::net::detail
