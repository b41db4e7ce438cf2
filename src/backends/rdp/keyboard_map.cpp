#include "backends/rdp/keyboard_map.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <utility>

namespace kasm::rdp::detail {

namespace {

struct FunctionKey {
  std::uint32_t keysym;
  std::uint8_t code;
  bool extended;
};

// X11 keysyms (keysymdef.h) of keys that act rather than type, and their set-1 scancodes.
constexpr FunctionKey kFunctionKeys[] = {
    {0xFF08, 0x0E, false},  // BackSpace
    {0xFF09, 0x0F, false},  // Tab
    {0xFE20, 0x0F, false},  // ISO_Left_Tab (Shift+Tab)
    {0xFF0D, 0x1C, false},  // Return
    {0xFF13, 0x45, false},  // Pause (sent unextended; RDP servers accept it)
    {0xFF14, 0x46, false},  // Scroll_Lock
    {0xFF15, 0x37, true},   // Sys_Req (Print Screen)
    {0xFF1B, 0x01, false},  // Escape
    {0xFF50, 0x47, true},   // Home
    {0xFF51, 0x4B, true},   // Left
    {0xFF52, 0x48, true},   // Up
    {0xFF53, 0x4D, true},   // Right
    {0xFF54, 0x50, true},   // Down
    {0xFF55, 0x49, true},   // Page_Up
    {0xFF56, 0x51, true},   // Page_Down
    {0xFF57, 0x4F, true},   // End
    {0xFF61, 0x37, true},   // Print
    {0xFF63, 0x52, true},   // Insert
    {0xFF67, 0x5D, true},   // Menu
    {0xFF7F, 0x45, false},  // Num_Lock
    {0xFF8D, 0x1C, true},   // KP_Enter
    {0xFF95, 0x47, false},  // KP_Home
    {0xFF96, 0x4B, false},  // KP_Left
    {0xFF97, 0x48, false},  // KP_Up
    {0xFF98, 0x4D, false},  // KP_Right
    {0xFF99, 0x50, false},  // KP_Down
    {0xFF9A, 0x49, false},  // KP_Page_Up
    {0xFF9B, 0x51, false},  // KP_Page_Down
    {0xFF9C, 0x4F, false},  // KP_End
    {0xFF9D, 0x4C, false},  // KP_Begin
    {0xFF9E, 0x52, false},  // KP_Insert
    {0xFF9F, 0x53, false},  // KP_Delete
    {0xFFAA, 0x37, false},  // KP_Multiply
    {0xFFAB, 0x4E, false},  // KP_Add
    {0xFFAD, 0x4A, false},  // KP_Subtract
    {0xFFAE, 0x53, false},  // KP_Decimal
    {0xFFAF, 0x35, true},   // KP_Divide
    {0xFFB0, 0x52, false},  // KP_0
    {0xFFB1, 0x4F, false},  // KP_1
    {0xFFB2, 0x50, false},  // KP_2
    {0xFFB3, 0x51, false},  // KP_3
    {0xFFB4, 0x4B, false},  // KP_4
    {0xFFB5, 0x4C, false},  // KP_5
    {0xFFB6, 0x4D, false},  // KP_6
    {0xFFB7, 0x47, false},  // KP_7
    {0xFFB8, 0x48, false},  // KP_8
    {0xFFB9, 0x49, false},  // KP_9
    {0xFFBE, 0x3B, false},  // F1
    {0xFFBF, 0x3C, false},  // F2
    {0xFFC0, 0x3D, false},  // F3
    {0xFFC1, 0x3E, false},  // F4
    {0xFFC2, 0x3F, false},  // F5
    {0xFFC3, 0x40, false},  // F6
    {0xFFC4, 0x41, false},  // F7
    {0xFFC5, 0x42, false},  // F8
    {0xFFC6, 0x43, false},  // F9
    {0xFFC7, 0x44, false},  // F10
    {0xFFC8, 0x57, false},  // F11
    {0xFFC9, 0x58, false},  // F12
    {0xFFE1, 0x2A, false},  // Shift_L
    {0xFFE2, 0x36, false},  // Shift_R
    {0xFFE3, 0x1D, false},  // Control_L
    {0xFFE4, 0x1D, true},   // Control_R
    {0xFFE5, 0x3A, false},  // Caps_Lock
    {0xFFE7, 0x5B, true},   // Meta_L (as the Windows key)
    {0xFFE8, 0x5C, true},   // Meta_R
    {0xFFE9, 0x38, false},  // Alt_L
    {0xFFEA, 0x38, true},   // Alt_R
    {0xFE03, 0x38, true},   // ISO_Level3_Shift (AltGr)
    {0xFFEB, 0x5B, true},   // Super_L
    {0xFFEC, 0x5C, true},   // Super_R
    {0xFFFF, 0x53, true},   // Delete
};

// US layout, set-1 scancodes of printable ASCII 0x20..0x7E; the high bit means Shift.
constexpr std::uint8_t kShift = 0x80;
constexpr std::array<std::uint8_t, 95> kUsAscii = {
    0x39,          0x02 | kShift, 0x28 | kShift, 0x04 | kShift, 0x05 | kShift, 0x06 | kShift, 0x08 | kShift,
    0x28,          0x0A | kShift, 0x0B | kShift, 0x09 | kShift, 0x0D | kShift, 0x33,          0x0C,
    0x34,          0x35,          0x0B,          0x02,          0x03,          0x04,          0x05,
    0x06,          0x07,          0x08,          0x09,          0x0A,          0x27 | kShift, 0x27,
    0x33 | kShift, 0x0D,          0x34 | kShift, 0x35 | kShift, 0x03 | kShift, 0x1E | kShift, 0x30 | kShift,
    0x2E | kShift, 0x20 | kShift, 0x12 | kShift, 0x21 | kShift, 0x22 | kShift, 0x23 | kShift, 0x17 | kShift,
    0x24 | kShift, 0x25 | kShift, 0x26 | kShift, 0x32 | kShift, 0x31 | kShift, 0x18 | kShift, 0x19 | kShift,
    0x10 | kShift, 0x13 | kShift, 0x1F | kShift, 0x14 | kShift, 0x16 | kShift, 0x2F | kShift, 0x11 | kShift,
    0x2D | kShift, 0x15 | kShift, 0x2C | kShift, 0x1A,          0x2B,          0x1B,          0x07 | kShift,
    0x0C | kShift, 0x29,          0x1E,          0x30,          0x2E,          0x20,          0x12,
    0x21,          0x22,          0x23,          0x17,          0x24,          0x25,          0x26,
    0x32,          0x31,          0x18,          0x19,          0x10,          0x13,          0x1F,
    0x14,          0x16,          0x2F,          0x11,          0x2D,          0x15,          0x2C,
    0x1A | kShift, 0x2B | kShift, 0x1B | kShift, 0x29 | kShift,
};

constexpr std::pair<std::string_view, std::uint32_t> kLayouts[] = {
    {"en-us", 0x00000409}, {"en-gb", 0x00000809},    {"de-de", 0x00000407}, {"de-ch", 0x00000807},
    {"fr-fr", 0x0000040C}, {"fr-be", 0x0000080C},    {"fr-ch", 0x0000100C}, {"fr-ca", 0x00001009},
    {"es-es", 0x0000040A}, {"es-latam", 0x0000080A}, {"it-it", 0x00000410}, {"pt-br", 0x00000416},
    {"pt-pt", 0x00000816}, {"nl-nl", 0x00000413},    {"sv-se", 0x0000041D}, {"da-dk", 0x00000406},
    {"nb-no", 0x00000414}, {"fi-fi", 0x0000040B},    {"pl-pl", 0x00000415}, {"cs-cz", 0x00000405},
    {"hu-hu", 0x0000040E}, {"tr-tr", 0x0000041F},    {"ru-ru", 0x00000419}, {"ja-jp", 0x00000411},
    {"ko-kr", 0x00000412},
};

}  // namespace

std::optional<Scancode> scancodeForFunctionKey(std::uint32_t keysym) {
  for (const auto& k : kFunctionKeys) {
    if (k.keysym == keysym) return Scancode{k.code, k.extended};
  }
  return std::nullopt;
}

std::optional<char32_t> codepointForKeysym(std::uint32_t keysym) {
  if ((keysym >= 0x20 && keysym <= 0x7E) || (keysym >= 0xA0 && keysym <= 0xFF)) return static_cast<char32_t>(keysym);
  if ((keysym & 0xFF000000) == 0x01000000) {
    const char32_t cp = keysym & 0x00FFFFFF;
    if (cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF)) return cp;
    return std::nullopt;
  }
  if (keysym == 0x20AC) return U'\u20AC';  // EuroSign
  return std::nullopt;
}

std::optional<UsKey> usKeyForAscii(char32_t c) {
  if (c < 0x20 || c > 0x7E) return std::nullopt;
  const std::uint8_t v = kUsAscii[c - 0x20];
  return UsKey{Scancode{static_cast<std::uint8_t>(v & 0x7F), false}, (v & kShift) != 0};
}

std::optional<Scancode> scancodeFromQemuKeycode(std::uint32_t keycode) {
  if (keycode == 0) return std::nullopt;
  if ((keycode >> 8) == 0xE0) return Scancode{static_cast<std::uint8_t>(keycode & 0x7F), true};
  if (keycode < 0x100) return Scancode{static_cast<std::uint8_t>(keycode & 0x7F), (keycode & 0x80) != 0};
  return std::nullopt;
}

std::optional<std::uint32_t> keyboardLayoutId(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return c == '_' ? '-' : static_cast<char>(std::tolower(c)); });
  for (const auto& [n, id] : kLayouts) {
    if (n == lower) return id;
  }
  return std::nullopt;
}

}  // namespace kasm::rdp::detail
