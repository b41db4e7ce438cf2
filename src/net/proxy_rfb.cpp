// The VNC bridge when it speaks RFB itself: the proxy is the desktop's client (it holds the VNC
// password and always asks to share the desktop) and the browser's server (it offers only
// security type None, so no browser needs the password), then relays with the browser's messages
// filtered, dropping a view-only viewer's input (rfb_filter.hpp).
//
// Handshakes (RFC 6143 7.1-7.3): ProtocolVersion "RFB 003.00x\n" both ways; in 3.7 and 3.8 the
// server lists security types (u8 count, then types; count 0 is a failure with a u32-length
// reason) and the client picks one, in 3.3 the server names one (u32; 0 is a failure with a
// reason); SecurityResult (u32, 0 is OK) follows VNC Authentication always and None only in 3.8,
// and a 3.8 failure carries a reason. Then ClientInit (u8 shared-flag) and the server's ServerInit,
// which reaches the browser through the relay.

#include "net/proxy_rfb.hpp"

#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <cstring>

#include "auth/vnc_auth.hpp"
#include "net/rfb_filter.hpp"
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

// The browser's bytes as the handshake reads them, kept in the bridge's client->desktop buffer:
// what the browser sent beyond the handshake stays there for the filter.
class BrowserBytes {
 public:
  BrowserBytes(VncWebSocket& ws, std::vector<char>& buf) : ws_(ws), buf_(buf) {}
  // Makes sure `n` unread bytes are buffered (n is at most a few bytes, far below the buffer).
  Awaitable<bool> need(std::size_t n) {
    if (buf_.size() - begin_ < n) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    while (end_ - begin_ < n) {
      auto [ec, k] = co_await ws_.async_read_some(asio::buffer(buf_.data() + end_, buf_.size() - end_), kAwaitTuple);
      if (ec) co_return false;
      end_ += k;
    }
    co_return true;
  }
  const unsigned char* take(std::size_t n) {
    const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + begin_);
    begin_ += n;
    return p;
  }
  // Moves what is left to the front of the buffer; returns its size.
  std::size_t rest() {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    return end_ - begin_;
  }

 private:
  VncWebSocket& ws_;
  std::vector<char>& buf_;
  std::size_t begin_ = 0, end_ = 0;
};

Awaitable<bool> sendToBrowser(VncWebSocket& ws, const std::string& bytes) {
  auto [ec, n] = co_await ws.async_write(asio::buffer(bytes), kAwaitTuple);
  co_return !ec;
}

// Browser to desktop, through the filter: the bytes left over from the handshake first.
Awaitable<> relayBrowserToDesktop(SessionProxy::Impl& proxy, ClientContext& client, VncWebSocket& ws, Transport& up,
                                  std::vector<char>& buf, ExchangeGuard& guard, std::size_t pending) {
  const Duration idle = proxy.options.tunnel_idle_timeout;
  RfbClientFilter filter;
  for (;;) {
    std::size_t n = pending;
    pending = 0;
    if (n == 0) {
      armIdle(client.transport, idle);
      auto [ec, k] = co_await ws.async_read_some(asio::buffer(buf), kAwaitTuple);
      if (ec) break;
      n = k;
    }
    const bool view_only = guard.exchange().access.load(std::memory_order_relaxed) == kAccessViewOnly;
    const auto r = filter.filter({reinterpret_cast<unsigned char*>(buf.data()), n}, view_only);
    if (r.dropped > 0) proxy.input_dropped.fetch_add(r.dropped, std::memory_order_relaxed);
    if (r.kept > 0) {
      guard.clientTraffic(r.kept);
      armIdle(up, idle);
      if (auto wec = co_await writeAll(up, asio::buffer(buf.data(), r.kept)); wec) break;
    }
    if (r.error != RfbFilterError::kNone) {
      reportVncError(proxy, guard, rfbFilterErrorText(r.error));
      break;
    }
  }
  up.close();
  client.transport.close();
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

Awaitable<> relayDesktopToBrowser(SessionProxy::Impl& proxy, ClientContext& client, VncWebSocket& ws, Transport& up,
                                  ExchangeGuard& guard) {
  const Duration idle = proxy.options.tunnel_idle_timeout;
  RelayBuffer buf;
  // As in the tunnel's pump: wait for readiness only right after a read found the socket empty.
  bool drained = false;
  for (;;) {
    armIdle(up, idle);
    std::size_t n = 0;
    if (up.secure()) {
      buf.take(proxy.options.buffer_bytes, proxy.buffers_in_use);
      auto [ec, k] = co_await up.async_read_some(asio::buffer(buf.data(), buf.size()), kAwaitTuple);
      if (ec) break;
      n = k;
    } else {
      if (drained) {
        buf.release();
        auto [wec] = co_await up.tcp().async_wait(tcp::socket::wait_read, kAwaitTuple);
        if (wec) break;
      }
      buf.take(proxy.options.buffer_bytes, proxy.buffers_in_use);
      beast::error_code ec;
      n = up.tcp().readSomeNow(asio::buffer(buf.data(), buf.size()), ec);
      if (ec == asio::error::would_block) {
        drained = true;
        continue;
      }
      if (ec) break;
    }
    guard.upstreamTraffic(n);
    armIdle(client.transport, idle);
    auto [wec, w] = co_await ws.async_write(asio::buffer(buf.data(), n), kAwaitTuple);
    if (wec) break;
    drained = false;  // The write suspended: try a read before waiting again.
  }
  up.close();
  client.transport.close();
}

Awaitable<> serveRfbViewer(SessionProxy::Impl& proxy, ClientContext& client, VncWebSocket& ws, Transport& up,
                           std::vector<char>& from_browser, ExchangeGuard& guard, const std::string& desktop_failure) {
  using namespace asio::experimental::awaitable_operators;
  client.transport.tcp().expires_after(proxy.options.upstream_timeout);
  BrowserBytes in(ws, from_browser);
  if (!co_await sendToBrowser(ws, "RFB 003.008\n") || !co_await in.need(12)) co_return;
  const int minor = rfbMinor(in.take(12));
  if (minor == 0) {
    reportVncError(proxy, guard, "the viewer does not speak RFB");
    co_return;
  }

  if (!desktop_failure.empty()) {
    // A 3.3 viewer reads a u32 security type, 3.7 and 3.8 a u8 count; 0 then a reason either way.
    std::string failure = minor == 3 ? std::string(4, '\0') : std::string(1, '\0');
    putU32(failure, static_cast<std::uint32_t>(desktop_failure.size()));
    failure += desktop_failure;
    if (!co_await sendToBrowser(ws, failure)) co_return;
    client.transport.tcp().expires_after(std::chrono::seconds(5));
    co_await ws.async_close(websocket::close_code::normal, kAwaitTuple);
    co_return;
  }

  if (minor == 3) {
    std::string none;
    putU32(none, 1);
    if (!co_await sendToBrowser(ws, none)) co_return;
  } else {
    if (!co_await sendToBrowser(ws, std::string("\x01\x01", 2)) || !co_await in.need(1)) co_return;
    if (*in.take(1) != 1) {
      if (minor == 8) {
        std::string refused;
        putU32(refused, 1);
        const std::string why = "only security type None is offered";
        putU32(refused, static_cast<std::uint32_t>(why.size()));
        (void)co_await sendToBrowser(ws, refused + why);
      }
      co_return;
    }
    if (minor == 8 && !co_await sendToBrowser(ws, std::string(4, '\0'))) co_return;
  }
  // The browser's ClientInit; whatever it asked, the desktop is shared, so a new viewer never
  // disconnects the others.
  if (!co_await in.need(1)) co_return;
  (void)in.take(1);
  const unsigned char shared = 1;
  if (!co_await writeExact(up, &shared, 1)) co_return;

  const std::size_t pending = in.rest();
  co_await (relayBrowserToDesktop(proxy, client, ws, up, from_browser, guard, pending) &&
            relayDesktopToBrowser(proxy, client, ws, up, guard));
}

}  // namespace kasm::net::detail
