// The HMAC below keeps SHA-256 midstates, which only the low-level SHA256_* functions expose;
// OpenSSL 3 marks them deprecated but keeps them (and their hardware-accelerated block code).
#define OPENSSL_SUPPRESS_DEPRECATED

#include "kasm/auth/access_token.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <charconv>
#include <cstring>
#include <vector>

#include "auth/token_fields.hpp"
#include "kasm/auth/secret.hpp"

namespace kasm::auth {
namespace {

std::string base64url(const unsigned char* data, std::size_t n) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((n * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 2 < n; i += 3) {
    const std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == n) {
    const std::uint32_t v = data[i] << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (i + 2 == n) {
    const std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}
}  // namespace

Result<AccessTokenSigner> AccessTokenSigner::create(std::string key, const Clock& clock) {
  if (key.size() < 32) return invalidArgument("access token key must be at least 32 bytes");
  return AccessTokenSigner(std::move(key), clock);
}

namespace {
// The proxy checks a token on every request. HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)): the
// hash states after the two key blocks depend on the key alone, so each thread keeps them for the
// last key it saw and a MAC costs two copies of a state and two blocks of SHA-256, where OpenSSL's
// EVP_MAC re-initialises its contexts on every call.
struct ThreadMac {
  std::string key;
  SHA256_CTX inner{};
  SHA256_CTX outer{};
  bool ready = false;
  ~ThreadMac() {
    OPENSSL_cleanse(&inner, sizeof inner);
    OPENSSL_cleanse(&outer, sizeof outer);
    OPENSSL_cleanse(key.data(), key.size());
  }
};
}  // namespace

std::string hmacSha256(std::string_view key, std::string_view payload) {
  thread_local ThreadMac tm;
  if (!tm.ready || tm.key != key) {
    unsigned char block[SHA256_CBLOCK] = {};
    if (key.size() > sizeof block) {
      SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), block);  // RFC 2104: long keys hashed.
    } else {
      std::memcpy(block, key.data(), key.size());
    }
    unsigned char ipad[SHA256_CBLOCK], opad[SHA256_CBLOCK];
    for (std::size_t i = 0; i < sizeof block; ++i) {
      ipad[i] = static_cast<unsigned char>(block[i] ^ 0x36);
      opad[i] = static_cast<unsigned char>(block[i] ^ 0x5c);
    }
    SHA256_Init(&tm.inner);
    SHA256_Update(&tm.inner, ipad, sizeof ipad);
    SHA256_Init(&tm.outer);
    SHA256_Update(&tm.outer, opad, sizeof opad);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
    tm.key.assign(key);
    tm.ready = true;
  }
  unsigned char inner_hash[SHA256_DIGEST_LENGTH], out[SHA256_DIGEST_LENGTH];
  SHA256_CTX ctx = tm.inner;
  SHA256_Update(&ctx, payload.data(), payload.size());
  SHA256_Final(inner_hash, &ctx);
  ctx = tm.outer;
  SHA256_Update(&ctx, inner_hash, sizeof inner_hash);
  SHA256_Final(out, &ctx);
  OPENSSL_cleanse(&ctx, sizeof ctx);
  return base64url(out, sizeof out);
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string AccessTokenSigner::mac(std::string_view payload) const {
  return hmacSha256(key_, payload);
}

std::string AccessTokenSigner::issue(const SessionId& session, const UserId& user, Duration ttl) const {
  const auto now = clock_->now();
  const std::string payload = "v2~" + session.str() + "~" + user.str() + "~" + std::to_string(toUnixMillis(now)) + "~" +
                              std::to_string(toUnixMillis(now + ttl));
  return payload + "~" + mac(payload);
}

namespace {
bool parseMillis(std::string_view text, std::int64_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc() && ptr == text.data() + text.size();
}
}  // namespace

Result<AccessClaims> AccessTokenSigner::verify(std::string_view token) const {
  if (token.size() > 512) return unauthenticated("access token is too long");
  const auto parts = detail::splitTokenFields(token);
  // v1 (no issue time) is still read so that desktops open across an upgrade keep working until
  // their tokens expire; it counts as issued at the epoch, so any logout revokes it.
  const bool v2 = parts.size() == 6 && parts.front() == "v2";
  if (!v2 && !(parts.size() == 5 && parts.front() == "v1")) return unauthenticated("access token is malformed");
  const std::string_view given_mac = parts.back();
  const std::string_view payload = token.substr(0, token.size() - given_mac.size() - 1);
  const std::string expected = mac(payload);
  if (!constantTimeEquals(expected, given_mac)) {
    return unauthenticated("access token signature does not match");
  }
  std::int64_t issued = 0, expiry = 0;
  if ((v2 && !parseMillis(parts[3], issued)) || !parseMillis(parts[v2 ? 4 : 3], expiry)) {
    return unauthenticated("access token is malformed");
  }
  AccessClaims claims{SessionId(std::string(parts[1])), UserId(std::string(parts[2])), fromUnixMillis(issued),
                      fromUnixMillis(expiry)};
  if (clock_->now() >= claims.expires_at) return unauthenticated("access token has expired");
  return claims;
}

Result<AccessClaims> AccessTokenSigner::verifyFor(std::string_view token, const SessionId& session) const {
  KASM_ASSIGN_OR_RETURN(AccessClaims claims, verify(token));
  if (claims.session_id != session) return permissionDenied("access token is for another session");
  return claims;
}

}  // namespace kasm::auth
