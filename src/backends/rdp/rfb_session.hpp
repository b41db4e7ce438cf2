#pragma once

// Internal to kasm::rdp: the RFB server state of one connection. It receives what the RDP side
// draws (as dirty rectangles on a grid of 64x64 tiles, so a busy screen costs a bounded amount of
// bookkeeping), the viewer's requests and input, and produces the bytes to write to the viewer.
// Updates follow the viewer's FramebufferUpdateRequests: one update per request, sent once there is
// something to send, so a slow viewer is never flooded and an idle desktop sends nothing.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/rdp/rdp_client.hpp"
#include "backends/rdp/rfb_protocol.hpp"
#include "backends/rdp/zrle_encoder.hpp"

namespace kasm::rdp::detail {

// The RDP input a viewer's messages turn into; RdpClient in production, a recorder in tests.
class RdpInput {
 public:
  virtual ~RdpInput() = default;
  virtual void sendKey(bool down, std::uint8_t scancode, bool extended) = 0;
  virtual void sendUnicode(bool down, char32_t codepoint) = 0;
  virtual bool unicodeInput() const = 0;
  virtual void sendPointer(std::uint16_t mask, std::uint16_t x, std::uint16_t y) = 0;
  virtual void setClipboardText(std::string latin1) = 0;
  virtual bool requestResize(std::uint16_t width, std::uint16_t height) = 0;
};

class RfbSession : public RdpEvents {
 public:
  explicit RfbSession(bool extended_mouse_buttons) : extended_mouse_buttons_(extended_mouse_buttons) {}

  void attach(RdpInput& input, std::uint16_t width, std::uint16_t height);

  // RdpEvents.
  void onPaint(const std::vector<DirtyRect>& rects) override;
  void onResize(std::uint16_t width, std::uint16_t height) override;
  void onCursor(const CursorImage& cursor) override;
  void onClipboardText(std::string latin1) override;

  // The viewer's bytes; false (with error()) when they cannot be understood.
  bool receive(std::span<const std::uint8_t> bytes);
  const std::string& error() const { return error_; }

  // What to write to the viewer now (possibly nothing), drawn from `frame`.
  std::string takeOutput(const RdpFrame& frame);

  // For tests and diagnostics.
  bool updateRequested() const { return request_pending_; }
  bool hasDirty() const;

 private:
  void handle(const ClientMsg& msg);
  void handleKey(const KeyMsg& key);
  void resizeGrid(std::uint16_t width, std::uint16_t height);
  void markDirty(std::int32_t x, std::int32_t y, std::int32_t w, std::int32_t h);
  void appendCursor(UpdateBuilder& update);
  void appendPixels(UpdateBuilder& update, const RdpFrame& frame);
  bool supports(std::int32_t encoding) const;

  bool extended_mouse_buttons_;
  RdpInput* input_ = nullptr;
  ClientMsgReader reader_;
  std::string error_;
  std::string pending_out_;  // Messages outside updates (ServerCutText), sent at the next write.

  PixelFormat format_ = PixelFormat::native();
  std::vector<std::int32_t> encodings_;
  bool request_pending_ = false;
  bool announce_pending_ = false;  // Pseudo-encodings to acknowledge after SetEncodings.

  std::uint16_t width_ = 0, height_ = 0;
  std::size_t tiles_x_ = 0, tiles_y_ = 0;
  std::vector<std::uint8_t> dirty_;  // One byte per tile.

  bool resize_pending_ = false;
  std::uint16_t resize_reason_ = 0;  // 0: the server's resize, 1: answer to the viewer's request.
  std::uint16_t resize_status_ = 0;
  bool resize_requested_ = false;  // A SetDesktopSize was passed on and awaits the server.

  std::optional<CursorImage> cursor_;
  bool cursor_pending_ = false;

  bool shift_down_ = false;
  ZrleEncoder zrle_;
};

}  // namespace kasm::rdp::detail
