// A VNC bridge after its handshakes (see vnc_bridge.hpp): two directions as completion handlers on
// the connection's thread, and the browser's side during the handshakes (BrowserChannel).
//
// Each direction is a loop that runs until it must wait, then leaves one wait pending: for
// readability of its source, or writability of its destination. Every completion runs both loops
// (run()): a loop whose wait is still pending returns at once, so neither needs to know what the
// other waits for. The browser's socket has two writers, the desktop's frames and the answers to
// the browser's control frames (pong, close); flushClient() writes one frame at a time, a control
// frame only between data frames. Waiting for readability comes only right after a read found the
// socket empty (down_drained_, up_drained_): Asio's reactor is edge-triggered.
//
// The desktop's socket is always plain TCP (VNC and SSH upstreams never use TLS). The browser's
// may be TLS: its reads then go through the stream into a small buffer of the bridge's own (the
// stream may hold decrypted bytes the socket's readiness says nothing about), and its writes are
// asynchronous writes of whole frames.

#include "net/vnc_bridge.hpp"

#include <array>
#include <cstring>

#include "net/proxy_rfb.hpp"
#include "net/stream_io.hpp"

namespace kasm::net::detail {

namespace {
// The desktop's bytes are read behind room for the longest frame header, so that a frame goes out
// in one contiguous write: its header is written right before the payload.
constexpr std::size_t kHeaderRoom = kWsMaxServerHeader;
// Frames a desktop may send in one go before the bridge lets the thread's other connections run:
// on loopback or a fast network neither its reads nor the browser's writes ever wait. 64 frames
// (up to 4 MiB) take a few milliseconds; yielding every 16 showed in the CPU per MB of
// bench_proxy --cases vnc.
constexpr int kBurstFrames = 64;
}  // namespace

VncBridge::VncBridge(SessionProxy::Impl& proxy, Transport& client, ExchangeGuard& guard)
    : proxy_(proxy), client_(client), guard_(guard), upstream_(client.get_executor()) {
  guard_.exchange().bridge_upstream = &upstream_;
}

VncBridge::~VncBridge() {
  Exchange& exchange = guard_.exchange();
  exchange.bridge_upstream = nullptr;
  exchange.bridge = kNoBridge;
  if (counted_) proxy_.tunnels.fetch_sub(1);
}

void VncBridge::countTunnel() {
  if (counted_) return;
  counted_ = true;
  proxy_.tunnels.fetch_add(1);
}

unsigned char* VncBridge::upData() noexcept {
  return tls_in_ ? tls_in_.get() : reinterpret_cast<unsigned char*>(up_.data());
}

std::size_t VncBridge::upCapacity() const noexcept {
  return tls_in_ ? kBrowserReadBytes : up_.size();
}

void VncBridge::start(std::shared_ptr<void> connection, bool filter_rfb, std::span<const unsigned char> payload,
                      std::span<const unsigned char> raw) {
  connection_ = std::move(connection);
  filter_rfb_ = filter_rfb;
  if (client_.secure()) tls_in_ = std::make_unique<unsigned char[]>(kBrowserReadBytes);
  if (!payload.empty() || !raw.empty()) {
    if (!tls_in_) up_.take(proxy_.options.buffer_bytes, proxy_.buffers_in_use);
    unsigned char* buf = upData();
    // Both fit: they came from the handshake's kBrowserReadBytes buffer, and buffer_bytes is at
    // least that (SessionProxy::create).
    std::memcpy(buf, payload.data(), payload.size());
    std::memcpy(buf + payload.size(), raw.data(), raw.size());
    up_out_ = payload.size();
    up_in_ = payload.size();
    up_end_ = payload.size() + raw.size();
  }
  run();
}

void VncBridge::run() {
  try {
    downRun();
    upRun();
  } catch (...) {
    finish();  // No relay buffer could be mapped: this bridge ends, the thread goes on.
  }
}

void VncBridge::finish() {
  if (done_) return;
  done_ = true;
  // The pending waits end with an error; their handlers hold the last references.
  upstream_.close();
  client_.close();
}

// ---- desktop to browser -------------------------------------------------------------------------

void VncBridge::downRun() {
  const Duration idle = proxy_.options.tunnel_idle_timeout;
  int frames = 0;
  while (!done_ && !down_wait_) {
    if (down_end_ > down_begin_ && !flushClient()) {
      down_drained_ = false;  // Back to the event loop before the next read.
      return;
    }
    if (closing_) return;  // No data frame may follow a close frame.
    if (down_drained_) {
      waitDesktop();
      return;
    }
    if (++frames > kBurstFrames) {
      // Yield: the next read comes first when this resumes (an edge may pass meanwhile).
      down_.release();
      down_wait_ = true;
      asio::post(upstream_.get_executor(), [self = shared_from_this()] {
        self->down_wait_ = false;
        self->run();
      });
      return;
    }
    armIdle(upstream_, idle);
    down_.take(proxy_.options.buffer_bytes, proxy_.buffers_in_use);
    auto* data = reinterpret_cast<unsigned char*>(down_.data());
    const std::size_t room = down_.size() - kHeaderRoom;
    beast::error_code ec;
    const std::size_t n = upstream_.tcp().readSomeNow(asio::buffer(data + kHeaderRoom, room), ec);
    if (ec == asio::error::would_block) {
      waitDesktop();
      return;
    }
    if (ec) {
      finish();
      return;
    }
    guard_.upstreamTraffic(n);
    const std::size_t header = wsFrameHeaderSize(n);
    writeWsFrameHeader(data + kHeaderRoom - header, WsOpcode::kBinary, n);
    down_begin_ = kHeaderRoom - header;
    down_end_ = kHeaderRoom + n;
    down_drained_ = n < room;  // A short read emptied the socket.
  }
}

void VncBridge::waitDesktop() {
  down_.release();
  down_drained_ = false;
  down_wait_ = true;
  upstream_.tcp().async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
    self->down_wait_ = false;
    if (ec) return self->finish();
    self->run();
  });
}

// ---- writes to the browser ----------------------------------------------------------------------

void VncBridge::queueControl(WsOpcode opcode, std::span<const unsigned char> payload) {
  ctrl_head_len_ = static_cast<std::uint8_t>(writeWsFrameHeader(ctrl_head_, opcode, payload.size()));
  ctrl_payload_ = payload.data();
  ctrl_payload_len_ = static_cast<std::uint8_t>(payload.size());
  ctrl_sent_ = 0;
  ctrl_queued_ = true;
}

void VncBridge::queueClose(std::uint16_t code) {
  writeWsFrameHeader(ctrl_head_, WsOpcode::kClose, 2);
  ctrl_head_[2] = static_cast<unsigned char>(code >> 8);
  ctrl_head_[3] = static_cast<unsigned char>(code & 0xFF);
  ctrl_head_len_ = 4;
  ctrl_payload_ = nullptr;
  ctrl_payload_len_ = 0;
  ctrl_sent_ = 0;
  ctrl_queued_ = true;
}

void VncBridge::advanceOut(std::size_t n) {
  if (out_ == Out::kData) {
    down_begin_ += n;
    if (down_begin_ == down_end_) {
      down_begin_ = down_end_ = 0;
      out_ = Out::kNone;
    }
  } else {
    ctrl_sent_ = static_cast<std::uint8_t>(ctrl_sent_ + n);
    if (ctrl_sent_ == ctrl_head_len_ + ctrl_payload_len_) {
      ctrl_queued_ = false;
      out_ = Out::kNone;
    }
  }
}

bool VncBridge::flushClient() {
  while (!done_) {
    if (client_wait_) return false;
    if (out_ == Out::kNone) {
      if (ctrl_queued_) {
        out_ = Out::kControl;
      } else if (down_end_ > down_begin_ && !closing_) {
        out_ = Out::kData;
      } else {
        return true;
      }
    }
    // What is left of the current frame: one buffer for data, up to two for a control frame (an
    // unused one stays empty). Held by value: an asynchronous write keeps its own copy.
    std::array<asio::const_buffer, 2> rest{};
    if (out_ == Out::kData) {
      rest[0] = asio::buffer(down_.data() + down_begin_, down_end_ - down_begin_);
    } else if (ctrl_sent_ < ctrl_head_len_) {
      rest[0] = asio::buffer(ctrl_head_ + ctrl_sent_, ctrl_head_len_ - ctrl_sent_);
      rest[1] = asio::buffer(ctrl_payload_, ctrl_payload_len_);
    } else {
      const std::size_t at = ctrl_sent_ - ctrl_head_len_;
      rest[0] = asio::buffer(ctrl_payload_ + at, ctrl_payload_len_ - at);
    }
    armIdle(client_, proxy_.options.tunnel_idle_timeout);
    if (client_.secure()) {
      client_wait_ = true;
      asio::async_write(client_, rest, [self = shared_from_this()](beast::error_code ec, std::size_t n) {
        self->client_wait_ = false;
        if (ec) return self->finish();
        self->advanceOut(n);
        self->run();
      });
      return false;
    }
    beast::error_code ec;
    const std::size_t n = client_.tcp().writeSomeNow(rest, ec);
    if (ec == asio::error::would_block) {
      client_wait_ = true;
      client_.tcp().async_wait(tcp::socket::wait_write, [self = shared_from_this()](beast::error_code wec) {
        self->client_wait_ = false;
        if (wec) return self->finish();
        self->run();
      });
      return false;
    }
    if (ec) {
      finish();
      return false;
    }
    advanceOut(n);
  }
  return false;
}

// ---- browser to desktop -------------------------------------------------------------------------

void VncBridge::upRun() {
  const Duration idle = proxy_.options.tunnel_idle_timeout;
  while (!done_ && !up_wait_) {
    if (up_sent_ < up_kept_) {
      armIdle(upstream_, idle);
      beast::error_code ec;
      const std::size_t n = upstream_.tcp().writeSomeNow(asio::buffer(upData() + up_sent_, up_kept_ - up_sent_), ec);
      if (ec == asio::error::would_block) {
        up_drained_ = false;
        up_wait_ = true;
        upstream_.tcp().async_wait(tcp::socket::wait_write, [self = shared_from_this()](beast::error_code wec) {
          self->up_wait_ = false;
          if (wec) return self->finish();
          self->run();
        });
        return;
      }
      if (ec) return finish();
      up_sent_ += n;
      if (up_sent_ == up_kept_) up_sent_ = up_kept_ = 0;
      continue;
    }
    if (filter_failed_) return finish();
    if (event_ != WsEvent::kNone) answerEvent();
    if (ctrl_queued_) {
      if (!flushClient()) {
        up_drained_ = false;
        return;
      }
      continue;
    }
    if (closing_) return finish();  // The close frame went out.
    if (up_in_ < up_end_ || up_out_ > 0) {
      if (!parseBrowser()) return;
      continue;
    }
    if (up_drained_) {
      waitBrowser();
      return;
    }
    armIdle(client_, idle);
    if (tls_in_) {
      up_wait_ = true;
      client_.async_read_some(asio::buffer(tls_in_.get(), kBrowserReadBytes),
                              [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                                self->up_wait_ = false;
                                if (ec) return self->finish();
                                self->up_in_ = 0;
                                self->up_end_ = n;
                                self->run();
                              });
      return;
    }
    up_.take(proxy_.options.buffer_bytes, proxy_.buffers_in_use);
    beast::error_code ec;
    const std::size_t n = client_.tcp().readSomeNow(asio::buffer(up_.data(), up_.size()), ec);
    if (ec == asio::error::would_block) {
      waitBrowser();
      return;
    }
    if (ec) return finish();  // The browser went away without a close frame.
    up_in_ = 0;
    up_end_ = n;
    up_drained_ = n < up_.size();
  }
}

void VncBridge::waitBrowser() {
  up_.release();
  up_drained_ = false;
  up_wait_ = true;
  client_.tcp().async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
    self->up_wait_ = false;
    if (ec) return self->finish();
    self->run();
  });
}

// Parses the raw input up to its end or the next control frame, then filters the payload; false
// when the bridge ended.
bool VncBridge::parseBrowser() {
  unsigned char* buf = upData();
  while (up_in_ < up_end_ && event_ == WsEvent::kNone) {
    const auto r = reader_.read({buf + up_in_, up_end_ - up_in_}, buf + up_out_);
    up_in_ += r.consumed;
    up_out_ += r.produced;
    event_ = r.event;
    // After a close or an error the reader takes nothing more: the rest is dropped.
    if (r.event == WsEvent::kClose || r.event == WsEvent::kError) up_in_ = up_end_;
  }
  if (up_in_ == up_end_) up_in_ = up_end_ = 0;
  if (up_out_ == 0) return true;
  std::size_t kept = up_out_;
  if (filter_rfb_) {
    const bool view_only = guard_.exchange().access.load(std::memory_order_relaxed) == kAccessViewOnly;
    const auto r = filter_.filter({buf, up_out_}, view_only);
    if (r.dropped > 0) proxy_.input_dropped.fetch_add(r.dropped, std::memory_order_relaxed);
    kept = r.kept;
    if (r.error != RfbFilterError::kNone) {
      // What came before the message is still delivered, as a relay that reads it would.
      reportVncError(proxy_, guard_, rfbFilterErrorText(r.error));
      filter_failed_ = true;
    }
  }
  up_out_ = 0;
  if (kept > 0) guard_.clientTraffic(kept);
  up_kept_ = kept;
  up_sent_ = 0;
  return !done_;
}

// Answers the control frame parsed last, once the payload before it went to the desktop.
void VncBridge::answerEvent() {
  switch (event_) {
    case WsEvent::kPing: queueControl(WsOpcode::kPong, reader_.controlPayload()); break;
    case WsEvent::kClose: {
      // As Beast did: the browser's code is echoed (1000 when it sent none), then the connection ends.
      const std::uint16_t code = reader_.closeCode();
      queueClose(code == kWsCloseNoStatus ? kWsCloseNormal : code);
      closing_ = true;
      break;
    }
    case WsEvent::kError:
      queueClose(wsCloseCodeFor(reader_.error()));
      closing_ = true;
      break;
    default: break;
  }
  event_ = WsEvent::kNone;
}

// ---- the browser during the handshakes ----------------------------------------------------------

BrowserChannel::BrowserChannel(Transport& client, WsFrameReader& reader)
    : client_(client), reader_(reader), buf_(kBrowserReadBytes) {}

Awaitable<bool> BrowserChannel::need(std::size_t n) {
  while (pay_end_ - pay_begin_ < n) {
    if (raw_begin_ == raw_end_) {
      std::memmove(buf_.data(), buf_.data() + pay_begin_, pay_end_ - pay_begin_);
      pay_end_ -= pay_begin_;
      pay_begin_ = 0;
      raw_begin_ = raw_end_ = pay_end_;
      if (raw_end_ == buf_.size()) co_return false;
      auto [ec, k] =
          co_await client_.async_read_some(asio::buffer(buf_.data() + raw_end_, buf_.size() - raw_end_), kAwaitTuple);
      if (ec) co_return false;
      raw_end_ += k;
    }
    // The payload is written over the frames it came in, never past the input still to parse.
    const auto r = reader_.read({buf_.data() + raw_begin_, raw_end_ - raw_begin_}, buf_.data() + pay_end_);
    raw_begin_ += r.consumed;
    pay_end_ += r.produced;
    switch (r.event) {
      case WsEvent::kPing:
        if (!co_await sendFrame(WsOpcode::kPong, reader_.controlPayload())) co_return false;
        break;
      case WsEvent::kClose: {
        const std::uint16_t code = reader_.closeCode();
        (void)co_await sendClose(code == kWsCloseNoStatus ? kWsCloseNormal : code);
        co_return false;
      }
      case WsEvent::kError: (void)co_await sendClose(wsCloseCodeFor(reader_.error())); co_return false;
      default: break;
    }
  }
  co_return true;
}

const unsigned char* BrowserChannel::take(std::size_t n) {
  const unsigned char* p = buf_.data() + pay_begin_;
  pay_begin_ += n;
  return p;
}

Awaitable<bool> BrowserChannel::sendFrame(WsOpcode opcode, std::span<const unsigned char> payload) {
  unsigned char header[kWsMaxServerHeader];
  const std::size_t h = writeWsFrameHeader(header, opcode, payload.size());
  const std::array<asio::const_buffer, 2> frame{asio::buffer(header, h), asio::buffer(payload.data(), payload.size())};
  co_return !co_await writeAll(client_, frame);
}

Awaitable<bool> BrowserChannel::send(std::string_view bytes) {
  co_return co_await sendFrame(WsOpcode::kBinary, {reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()});
}

Awaitable<bool> BrowserChannel::sendClose(std::uint16_t code) {
  const unsigned char payload[2] = {static_cast<unsigned char>(code >> 8), static_cast<unsigned char>(code & 0xFF)};
  co_return co_await sendFrame(WsOpcode::kClose, payload);
}

Awaitable<> BrowserChannel::close(std::uint16_t code) {
  if (co_await sendClose(code)) {
    // The browser's frames until its close frame; their payloads are dropped.
    for (;;) {
      if (raw_begin_ == raw_end_) {
        raw_begin_ = raw_end_ = 0;
        auto [ec, k] = co_await client_.async_read_some(asio::buffer(buf_), kAwaitTuple);
        if (ec) break;
        raw_end_ = k;
      }
      const auto r = reader_.read({buf_.data() + raw_begin_, raw_end_ - raw_begin_}, buf_.data() + raw_begin_);
      raw_begin_ += r.consumed;
      if (r.event == WsEvent::kClose || r.event == WsEvent::kError) break;
    }
  }
  client_.close();
}

}  // namespace kasm::net::detail
