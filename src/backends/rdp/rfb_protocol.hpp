#pragma once

// Internal to kasm::rdp: the RFB 3.8 server side that presents an RDP desktop to the session
// proxy (RFC 6143 and the community extensions noVNC uses). Pure and free of I/O: the client's
// bytes are parsed into messages as they arrive, and the server's messages are built into byte
// strings that the connection writes. Unit tested without any server.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kasm::rdp::detail {

// Encodings and pseudo-encodings (rfbproto "Encodings").
inline constexpr std::int32_t kEncodingRaw = 0;
inline constexpr std::int32_t kEncodingZrle = 16;
inline constexpr std::int32_t kEncodingCursor = -239;
inline constexpr std::int32_t kEncodingDesktopSize = -223;
inline constexpr std::int32_t kEncodingQemuExtendedKey = -258;
inline constexpr std::int32_t kEncodingExtendedDesktopSize = -308;
inline constexpr std::int32_t kEncodingExtendedMouseButtons = -316;

// What a pixel looks like on the wire (RFC 6143 7.4). Only true colour is served: a client asking
// for a colour map is refused, which no viewer of this century does.
struct PixelFormat {
  std::uint8_t bits_per_pixel = 32;
  std::uint8_t depth = 24;
  bool big_endian = false;
  bool true_colour = true;
  std::uint16_t red_max = 255, green_max = 255, blue_max = 255;
  std::uint8_t red_shift = 0, green_shift = 8, blue_shift = 16;

  friend bool operator==(const PixelFormat&, const PixelFormat&) = default;
  std::size_t bytesPerPixel() const { return bits_per_pixel / 8; }
  // Encodes a colour given as 8-bit channels into a pixel value of this format.
  std::uint32_t pack(std::uint8_t r, std::uint8_t g, std::uint8_t b) const;
  // The format the framebuffer is kept in (FreeRDP's PIXEL_FORMAT_RGBX32: bytes R, G, B, X), which
  // is also what noVNC asks for, so the usual case converts nothing.
  static PixelFormat native() { return PixelFormat{}; }
};

// Writes `pixel` as `format.bytesPerPixel()` bytes in the format's byte order.
void appendPixel(std::string& out, const PixelFormat& format, std::uint32_t pixel);

// Converts `width` RGBX pixels starting at `src` to the client format, appended to `out`.
void appendRow(std::string& out, const PixelFormat& format, const std::uint8_t* src, std::size_t width);

// ---- client to server ------------------------------------------------------------------------

struct SetPixelFormatMsg {
  PixelFormat format;
};
struct SetEncodingsMsg {
  std::vector<std::int32_t> encodings;
};
struct UpdateRequestMsg {
  bool incremental = false;
  std::uint16_t x = 0, y = 0, w = 0, h = 0;
};
struct KeyMsg {
  bool down = false;
  std::uint32_t keysym = 0;
  std::uint32_t scancode = 0;  // QEMU extended key events only (0: none), in noVNC's RFB form.
};
struct PointerMsg {
  std::uint16_t mask = 0;  // Bits 0-8: left, middle, right, wheel up/down/left/right, back, forward.
  std::uint16_t x = 0, y = 0;
};
struct CutTextMsg {
  std::string latin1;
};
struct ScreenLayout {
  std::uint32_t id = 0;
  std::uint16_t x = 0, y = 0, w = 0, h = 0;
  std::uint32_t flags = 0;
};
struct SetDesktopSizeMsg {
  std::uint16_t w = 0, h = 0;
  std::vector<ScreenLayout> screens;
};

enum class ClientMsgType : std::uint8_t {
  kSetPixelFormat,
  kSetEncodings,
  kUpdateRequest,
  kKey,
  kPointer,
  kCutText,
  kSetDesktopSize,
  kIgnored,  // Understood and harmless (a fence, an extended clipboard, a QEMU audio message).
};

struct ClientMsg {
  ClientMsgType type = ClientMsgType::kIgnored;
  SetPixelFormatMsg pixel_format;
  SetEncodingsMsg encodings;
  UpdateRequestMsg update;
  KeyMsg key;
  PointerMsg pointer;
  CutTextMsg cut_text;
  SetDesktopSizeMsg desktop_size;
};

// The longest clipboard text accepted from the viewer (the proxy's own limit is 10 MiB).
inline constexpr std::uint32_t kMaxCutText = 10u * 1024 * 1024;

// Splits the viewer's byte stream into messages. Bytes are appended as they arrive; next() returns
// each whole message once, nullopt when more bytes are needed. An unknown or oversized message is
// an error (the stream cannot be resynchronised) and ends the connection.
class ClientMsgReader {
 public:
  void append(std::span<const std::uint8_t> bytes);
  // Whether PointerEvents may carry a fourth byte of high button bits (ExtendedMouseButtons: the
  // client sets bit 7 of the mask as a marker). Only after the server announced the extension.
  void setExtendedPointer(bool on) { extended_pointer_ = on; }
  std::optional<ClientMsg> next();
  const std::string& error() const { return error_; }

 private:
  std::vector<std::uint8_t> buf_;
  std::size_t pos_ = 0;
  bool extended_pointer_ = false;
  std::string error_;
};

// ---- server to client ------------------------------------------------------------------------

// The failure answer to a 3.8 client's version: security-types count 0, then the reason.
std::string securityFailure(std::string_view reason);
// ServerInit: size, the native pixel format and the desktop name.
std::string serverInit(std::uint16_t width, std::uint16_t height, std::string_view name);

// Builds one FramebufferUpdate: header, then rectangles appended one by one; the count is patched
// when the update is finished.
class UpdateBuilder {
 public:
  UpdateBuilder();
  void rectHeader(std::uint16_t x, std::uint16_t y, std::uint16_t w, std::uint16_t h, std::int32_t encoding);
  std::string& body() { return out_; }
  std::uint16_t rects() const { return rects_; }
  std::string finish();

 private:
  std::string out_;
  std::uint16_t rects_ = 0;
};

// ExtendedDesktopSize rectangle data for one screen covering the desktop.
void appendExtendedDesktopSize(UpdateBuilder& update, std::uint16_t reason, std::uint16_t status, std::uint16_t width,
                               std::uint16_t height);

std::string serverCutText(std::string_view latin1);

void putU16(std::string& out, std::uint16_t v);
void putU32(std::string& out, std::uint32_t v);

}  // namespace kasm::rdp::detail
