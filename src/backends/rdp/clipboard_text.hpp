#pragma once

// Internal to kasm::rdp: clipboard text between RFB and RDP. RFB cut text is Latin-1 with LF line
// ends; RDP's CF_UNICODETEXT is UTF-16LE with CRLF line ends and a terminating NUL. Characters that
// Latin-1 cannot hold become '?' on the way to the viewer (RFB has no other way to carry them).

#include <string>
#include <string_view>

namespace kasm::rdp::detail {

// Latin-1 (LF) to UTF-16LE bytes (CRLF), NUL-terminated.
std::string latin1ToUtf16le(std::string_view latin1);

// UTF-16LE bytes (CRLF or LF, up to the first NUL) to Latin-1 with LF line ends. Surrogate pairs
// and anything above U+00FF become '?'; an odd trailing byte is ignored.
std::string utf16leToLatin1(std::string_view utf16le);

}  // namespace kasm::rdp::detail
