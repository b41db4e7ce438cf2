#include "kasm/version.hpp"

namespace kasm {

std::string_view version() noexcept {
  return KASM_VERSION_STRING;
}

}  // namespace kasm
