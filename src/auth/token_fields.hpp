#pragma once

// Internal to src/auth: signed tokens are fields separated by '~', which ids never contain (ids are
// [A-Za-z0-9_.-]) and URLs leave alone.

#include <string_view>
#include <vector>

namespace kasm::auth::detail {

inline std::vector<std::string_view> splitTokenFields(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const auto sep = s.find('~', start);
    if (sep == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, sep - start));
    start = sep + 1;
  }
}

}  // namespace kasm::auth::detail
