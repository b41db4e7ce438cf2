// The VNC bridge when it speaks RFB itself: the proxy is the desktop's client (it holds the VNC
// password and always asks to share the desktop) and the browser's server (it offers only
// security type None, so no browser needs the password). This file holds both handshakes; the
// relay that follows (vnc_bridge.cpp) filters the browser's messages, dropping a view-only viewer's
// input (rfb_filter.hpp).
//
// Handshakes (RFC 6143 7.1-7.3): ProtocolVersion "RFB 003.00x\n" both ways; in 3.7 and 3.8 the
// server lists security types (u8 count, then types; count 0 is a failure with a u32-length
// reason) and the client picks one, in 3.3 the server names one (u32; 0 is a failure with a
// reason); SecurityResult (u32, 0 is OK) follows VNC Authentication always and None only in 3.8,
// and a 3.8 failure carries a reason. Then ClientInit (u8 shared-flag) and the server's ServerInit,
// which reaches the browser through the relay.

#include "net/proxy_rfb.hpp"

#include <cstring>

#include "auth/vnc_auth.hpp"
#include "net/stream_io.hpp"

namespace kasm::net::detail {

namespace {

constexpr std::size_t kMaxReason = 1024;  // Longest desktop failure reason read.

void putU32(std::string& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xFF));
}
std::uint32_t getU32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

// The minor version of "RFB 003.00x\n" as the handshake treats it: 8 (3.8 and anything newer),
// 7, or 3 (3.3 and the odd versions the spec says to treat as 3.3); 0 for no RFB greeting.
int rfbMinor(const unsigned char* v) {
  if (std::memcmp(v, "RFB ", 4) != 0 || v[7] != '.' || v[11] != '\n') return 0;
  int major = 0, minor = 0;
  for (int i = 4; i < 7; ++i) {
    if (v[i] < '0' || v[i] > '9') return 0;
    major = major * 10 + (v[i] - '0');
  }
  for (int i = 8; i < 11; ++i) {
    if (v[i] < '0' || v[i] > '9') return 0;
    minor = minor * 10 + (v[i] - '0');
  }
  if (major < 3) return 0;
  if (major > 3 || minor >= 8) return 8;
  return minor == 7 ? 7 : 3;
}

Awaitable<bool> readExact(Transport& in, void* p, std::size_t n) {
  auto [ec, k] = co_await asio::async_read(in, asio::buffer(p, n), kAwaitTuple);
  co_return !ec;
}
Awaitable<bool> writeExact(Transport& out, const void* p, std::size_t n) {
  auto ec = co_await writeAll(out, asio::buffer(p, n));
  co_return !ec;
}

// Reads a u32-length reason from the desktop, at most kMaxReason bytes of it.
Awaitable<std::string> readReason(Transport& up) {
  unsigned char len[4];
  if (!co_await readExact(up, len, 4)) co_return std::string();
  std::string reason(std::min<std::size_t>(getU32(len), kMaxReason), '\0');
  if (!co_await readExact(up, reason.data(), reason.size())) co_return std::string();
  co_return reason;
}

}  // namespace

void reportVncError(SessionProxy::Impl& proxy, ExchangeGuard& guard, std::string_view why) {
  if (!proxy.options.on_vnc_error) return;
  try {
    proxy.options.on_vnc_error(guard.session(), guard.user(), why);
  } catch (...) {
    // A failed log line changes nothing about the connection.
  }
}

Awaitable<std::string> greetDesktop(SessionProxy::Impl& proxy, Transport& up, std::string_view password) {
  up.tcp().expires_after(proxy.options.upstream_timeout);
  const std::string no_answer = "the desktop did not complete the VNC handshake";
  unsigned char version[12];
  if (!co_await readExact(up, version, 12)) co_return no_answer;
  const int minor = rfbMinor(version);
  if (minor == 0) co_return "the desktop does not speak RFB";
  const std::string reply = "RFB 003.00" + std::to_string(minor) + "\n";
  if (!co_await writeExact(up, reply.data(), reply.size())) co_return no_answer;

  std::uint8_t chosen = 0;
  if (minor >= 7) {
    unsigned char count = 0;
    if (!co_await readExact(up, &count, 1)) co_return no_answer;
    if (count == 0) co_return "the desktop refused the connection: " + co_await readReason(up);
    unsigned char types[255];
    if (!co_await readExact(up, types, count)) co_return no_answer;
    const bool has_none = std::memchr(types, 1, count) != nullptr;
    const bool has_vnc_auth = std::memchr(types, 2, count) != nullptr;
    // With a password, VNC Authentication first; without, None first (and VNC Authentication
    // with the empty password when that is all the desktop offers).
    if (!password.empty()) {
      chosen = has_vnc_auth ? 2 : has_none ? 1 : 0;
    } else {
      chosen = has_none ? 1 : has_vnc_auth ? 2 : 0;
    }
    if (chosen == 0) co_return "the desktop offers no security type the proxy can use";
    if (!co_await writeExact(up, &chosen, 1)) co_return no_answer;
  } else {
    unsigned char type[4];
    if (!co_await readExact(up, type, 4)) co_return no_answer;
    const std::uint32_t t = getU32(type);
    if (t == 0) co_return "the desktop refused the connection: " + co_await readReason(up);
    if (t != 1 && t != 2) co_return "the desktop offers no security type the proxy can use";
    chosen = static_cast<std::uint8_t>(t);
  }
  if (chosen == 2) {
    unsigned char challenge[16];
    if (!co_await readExact(up, challenge, 16)) co_return no_answer;
    const auto response = auth::detail::vncAuthResponse(password, challenge);
    if (!co_await writeExact(up, response.data(), response.size())) co_return no_answer;
  }
  if (chosen == 2 || minor == 8) {
    unsigned char result[4];
    if (!co_await readExact(up, result, 4)) co_return no_answer;
    if (getU32(result) != 0) co_return "the desktop refused the proxy's credentials";
  }
  co_return std::string();
}

Awaitable<bool> serveRfbViewer(SessionProxy::Impl& proxy, BrowserChannel& browser, Transport& up, ExchangeGuard& guard,
                               const std::string& desktop_failure) {
  browser.transport().tcp().expires_after(proxy.options.upstream_timeout);
  if (!co_await browser.send("RFB 003.008\n") || !co_await browser.need(12)) co_return false;
  const int minor = rfbMinor(browser.take(12));
  if (minor == 0) {
    reportVncError(proxy, guard, "the viewer does not speak RFB");
    co_return false;
  }

  if (!desktop_failure.empty()) {
    // A 3.3 viewer reads a u32 security type, 3.7 and 3.8 a u8 count; 0 then a reason either way.
    std::string failure = minor == 3 ? std::string(4, '\0') : std::string(1, '\0');
    putU32(failure, static_cast<std::uint32_t>(desktop_failure.size()));
    failure += desktop_failure;
    if (!co_await browser.send(failure)) co_return false;
    browser.transport().tcp().expires_after(std::chrono::seconds(5));
    co_await browser.close(kWsCloseNormal);
    co_return false;
  }

  if (minor == 3) {
    std::string none;
    putU32(none, 1);
    if (!co_await browser.send(none)) co_return false;
  } else {
    if (!co_await browser.send(std::string("\x01\x01", 2)) || !co_await browser.need(1)) co_return false;
    if (*browser.take(1) != 1) {
      if (minor == 8) {
        std::string refused;
        putU32(refused, 1);
        const std::string why = "only security type None is offered";
        putU32(refused, static_cast<std::uint32_t>(why.size()));
        (void)co_await browser.send(refused + why);
      }
      co_return false;
    }
    if (minor == 8 && !co_await browser.send(std::string(4, '\0'))) co_return false;
  }
  // The browser's ClientInit; whatever it asked, the desktop is shared, so a new viewer never
  // disconnects the others.
  if (!co_await browser.need(1)) co_return false;
  (void)browser.take(1);
  const unsigned char shared = 1;
  co_return co_await writeExact(up, &shared, 1);
}

}  // namespace kasm::net::detail
