#pragma once

// What every fuzz target shares: an invariant check that crashes (so libFuzzer keeps the input),
// and the one-byte change the auth targets make to a genuine token.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace kasm::fuzz {

[[noreturn]] inline void fail(const char* what, const char* file, int line) {
  std::fprintf(stderr, "invariant failed at %s:%d: %s\n", file, line, what);
  std::abort();
}

// `s` with the byte at data[0] (modulo its length) XORed with data[1] (1 when that is 0): never
// equal to `s`. `s` must not be empty; `data` holds at least two bytes.
inline std::string flipByte(std::string s, const std::uint8_t* data) {
  const std::uint8_t mask = data[1] == 0 ? 1 : data[1];
  s[data[0] % s.size()] = static_cast<char>(s[data[0] % s.size()] ^ mask);
  return s;
}

}  // namespace kasm::fuzz

#define FUZZ_CHECK(ok) ((ok) ? void() : ::kasm::fuzz::fail(#ok, __FILE__, __LINE__))
