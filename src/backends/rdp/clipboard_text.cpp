#include "backends/rdp/clipboard_text.hpp"

#include <cstdint>

namespace kasm::rdp::detail {

namespace {

void putUnit(std::string& out, std::uint16_t unit) {
  out.push_back(static_cast<char>(unit & 0xFF));
  out.push_back(static_cast<char>(unit >> 8));
}

}  // namespace

std::string latin1ToUtf16le(std::string_view latin1) {
  std::string out;
  out.reserve(latin1.size() * 2 + 2);
  char previous = '\0';
  for (const char ch : latin1) {
    // A lone LF becomes CRLF; a CRLF already there stays as it is.
    if (ch == '\n' && previous != '\r') putUnit(out, '\r');
    putUnit(out, static_cast<unsigned char>(ch));
    previous = ch;
  }
  putUnit(out, 0);
  return out;
}

std::string utf16leToLatin1(std::string_view utf16le) {
  std::string out;
  out.reserve(utf16le.size() / 2);
  for (std::size_t i = 0; i + 1 < utf16le.size(); i += 2) {
    const std::uint16_t unit = static_cast<std::uint16_t>(static_cast<unsigned char>(utf16le[i]) |
                                                          (static_cast<unsigned char>(utf16le[i + 1]) << 8));
    if (unit == 0) break;
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      out.push_back('?');  // A high surrogate: the pair is one character beyond Latin-1.
      if (i + 3 < utf16le.size()) i += 2;
      continue;
    }
    if (unit == '\r') {
      const bool lf_follows = i + 3 < utf16le.size() && utf16le[i + 2] == '\n' && utf16le[i + 3] == '\0';
      if (lf_follows) continue;  // CRLF -> LF: the LF comes next.
      out.push_back('\n');
      continue;
    }
    out.push_back(unit <= 0xFF ? static_cast<char>(unit) : '?');
  }
  return out;
}

}  // namespace kasm::rdp::detail
