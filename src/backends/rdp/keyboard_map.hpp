#pragma once

// Internal to kasm::rdp: turning what an RFB viewer sends for a key into RDP keyboard input.
//
// noVNC sends QEMU extended key events when the server announces them: the physical key's XT
// scancode beside the keysym. Those are passed on as RDP scancodes, so the server's own layout (the
// one announced from GatewayRequest::keyboard_layout) turns them into characters exactly as a local
// keyboard would, for every layout. Plain KeyEvents carry only a keysym: keys that do something
// (Return, arrows, modifiers, F1...) become their scancode; characters become Unicode keyboard
// events when the server accepts them and, when it does not (xrdp 0.9), the US scancode that types
// them, with Shift around it when the character needs it.

#include <cstdint>
#include <optional>
#include <string_view>

namespace kasm::rdp::detail {

struct Scancode {
  std::uint8_t code = 0;
  bool extended = false;  // The 0xE0 prefix.
};

// The scancode of a non-character key (modifiers, editing and function keys, keypad), if any.
std::optional<Scancode> scancodeForFunctionKey(std::uint32_t keysym);

// The Unicode code point a character keysym types (Latin-1 keysyms are their code point, Unicode
// keysyms are 0x01000000 + code point, a few legacy ones are mapped), if it is a character.
std::optional<char32_t> codepointForKeysym(std::uint32_t keysym);

// The US-layout key for a printable ASCII character, and whether Shift is needed.
struct UsKey {
  Scancode scancode;
  bool shift = false;
};
std::optional<UsKey> usKeyForAscii(char32_t c);

// A QEMU extended key event's keycode as noVNC sends it (extended keys have bit 7 set on a single
// byte, or 0xE0 in the second byte) as an RDP scancode; nullopt for 0 (no scancode known).
std::optional<Scancode> scancodeFromQemuKeycode(std::uint32_t keycode);

// The Windows keyboard layout id for a name like "en-us" or "de-de" (case-insensitive); nullopt
// when the name is unknown.
std::optional<std::uint32_t> keyboardLayoutId(std::string_view name);

}  // namespace kasm::rdp::detail
