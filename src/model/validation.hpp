#pragma once

// Small checks shared by the validate() methods of the model. Private to the library.

#include <string>
#include <string_view>

#include "kasm/core/result.hpp"

namespace kasm::detail {

Result<void> requireNonEmpty(std::string_view value, std::string_view field);
// Printable text (no control characters) of at most `max_len` bytes; may be empty.
Result<void> requireText(std::string_view value, std::string_view field, std::size_t max_len);
Result<void> requireId(std::string_view value, std::string_view field);
Result<void> requireOptionalId(std::string_view value, std::string_view field);
// http:// or https:// with a host.
Result<void> requireHttpUrl(std::string_view value, std::string_view field);
// An absolute path with no "." or ".." segments and no NUL.
Result<void> requireAbsolutePath(std::string_view value, std::string_view field);
// One file name a user chose: 1-255 bytes, no '/', no control character, not "." or "..".
Result<void> requireFileName(std::string_view value, std::string_view field);
Result<void> requireLabelKey(std::string_view key, std::string_view field);

}  // namespace kasm::detail
