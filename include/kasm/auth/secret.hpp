#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace kasm::auth {

// A token of `bytes` bytes from the OS CSPRNG, hex encoded (64 characters for the default 32 bytes =
// 256 bits).
std::string generateToken(std::size_t bytes = 32);

// Hashes a high-entropy secret (agent tokens, API key secrets) for storage: "$sha256$<hex>".
// High entropy makes a fast hash safe here; passwords use a slow hash instead.
std::string hashSecret(std::string_view secret);

// True when `secret` hashes to `stored`; the comparison takes the same time wherever they differ.
bool verifySecret(std::string_view secret, std::string_view stored);

// HMAC-SHA256 of `payload` under `key`, base64url without padding (43 characters).
std::string hmacSha256(std::string_view key, std::string_view payload);

// Compares in time independent of where the inputs differ.
bool constantTimeEquals(std::string_view a, std::string_view b);

// The credentials of an HTTP Authorization header of `scheme` ("Bearer", "Basic"): what follows the
// scheme's name (matched ignoring ASCII case, as RFC 9110 11.1 says) and the spaces after it;
// nullopt for another scheme or no credentials.
std::optional<std::string_view> authorizationCredentials(std::string_view header, std::string_view scheme) noexcept;

}  // namespace kasm::auth
