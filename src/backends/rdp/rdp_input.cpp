// RdpClient's input side: the viewer's keys, pointer, clipboard text and resize requests as RDP
// input PDUs and channel messages. Runs on the serve() thread.

#include <freerdp/input.h>
#include <freerdp/scancode.h>
#include <freerdp/settings.h>

#include <algorithm>

#include "backends/rdp/clipboard_text.hpp"
#include "backends/rdp/rdp_client_impl.hpp"

namespace kasm::rdp::detail {

void RdpClient::sendKey(bool down, std::uint8_t scancode, bool extended) {
  freerdp_input_send_keyboard_event_ex(impl_->context->input, down ? TRUE : FALSE,
                                       MAKE_RDP_SCANCODE(scancode, extended ? TRUE : FALSE));
}

void RdpClient::sendUnicode(bool down, char32_t codepoint) {
  const UINT16 flags = down ? 0 : KBD_FLAGS_RELEASE;
  rdpInput* input = impl_->context->input;
  if (codepoint > 0xFFFF) {
    const char32_t v = codepoint - 0x10000;
    freerdp_input_send_unicode_keyboard_event(input, flags, static_cast<UINT16>(0xD800 + (v >> 10)));
    freerdp_input_send_unicode_keyboard_event(input, flags, static_cast<UINT16>(0xDC00 + (v & 0x3FF)));
    return;
  }
  freerdp_input_send_unicode_keyboard_event(input, flags, static_cast<UINT16>(codepoint));
}

bool RdpClient::unicodeInput() const {
  return freerdp_settings_get_bool(impl_->context->settings, FreeRDP_UnicodeInput);
}

void RdpClient::sendPointer(std::uint16_t mask, std::uint16_t x, std::uint16_t y) {
  Impl& impl = *impl_;
  rdpInput* input = impl.context->input;
  if (x != impl.pointer_x || y != impl.pointer_y) {
    freerdp_input_send_mouse_event(input, PTR_FLAGS_MOVE, x, y);
    impl.pointer_x = x;
    impl.pointer_y = y;
  }
  const std::uint16_t changed = mask ^ impl.buttons;
  const std::uint16_t pressed = changed & mask;
  struct Button {
    std::uint16_t bit;
    UINT16 flag;
  };
  static constexpr Button kButtons[] = {{1, PTR_FLAGS_BUTTON1}, {2, PTR_FLAGS_BUTTON3}, {4, PTR_FLAGS_BUTTON2}};
  for (const auto& b : kButtons) {
    if (changed & b.bit) freerdp_input_send_mouse_event(input, b.flag | ((mask & b.bit) ? PTR_FLAGS_DOWN : 0), x, y);
  }
  // Wheel "buttons" are a press and a release per notch; one notch is 120 units.
  if (pressed & 8) freerdp_input_send_mouse_event(input, PTR_FLAGS_WHEEL | 0x0078, x, y);
  if (pressed & 16) freerdp_input_send_mouse_event(input, PTR_FLAGS_WHEEL | PTR_FLAGS_WHEEL_NEGATIVE | 0x0088, x, y);
  const bool hwheel = freerdp_settings_get_bool(impl.context->settings, FreeRDP_HasHorizontalWheel);
  if (hwheel && (pressed & 32)) {
    freerdp_input_send_mouse_event(input, PTR_FLAGS_HWHEEL | PTR_FLAGS_WHEEL_NEGATIVE | 0x0088, x, y);
  }
  if (hwheel && (pressed & 64)) freerdp_input_send_mouse_event(input, PTR_FLAGS_HWHEEL | 0x0078, x, y);
  if (freerdp_settings_get_bool(impl.context->settings, FreeRDP_HasExtendedMouseEvent)) {
    if (changed & 128) {
      freerdp_input_send_extended_mouse_event(input, PTR_XFLAGS_BUTTON1 | ((mask & 128) ? PTR_XFLAGS_DOWN : 0), x, y);
    }
    if (changed & 256) {
      freerdp_input_send_extended_mouse_event(input, PTR_XFLAGS_BUTTON2 | ((mask & 256) ? PTR_XFLAGS_DOWN : 0), x, y);
    }
  }
  impl.buttons = mask;
}

void RdpClient::setClipboardText(std::string latin1) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->local_text_utf16 = latin1ToUtf16le(latin1);
  }
  offerClipboardText(*impl_);
}

bool RdpClient::requestResize(std::uint16_t width, std::uint16_t height) {
  Impl& impl = *impl_;
  if (!impl.disp || !impl.disp_ready) return false;
  DISPLAY_CONTROL_MONITOR_LAYOUT layout{};
  layout.Flags = DISPLAY_CONTROL_MONITOR_PRIMARY;
  // The protocol wants an even width between 200 and 8192 pixels.
  layout.Width = std::clamp<UINT32>(width & ~1u, 200, 8192);
  layout.Height = std::clamp<UINT32>(height, 200, 8192);
  layout.Orientation = ORIENTATION_LANDSCAPE;
  layout.DesktopScaleFactor = 100;
  layout.DeviceScaleFactor = 100;
  return impl.disp->SendMonitorLayout(impl.disp, 1, &layout) == CHANNEL_RC_OK;
}

}  // namespace kasm::rdp::detail
