#pragma once

// Internal to kasm::net: the VNC bridge's own WebSocket framing (RFC 6455 section 5), in place of
// Beast's websocket::stream once the handshake is done.
//
// A bridge carries a byte stream, so it needs far less than a general WebSocket stream: the
// browser's frames are unmasked in place and their payloads joined into one stream (message
// boundaries mean nothing to RFB), and every read of the desktop goes out as one unfragmented binary
// frame. Beast's stream kept about 2.3 KB of state and a read buffer per connection for the
// bridge's whole life; WsFrameReader keeps its position in the current frame and the payload of a
// control frame, nothing else, and the bridge reads into buffers it holds only while data flows.
//
// What the reader accepts and refuses, as Beast did for the bridge:
//   - every client frame must be masked; reserved bits (no extension is negotiated) and reserved
//     opcodes are refused;
//   - 7-, 16- and 64-bit lengths, each in its shortest form (Beast's rule), the 64-bit one with
//     its top bit clear, and at most kWsMaxFrameBytes;
//   - control frames (close, ping, pong) carry at most 125 bytes and are never fragmented; they may
//     come between the fragments of a message;
//   - a continuation frame only inside a fragmented message, a new data frame only outside one;
//   - a close frame carries nothing or a code (and a reason, not checked: only the code is echoed);
//     its code must be one an endpoint may send (1000-1003, 1007-1013, 3000-4999).
// Text and binary payloads alike are passed on as bytes (noVNC sends binary; the RFB filter behind
// the bridge checks what the bytes say). Pure and free of I/O, so it is unit tested on its own.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace kasm::net::detail {

enum class WsOpcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close codes (RFC 6455 section 7.4.1).
inline constexpr std::uint16_t kWsCloseNormal = 1000;
inline constexpr std::uint16_t kWsCloseProtocolError = 1002;
inline constexpr std::uint16_t kWsCloseNoStatus = 1005;  // Never sent: "the close frame had no code".
inline constexpr std::uint16_t kWsCloseTooBig = 1009;

// The longest client frame accepted (Beast's default read_message_max). A viewer's messages are a
// few bytes; its clipboard is bounded by the RFB filter (kMaxRfbCutText) anyway.
inline constexpr std::uint64_t kWsMaxFrameBytes = 16 * 1024 * 1024;
inline constexpr std::size_t kWsMaxControlPayload = 125;
// The longest header of a server frame (unmasked): 2 bytes, 2 more for a 16-bit length or 8 more
// for a 64-bit one.
inline constexpr std::size_t kWsMaxServerHeader = 10;

enum class WsFrameError : std::uint8_t {
  kNone,
  kReservedBits,            // RSV1, RSV2 or RSV3 set.
  kReservedOpcode,          // 0x3-0x7 or 0xB-0xF.
  kUnmasked,                // A client frame without a masking key.
  kControlTooLong,          // A control frame of more than 125 bytes.
  kControlFragmented,       // A control frame without FIN.
  kUnexpectedContinuation,  // A continuation frame with no fragmented message under way.
  kExpectedContinuation,    // A text or binary frame inside a fragmented message.
  kBadLength,               // A 16- or 64-bit length not in its shortest form, or a 64-bit one with its top bit set.
  kFrameTooLong,            // More than kWsMaxFrameBytes.
  kBadClosePayload,         // A close frame of one byte.
  kBadCloseCode,            // A close code that no endpoint may send.
};
std::string_view wsFrameErrorText(WsFrameError error);
// The code of the close frame that answers `error`: 1009 for a frame too long, 1002 otherwise.
std::uint16_t wsCloseCodeFor(WsFrameError error);
// Whether an endpoint may send `code` in a close frame.
bool isValidWsCloseCode(std::uint16_t code);

// What ended a WsFrameReader::read call early.
enum class WsEvent : std::uint8_t {
  kNone,   // All the input was used.
  kPing,   // A whole ping arrived: answer it with a pong carrying controlPayload().
  kPong,   // A whole pong arrived (nothing to do).
  kClose,  // A whole close frame arrived: closeCode() says which; the reader reads no further.
  kError,  // A protocol error: error() says which; the reader reads no further.
};

struct WsReadResult {
  std::size_t consumed = 0;  // Input bytes used.
  std::size_t produced = 0;  // Payload bytes written to `out`.
  WsEvent event = WsEvent::kNone;
};

// Parses a client's frames as they arrive, one read at a time: a frame may end in the next read,
// several may share one.
class WsFrameReader {
 public:
  // Parses `in`, writing the data frames' payloads, unmasked, to `out`, which may be `in.data()`
  // itself or any place before it in the same buffer (the payload never outgrows the frames it
  // came in). Stops after a control frame is whole (its event says which) or at an error; call
  // again with the rest of the input. After kClose or kError the reader stays closed: every later
  // call consumes nothing and reports the same event.
  WsReadResult read(std::span<const unsigned char> in, unsigned char* out);

  // The payload of the control frame just reported (kPing, kPong, kClose); valid until the next
  // call to read().
  std::span<const unsigned char> controlPayload() const noexcept { return {control_, control_len_}; }
  // After kClose: the code the browser sent, kWsCloseNoStatus when its frame had none.
  std::uint16_t closeCode() const noexcept { return close_code_; }
  WsFrameError error() const noexcept { return error_; }
  // True between frames and outside a fragmented message.
  bool atMessageBoundary() const noexcept { return phase_ == Phase::kHeader && head_len_ == 0 && !in_message_; }

 private:
  enum class Phase : std::uint8_t { kHeader, kPayload, kClosed, kFailed };

  WsFrameError checkFirstBytes() const;  // Once head_ holds the first two bytes.
  WsFrameError startFrame();             // Once head_ holds the whole header.
  WsEvent finishControl();               // Once a control frame's payload is whole.
  WsReadResult fail(WsReadResult r, WsFrameError error);

  Phase phase_ = Phase::kHeader;
  WsFrameError error_ = WsFrameError::kNone;
  bool in_message_ = false;     // A fragmented data message is under way.
  std::uint8_t opcode_ = 0;     // The current frame's.
  bool fin_ = false;            // The current frame's.
  std::uint8_t head_len_ = 0;   // Header bytes held in head_.
  std::uint8_t head_need_ = 2;  // Header bytes needed.
  std::uint8_t mask_at_ = 0;    // Payload bytes of the current frame unmasked so far, modulo 4.
  std::uint8_t control_len_ = 0;
  std::uint16_t close_code_ = kWsCloseNoStatus;
  unsigned char head_[14] = {};  // 2 + 8 (64-bit length) + 4 (masking key).
  unsigned char mask_[4] = {};
  std::uint64_t remaining_ = 0;  // Payload bytes of the current frame still to come.
  unsigned char control_[kWsMaxControlPayload] = {};
};

// Writes the header of an unmasked, unfragmented server frame of `payload` bytes to `out` (room
// for kWsMaxServerHeader bytes); returns its length: 2, 4 or 10.
std::size_t writeWsFrameHeader(unsigned char* out, WsOpcode opcode, std::uint64_t payload);
// The header's length for a payload of `payload` bytes, without writing it.
constexpr std::size_t wsFrameHeaderSize(std::uint64_t payload) {
  return payload < 126 ? 2 : payload <= 0xFFFF ? 4 : 10;
}

// The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 section 4.2.2): base64 of the
// SHA-1 of the key and the protocol's GUID.
std::string wsAcceptKey(std::string_view key);

}  // namespace kasm::net::detail
