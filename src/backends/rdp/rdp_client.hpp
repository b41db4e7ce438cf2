#pragma once

// Internal to kasm::rdp: one RDP connection on FreeRDP 2, drawn by FreeRDP's software GDI into one
// framebuffer (RGBX, which is also the RFB side's native format, so nothing is copied twice).
//
// Threading: every call, and every callback to RdpEvents, happens on the thread that runs serve(),
// inside connect() or processEvents(). (FreeRDP's dynamic channels run a thread of their own; what
// they report is handed over through atomics and picked up on this thread.)

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kasm/core/result.hpp"
#include "kasm/spi/desktop_gateway.hpp"

namespace kasm::rdp::detail {

struct DirtyRect {
  std::int32_t x = 0, y = 0, w = 0, h = 0;
};

// A pointer shape: RGBA pixels (row-major, width * height * 4) and the hotspot.
struct CursorImage {
  std::uint16_t width = 0, height = 0, hot_x = 0, hot_y = 0;
  std::vector<std::uint8_t> rgba;
};

// What the RDP side reports to the RFB side.
class RdpEvents {
 public:
  virtual ~RdpEvents() = default;
  virtual void onPaint(const std::vector<DirtyRect>& rects) = 0;
  virtual void onResize(std::uint16_t width, std::uint16_t height) = 0;
  virtual void onCursor(const CursorImage& cursor) = 0;
  virtual void onClipboardText(std::string latin1) = 0;
};

struct RdpFrame {
  const std::uint8_t* pixels = nullptr;  // RGBX.
  std::size_t stride = 0;
  std::uint16_t width = 0, height = 0;
};

class RdpClient {
 public:
  RdpClient(const spi::GatewayRequest& request, spi::GatewayPins& pins, RdpEvents& events);
  ~RdpClient();
  RdpClient(const RdpClient&) = delete;
  RdpClient& operator=(const RdpClient&) = delete;

  // Connects and logs on, within `timeout_ms`; `client_fd` is watched meanwhile so that a viewer
  // that goes away aborts the attempt. The error's message is the reason to show the user.
  Result<void> connect(int client_fd, int timeout_ms);

  // FreeRDP's event handles, to wait on with the client socket.
  std::size_t eventHandles(void** handles, std::size_t capacity);
  // Handles what arrived; false when the connection ended (reason() says why).
  bool processEvents();
  std::string reason() const;

  RdpFrame frame() const;

  void sendKey(bool down, std::uint8_t scancode, bool extended);
  void sendUnicode(bool down, char32_t codepoint);
  bool unicodeInput() const;
  // `mask` in RFB bits (see PointerMsg); the previous mask is remembered to make press/release.
  void sendPointer(std::uint16_t mask, std::uint16_t x, std::uint16_t y);
  void setClipboardText(std::string latin1);
  // Asks the server for a new desktop size through the Display Control channel; false when the
  // server offers none.
  bool requestResize(std::uint16_t width, std::uint16_t height);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// "sha256:<hex>" of a PEM certificate's DER encoding; empty when it does not parse.
std::string certificateFingerprint(const std::uint8_t* pem, std::size_t length);

// Quiets FreeRDP's own logging (certificate warnings and the like go to stderr otherwise) unless
// WLOG_LEVEL asks for it, and runs FreeRDP's one-time primitives benchmark before the first
// connection needs it. Called once per process.
void prepareFreeRdp();

}  // namespace kasm::rdp::detail
