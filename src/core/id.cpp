#include "kasm/core/id.hpp"

#include "kasm/core/secure_random.hpp"

namespace kasm {

std::string generateIdString() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int half = 0; half < 2; ++half) {
    std::uint64_t bits = secureRandomU64();
    for (int i = 0; i < 16; ++i) {
      out[half * 16 + i] = kHex[bits & 0xF];
      bits >>= 4;
    }
  }
  return out;
}

bool isValidIdString(std::string_view s) noexcept {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace kasm
