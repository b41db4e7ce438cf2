#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace kasm {

// The operating system's CSPRNG (getrandom(2)), the only source of secrets and of ids that act as
// capabilities: tokens, API-key and agent secrets, password salts, signing keys, session ids.
//
// It takes no seed and no injected generator on purpose: `Random` (kasm/core/random.hpp) is the
// reproducible source for simulations, placement tie-breaks and tests, and no function that makes
// a secret accepts one. Thread-safe. Blocks only until the kernel's pool is first initialised; if
// the kernel cannot supply random bytes at all the process aborts rather than make a weak secret.
void secureRandomBytes(std::span<std::byte> out);

// 64 bits from secureRandomBytes().
std::uint64_t secureRandomU64();

}  // namespace kasm
