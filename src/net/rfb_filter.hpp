#pragma once

// Internal to kasm::net: the framer of RFB client messages behind the VNC bridge's view-only mode.
//
// After the handshake a viewer's bytes are a stream of client messages, each a type byte and a
// body whose length follows from the type and a few header fields (RFC 6143 section 7.5 and the
// community extensions of rfbproto). The filter walks that stream as it arrives, one read at a
// time: a message may end in the next read, several may share one. Each message is either input
// (it acts on the desktop: keys, pointer, clipboard, resizing, power actions) or harmless (it only
// shapes what the viewer is sent). A view-only viewer's input is dropped; the rest is forwarded.
// An unknown type cannot be skipped (its length is unknown), so it ends the connection, as does a
// message longer than any real viewer sends.
//
// The filter streams: it keeps no message, only its position in the current one (a few bytes of
// header and a count), and filters each read in place. Pure and free of I/O, so it is unit tested
// and fuzzable apart from the bridge.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace kasm::net::detail {

// Client message types (rfbproto "Client to Server Messages").
enum class RfbClientType : std::uint8_t {
  kSetPixelFormat = 0,
  kSetEncodings = 2,
  kFramebufferUpdateRequest = 3,
  kKeyEvent = 4,
  kPointerEvent = 5,
  kClientCutText = 6,
  kEnableContinuousUpdates = 150,
  kClientFence = 248,
  kXvp = 250,
  kSetDesktopSize = 251,
  kQemu = 255,
};

// The longest clipboard text (ClientCutText, plain or extended) a viewer may send. A larger one
// is refused rather than relayed: noVNC caps its own clipboard well below this.
inline constexpr std::uint32_t kMaxRfbCutText = 10u * 1024 * 1024;

enum class RfbFilterError : std::uint8_t {
  kNone,
  kUnknownType,     // A message type (or QEMU subtype) the filter cannot measure.
  kMessageTooLong,  // A ClientCutText beyond kMaxRfbCutText.
};
std::string_view rfbFilterErrorText(RfbFilterError error);

// Whether a message acts on the desktop: input is dropped for a view-only viewer. QEMU messages
// count as input as a whole (their extended key event is the one noVNC sends); the decision is
// taken on the type byte so that a message is never cut in two when the access changes.
bool isRfbInput(std::uint8_t type);

// One whole message, as the filter saw it (for tests and diagnostics).
struct RfbClientMessage {
  std::uint8_t type = 0;
  std::uint64_t length = 0;  // Type byte included.
  bool forwarded = false;
};

struct RfbFilterResult {
  std::size_t kept = 0;                          // Bytes to forward, moved to the front of the data.
  std::uint32_t dropped = 0;                     // Input messages whose dropping started in this call.
  RfbFilterError error = RfbFilterError::kNone;  // When set, the connection must close.
};

class RfbClientFilter {
 public:
  // Filters one read in place: what must reach the desktop is moved to the front of `data`, in
  // order; the rest is dropped. `view_only` applies to the messages that start in this call (one
  // already under way keeps the decision taken at its first byte). Each message that ends in this
  // call is appended to `seen` when it is not null. After an error the filter stays failed.
  RfbFilterResult filter(std::span<unsigned char> data, bool view_only, std::vector<RfbClientMessage>* seen = nullptr);

  // True between messages (no partial message pending).
  bool atBoundary() const noexcept { return phase_ == Phase::kType; }
  RfbFilterError error() const noexcept { return error_; }

 private:
  enum class Phase : std::uint8_t { kType, kHeader, kBody, kFailed };

  // Called when head_ holds head_need_ bytes: either asks for more header or sets remaining_.
  RfbFilterError measure();

  Phase phase_ = Phase::kType;
  RfbFilterError error_ = RfbFilterError::kNone;
  bool forward_ = false;         // The current message's fate.
  std::uint8_t head_len_ = 0;    // Header bytes held in head_.
  std::uint8_t head_need_ = 0;   // Header bytes needed before the length is known.
  unsigned char head_[12] = {};  // The current message's first bytes (at most 12 are needed).
  std::uint64_t length_ = 0;     // The current message's whole length, once known.
  std::uint64_t remaining_ = 0;  // Body bytes still to come, once the length is known.
};

}  // namespace kasm::net::detail
