#pragma once

// Secrets the control plane must be able to read back (a session's share id, a fixed server's
// credentials) are stored sealed: AES-256-GCM under a key derived from the installation's secret
// key and a purpose, with a fresh random nonce per seal. A sealed value names its purpose, so one
// sealed for "share-id" does not open as anything else.

#include <string>
#include <string_view>

#include "kasm/core/result.hpp"

namespace kasm::auth {

// "v1." + hex(nonce || ciphertext || tag). InvalidArgument when `key` is shorter than 32
// bytes.
Result<std::string> seal(std::string_view key, std::string_view purpose, std::string_view plaintext);
// The plaintext; DataLoss when the value was tampered with, sealed under another key or purpose,
// or is not a sealed value at all.
Result<std::string> unseal(std::string_view key, std::string_view purpose, std::string_view sealed);

}  // namespace kasm::auth
