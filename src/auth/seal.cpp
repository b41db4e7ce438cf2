#include "kasm/auth/seal.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <memory>
#include <span>

#include "kasm/core/secure_random.hpp"

namespace kasm::auth {
namespace {

constexpr std::size_t kNonce = 12;
constexpr std::size_t kTag = 16;
constexpr std::string_view kPrefix = "v1.";

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

// The AES key of one purpose: HMAC-SHA256(installation key, "kasm-seal~" + purpose).
std::array<unsigned char, 32> purposeKey(std::string_view key, std::string_view purpose) {
  const std::string label = "kasm-seal~" + std::string(purpose);
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(label.data()),
       label.size(), out.data(), &len);
  return out;
}

std::string toHex(const std::string& raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
  }
  return out;
}

bool fromHex(std::string_view hex, std::string& out) {
  if (hex.size() % 2 != 0) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  out.resize(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

}  // namespace

Result<std::string> seal(std::string_view key, std::string_view purpose, std::string_view plaintext) {
  if (key.size() < 32) return invalidArgument("seal: the key must have at least 32 bytes");
  const auto k = purposeKey(key, purpose);
  std::string raw(kNonce + plaintext.size() + kTag, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(raw.data());
  secureRandomBytes(std::as_writable_bytes(std::span(raw.data(), kNonce)));
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int len = 0;
  const auto* aad = reinterpret_cast<const unsigned char*>(purpose.data());
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, k.data(), bytes) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad, static_cast<int>(purpose.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), bytes + kNonce, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), bytes + kNonce + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, bytes + kNonce + plaintext.size()) != 1) {
    return internalError("seal: AES-256-GCM failed");
  }
  return std::string(kPrefix) + toHex(raw);
}

Result<std::string> unseal(std::string_view key, std::string_view purpose, std::string_view sealed) {
  if (key.size() < 32) return invalidArgument("unseal: the key must have at least 32 bytes");
  std::string raw;
  if (!sealed.starts_with(kPrefix) || !fromHex(sealed.substr(kPrefix.size()), raw) || raw.size() < kNonce + kTag) {
    return dataLoss("unseal: not a sealed value");
  }
  const auto k = purposeKey(key, purpose);
  const auto* bytes = reinterpret_cast<unsigned char*>(raw.data());
  const std::size_t n = raw.size() - kNonce - kTag;
  std::string plain(n, '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int len = 0;
  const auto* aad = reinterpret_cast<const unsigned char*>(purpose.data());
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, k.data(), bytes) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad, static_cast<int>(purpose.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out, &len, bytes + kNonce, static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, const_cast<unsigned char*>(bytes + kNonce + n)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out + len, &len) != 1) {
    return dataLoss("unseal: the value was tampered with or sealed under another key");
  }
  return plain;
}

}  // namespace kasm::auth
