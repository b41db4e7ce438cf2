#pragma once

// Internal to kasm::net: the VNC bridge's RFB side (proxy_rfb.cpp): the handshakes with the desktop
// and the browser. The relay that follows is a VncBridge's (vnc_bridge.hpp).

#include <string>
#include <string_view>

#include "net/proxy_impl.hpp"
#include "net/vnc_bridge.hpp"

namespace kasm::net::detail {

// The proxy's RFB client handshake with the desktop, up to and including its SecurityResult
// (ClientInit is sent once the browser has sent its own). Bounded by upstream_timeout. Returns an
// empty string on success, else why it failed, in words for the browser's user.
Awaitable<std::string> greetDesktop(SessionProxy::Impl& proxy, Transport& up, std::string_view password);

// The RFB server handshake with the browser (only security type None offered, bounded by
// upstream_timeout), then the browser's ClientInit, answered by a shared ClientInit to the desktop
// (whose ServerInit then reaches the browser through the relay). True when the relay may start:
// what the browser sent beyond its ClientInit is left in `browser`. With `desktop_failure` set, the
// browser gets it as an RFB failure reason instead and the WebSocket closes (false).
Awaitable<bool> serveRfbViewer(SessionProxy::Impl& proxy, BrowserChannel& browser, Transport& up, ExchangeGuard& guard,
                               const std::string& desktop_failure);

// Hands a reason to ProxyOptions::on_vnc_error, when set.
void reportVncError(SessionProxy::Impl& proxy, ExchangeGuard& guard, std::string_view why);

}  // namespace kasm::net::detail
