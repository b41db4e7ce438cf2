#pragma once

// The framing of the "ssh" gateway's stream: what the web terminal (web/src/terminal-frames.ts) and
// the SSH backend say to each other through the session proxy, which relays the bytes as they come
// (a WebSocket message may hold part of a frame, or several).
//
// Every frame is a 5-byte header and a payload:
//
//   offset 0  type    1 byte (FrameType)
//   offset 1  length  4 bytes, big-endian unsigned: the payload's size, at most kMaxFramePayload
//   offset 5  payload `length` bytes
//
// Client (browser) to gateway:
//   0x01 input   the bytes typed or pasted, UTF-8 as the terminal produces them; any length.
//   0x02 resize  exactly 4 bytes: columns, then rows, each a big-endian uint16, each at least 1.
//   0x03 ping    at most kMaxPingPayload opaque bytes; answered by a pong carrying the same bytes.
// Gateway to client:
//   0x81 output  bytes from the terminal (the server's PTY), in order; any length.
//   0x82 ready   a UTF-8 JSON object, sent once when the shell runs: {"host", "port", "user",
//                "fingerprint" ("sha256:<hex>" of the host key blob), "key_type"}.
//   0x83 pong    the payload of the ping it answers.
//   0x84 error   UTF-8 text for the user saying why the connection failed or ended; the gateway
//                closes the stream after it.
//   0x85 exit    exactly 4 bytes: the shell's exit status, a big-endian int32 (-1 when the server
//                did not say, e.g. the shell was killed by a signal); the gateway closes after it.
//
// A frame of a type not listed, a length over the bound, or a resize / exit of the wrong size is a
// protocol error: the reader stops and the connection ends. Pure and free of I/O, so it is unit
// tested apart from libssh.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/result.hpp"

namespace kasm::ssh {

inline constexpr std::size_t kFrameHeaderSize = 5;
// The largest payload of one frame. Longer input or output is sent as several frames.
inline constexpr std::uint32_t kMaxFramePayload = 64 * 1024;
inline constexpr std::uint32_t kMaxPingPayload = 64;

enum class FrameType : std::uint8_t {
  kInput = 0x01,
  kResize = 0x02,
  kPing = 0x03,
  kOutput = 0x81,
  kReady = 0x82,
  kPong = 0x83,
  kError = 0x84,
  kExit = 0x85,
};

// True for the types a client may send (input, resize, ping).
bool isClientFrame(FrameType type) noexcept;
// "input", "resize", ... for messages and logs.
std::string_view frameTypeName(FrameType type) noexcept;

struct Frame {
  FrameType type = FrameType::kInput;
  std::string payload;
};

struct TerminalSize {
  std::uint16_t columns = 80;
  std::uint16_t rows = 24;
  friend bool operator==(const TerminalSize&, const TerminalSize&) = default;
};

// Appends one frame to `out`. `payload` must fit one frame (kMaxFramePayload); use appendChunked
// for bytes of any length.
void appendFrame(std::string& out, FrameType type, std::string_view payload);
// Appends `bytes` as as many frames of `type` as needed (none for empty bytes).
void appendChunked(std::string& out, FrameType type, std::string_view bytes);

// Whole frames, for the common cases.
std::string encodeFrame(FrameType type, std::string_view payload);
std::string encodeResize(TerminalSize size);
std::string encodeExit(std::int32_t status);

// The payloads of the fixed-size frames. InvalidArgument when the payload has the wrong size or a
// zero dimension.
Result<TerminalSize> decodeResize(std::string_view payload);
Result<std::int32_t> decodeExit(std::string_view payload);

// Reads frames from a byte stream that arrives in pieces of any size. Keeps at most one partial
// frame (bounded by the payload limit). After an error it stays failed and yields nothing more.
class FrameReader {
 public:
  // Consumes `bytes` and appends each frame completed by them to `out`, in order. InvalidArgument
  // naming the problem (unknown type, oversized or malformed frame); frames completed before the
  // bad one are still appended.
  Result<void> feed(std::string_view bytes, std::vector<Frame>& out);

  // True between frames (no partial frame pending).
  bool atBoundary() const noexcept { return header_used_ == 0 && !in_payload_; }
  bool failed() const noexcept { return failed_; }

 private:
  Result<void> startFrame();

  unsigned char header_[kFrameHeaderSize] = {};
  std::size_t header_used_ = 0;
  bool in_payload_ = false;
  std::uint32_t remaining_ = 0;
  Frame current_;
  bool failed_ = false;
};

}  // namespace kasm::ssh
