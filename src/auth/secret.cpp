#include "kasm/auth/secret.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <span>

#include "kasm/core/secure_random.hpp"

namespace kasm::auth {
namespace {

std::string hex(const unsigned char* data, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 0xF];
  }
  return out;
}

}  // namespace

std::string generateToken(std::size_t bytes) {
  std::string raw(bytes, '\0');
  secureRandomBytes(std::as_writable_bytes(std::span(raw.data(), raw.size())));
  return hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

std::string hashSecret(std::string_view secret) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(secret.data(), secret.size(), digest, &len, EVP_sha256(), nullptr);
  return "$sha256$" + hex(digest, len);
}

bool verifySecret(std::string_view secret, std::string_view stored) {
  const std::string computed = hashSecret(secret);
  if (computed.size() != stored.size()) return false;
  return CRYPTO_memcmp(computed.data(), stored.data(), computed.size()) == 0;
}

std::optional<std::string_view> authorizationCredentials(std::string_view header, std::string_view scheme) noexcept {
  if (header.size() <= scheme.size() || header[scheme.size()] != ' ') return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(header[i]) != lower(scheme[i])) return std::nullopt;
  }
  std::string_view rest = header.substr(scheme.size());
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.empty()) return std::nullopt;
  return rest;
}

}  // namespace kasm::auth
