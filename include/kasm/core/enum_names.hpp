#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace kasm {

// Maps an enum to stable lowercase names used in JSON, the store and the HTTP API. Specialise
// EnumNames<E> with `static constexpr std::array<std::pair<E, std::string_view>, N> kValues`.
template <class E>
struct EnumNames;

template <class E>
constexpr std::string_view enumName(E value) noexcept {
  for (const auto& [v, name] : EnumNames<E>::kValues) {
    if (v == value) return name;
  }
  return "unknown";
}

template <class E>
constexpr std::optional<E> enumFromName(std::string_view name) noexcept {
  for (const auto& [v, n] : EnumNames<E>::kValues) {
    if (n == name) return v;
  }
  return std::nullopt;
}

// "a, b, c": the accepted names, for error messages.
template <class E>
std::string enumChoices() {
  std::string out;
  for (const auto& [v, n] : EnumNames<E>::kValues) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

}  // namespace kasm

#define KASM_ENUM_NAMES(E, N, ...)                                                         \
  template <>                                                                              \
  struct kasm::EnumNames<E> {                                                              \
    static constexpr std::array<std::pair<E, std::string_view>, N> kValues{{__VA_ARGS__}}; \
  }
