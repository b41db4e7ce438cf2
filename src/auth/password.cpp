#include "kasm/auth/password.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <charconv>
#include <span>
#include <vector>

#include "kasm/core/secure_random.hpp"

namespace kasm::auth {
namespace {

constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kHashBytes = 32;

std::string toBase64(const unsigned char* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

bool fromBase64(std::string_view in, std::vector<unsigned char>& out) {
  if (in.empty() || in.size() % 4 != 0 || in.size() > 256) return false;
  out.assign(3 * in.size() / 4 + 1, 0);
  const int len =
      EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (len < 0) return false;
  std::size_t padding = 0;
  if (in.back() == '=') ++padding;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++padding;
  out.resize(static_cast<std::size_t>(len) - padding);
  return true;
}

bool derive(std::string_view password, const unsigned char* salt, std::size_t salt_len, const PasswordHashParams& p,
            unsigned char* out, std::size_t out_len) {
  const std::uint64_t n = std::uint64_t{1} << p.log2_n;
  const std::uint64_t max_mem = 128 * n * static_cast<std::uint64_t>(p.r) * 2 + (1u << 20);
  return EVP_PBE_scrypt(password.data(), password.size(), salt, salt_len, n, static_cast<std::uint64_t>(p.r),
                        static_cast<std::uint64_t>(p.p), max_mem, out, out_len) == 1;
}

bool parseInt(std::string_view s, int& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

Result<std::string> hashPassword(std::string_view password, PasswordHashParams params) {
  if (password.empty()) return invalidArgument("password must not be empty");
  if (password.size() > 1024) return invalidArgument("password is longer than 1024 bytes");
  unsigned char salt[kSaltBytes];
  secureRandomBytes(std::as_writable_bytes(std::span(salt, kSaltBytes)));
  unsigned char hash[kHashBytes];
  if (!derive(password, salt, kSaltBytes, params, hash, kHashBytes)) return internalError("scrypt failed");
  return "$scrypt$ln=" + std::to_string(params.log2_n) + ",r=" + std::to_string(params.r) +
         ",p=" + std::to_string(params.p) + "$" + toBase64(salt, kSaltBytes) + "$" + toBase64(hash, kHashBytes);
}

bool verifyPassword(std::string_view password, std::string_view phc) {
  if (password.size() > 1024 || !phc.starts_with("$scrypt$ln=")) return false;
  std::string_view rest = phc.substr(8);
  const auto d1 = rest.find('$');
  if (d1 == std::string_view::npos) return false;
  std::string_view params = rest.substr(0, d1);
  rest = rest.substr(d1 + 1);
  const auto d2 = rest.find('$');
  if (d2 == std::string_view::npos) return false;
  std::vector<unsigned char> salt, expected;
  if (!fromBase64(rest.substr(0, d2), salt) || !fromBase64(rest.substr(d2 + 1), expected)) return false;
  PasswordHashParams p;
  const auto c1 = params.find(",r=");
  const auto c2 = params.find(",p=");
  if (c1 == std::string_view::npos || c2 == std::string_view::npos || c2 < c1) return false;
  if (!parseInt(params.substr(3, c1 - 3), p.log2_n) || !parseInt(params.substr(c1 + 3, c2 - c1 - 3), p.r) ||
      !parseInt(params.substr(c2 + 3), p.p)) {
    return false;
  }
  // Refuse absurd costs from a tampered row instead of burning memory on them.
  if (p.log2_n < 10 || p.log2_n > 20 || p.r < 1 || p.r > 32 || p.p < 1 || p.p > 16 || expected.size() != kHashBytes) {
    return false;
  }
  unsigned char hash[kHashBytes];
  if (!derive(password, salt.data(), salt.size(), p, hash, kHashBytes)) return false;
  return CRYPTO_memcmp(hash, expected.data(), kHashBytes) == 0;
}

}  // namespace kasm::auth
