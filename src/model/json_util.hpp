#pragma once

#include <string_view>

#include "kasm/core/result.hpp"

namespace kasm::detail {

// InvalidArgument naming `field` unless `text` parses as a JSON object.
Result<void> checkJsonObject(std::string_view text, std::string_view field);

}  // namespace kasm::detail
