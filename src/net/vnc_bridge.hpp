#pragma once

// Internal to kasm::net: a VNC bridge's connection once its handshakes are done, detached from the
// request that opened it.
//
// A viewer stays connected for hours, mostly idle. While the bridge ran inside the request's
// coroutines, every frame of the chain stayed suspended for the viewer's whole life (the server's
// connection loop, the proxied request, the bridge, the RFB handshake, the two relays: about
// 5.4 KB), beside Beast's WebSocket stream (2.3 KB). Now the handshakes run in those coroutines,
// then the connection is handed to a VncBridge: a heap object that owns the desktop's socket and
// keeps the browser's connection alive, and runs both directions as completion handlers. The
// request's coroutines return (ClientContext::handed_over), so an idle viewer costs this object,
// its two sockets and two pending waits for readability; a relay buffer is taken only when a side
// has bytes to read, and given back when the read would block.
//
// Threading: everything runs on the connection's I/O thread (one io_context per thread), as the
// coroutines did. closeSession / closeViewer reach the bridge through its Exchange, on that thread.

#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "net/proxy_impl.hpp"
#include "net/rfb_filter.hpp"
#include "net/ws_frame.hpp"

namespace kasm::net::detail {

// What a bridge reads from a TLS browser at once, and the handshake's buffer for the browser's
// bytes. Viewers send small messages (keys, pointer); a long clipboard simply takes several reads.
inline constexpr std::size_t kBrowserReadBytes = 1024;

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

class VncBridge : public std::enable_shared_from_this<VncBridge> {
 public:
  // Registers the bridge's upstream with the exchange (closeSession cuts it) until destroyed.
  VncBridge(SessionProxy::Impl& proxy, Transport& client, ExchangeGuard& guard);
  ~VncBridge();
  VncBridge(const VncBridge&) = delete;
  VncBridge& operator=(const VncBridge&) = delete;

  Transport& upstream() noexcept { return upstream_; }
  Transport& client() noexcept { return client_; }
  // The browser's frames; the handshake reads through it first (BrowserChannel), so a frame cut
  // by the handover is parsed on.
  WsFrameReader& reader() noexcept { return reader_; }
  // Counts the bridge in ProxyStats::open_tunnels until it is destroyed.
  void countTunnel();

  // Starts relaying both ways and keeps `connection` (the server's connection, which owns the
  // browser's socket and the exchange) alive until both directions end, when both sockets are
  // closed. `payload` (the browser's bytes already unframed, not yet relayed) and `raw` (bytes
  // read but not yet parsed) are what the handshake left, at most kBrowserReadBytes together.
  // With `filter_rfb`, the browser's bytes go through the RFB filter (view-only viewers' input is
  // dropped, an unknown message ends the bridge). Must be called on the connection's thread, on a
  // bridge owned by a shared_ptr.
  void start(std::shared_ptr<void> connection, bool filter_rfb, std::span<const unsigned char> payload,
             std::span<const unsigned char> raw);

 private:
  enum class Out : std::uint8_t { kNone, kData, kControl };

  void run();
  void finish();
  // Desktop to browser: each read of the desktop goes out as one binary frame.
  void downRun();
  void waitDesktop();
  // Browser to desktop: frames parsed, payload filtered, written to the desktop.
  void upRun();
  void waitBrowser();
  bool parseBrowser();
  void answerEvent();
  // Writes what is queued for the browser (a control frame first when between frames); true when
  // nothing is left, false when a wait was started or the bridge ended.
  bool flushClient();
  void advanceOut(std::size_t n);
  void queueControl(WsOpcode opcode, std::span<const unsigned char> payload);
  void queueClose(std::uint16_t code);
  unsigned char* upData() noexcept;
  std::size_t upCapacity() const noexcept;

  // Declared first, so destroyed last: the client's transport and the exchange live in it.
  std::shared_ptr<void> connection_;
  SessionProxy::Impl& proxy_;
  Transport& client_;
  ExchangeGuard& guard_;
  Transport upstream_;
  WsFrameReader reader_;
  RfbClientFilter filter_;
  RelayBuffer down_;                             // The desktop's bytes, behind room for a frame header.
  RelayBuffer up_;                               // The browser's bytes: payload at the front, raw input after.
  std::unique_ptr<unsigned char[]> tls_in_;      // Replaces up_ for a TLS browser (see start()).
  const unsigned char* ctrl_payload_ = nullptr;  // A pong's payload, in reader_ (parsing waits meanwhile).
  std::size_t down_begin_ = 0, down_end_ = 0;    // The frame in down_ still to write.
  std::size_t up_out_ = 0;                       // Unframed payload at the front of the up buffer.
  std::size_t up_in_ = 0, up_end_ = 0;           // Raw input not yet parsed.
  std::size_t up_kept_ = 0, up_sent_ = 0;        // Filtered payload for the desktop, and how much went.
  unsigned char ctrl_head_[4] = {};              // A control frame's header (and a close frame's code).
  std::uint8_t ctrl_head_len_ = 0;
  std::uint8_t ctrl_payload_len_ = 0;
  std::uint8_t ctrl_sent_ = 0;
  bool ctrl_queued_ = false;
  Out out_ = Out::kNone;            // The frame being written to the browser, once its first byte went.
  WsEvent event_ = WsEvent::kNone;  // A control frame parsed, answered once the payload before it went.
  bool filter_rfb_ = false;
  bool filter_failed_ = false;
  bool closing_ = false;  // A close frame is queued: no more data frames, end once it is out.
  bool done_ = false;
  bool counted_ = false;
  bool down_wait_ = false;    // Waiting for the desktop to be readable, or letting others run.
  bool up_wait_ = false;      // Waiting for the browser to be readable or the desktop writable.
  bool client_wait_ = false;  // Waiting for the browser to be writable (or a TLS write).
  // A read found its socket emptied and nothing returned to the event loop since: waiting for
  // readability is then safe without another read (Asio's epoll reactor is edge-triggered, so an
  // edge that came while nothing waited would be missed).
  bool down_drained_ = false;
  bool up_drained_ = false;
};

// The browser's side of a bridge during the RFB handshake, for coroutines: the bytes of its binary
// messages as a stream, and messages to it. Pings are answered; a close or a protocol error is
// answered with a close frame and ends the handshake. Holds a kBrowserReadBytes buffer, given back
// when the handshake is over.
class BrowserChannel {
 public:
  BrowserChannel(Transport& client, WsFrameReader& reader);
  Transport& transport() noexcept { return client_; }
  // Makes sure `n` unread bytes are buffered (n is a few bytes, far below the buffer).
  Awaitable<bool> need(std::size_t n);
  const unsigned char* take(std::size_t n);
  // Sends `bytes` as one binary message.
  Awaitable<bool> send(std::string_view bytes);
  // The closing handshake: a close frame with `code`, then the browser's bytes until its close
  // frame (bounded by the caller's deadline on the socket); then the socket is closed.
  Awaitable<> close(std::uint16_t code);
  // What the handshake left: unframed payload not taken, and raw bytes not parsed.
  std::span<const unsigned char> payload() const noexcept { return {buf_.data() + pay_begin_, pay_end_ - pay_begin_}; }
  std::span<const unsigned char> raw() const noexcept { return {buf_.data() + raw_begin_, raw_end_ - raw_begin_}; }

 private:
  Awaitable<bool> sendFrame(WsOpcode opcode, std::span<const unsigned char> payload);
  Awaitable<bool> sendClose(std::uint16_t code);

  Transport& client_;
  WsFrameReader& reader_;
  std::vector<unsigned char> buf_;
  std::size_t pay_begin_ = 0, pay_end_ = 0;  // Payload, before...
  std::size_t raw_begin_ = 0, raw_end_ = 0;  // ...the raw bytes not yet parsed.
};

}  // namespace kasm::net::detail
