#include "kasm/auth/access_token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include <charconv>
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
// The proxy checks a token on every request: keep one keyed HMAC context per thread instead of
// fetching the algorithm and allocating a context each time (OpenSSL 3's one-shot HMAC() does).
struct ThreadMac {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* ctx = nullptr;
  std::string key;
  ~ThreadMac() {
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
  }
};
}  // namespace

std::string hmacSha256(std::string_view key, std::string_view payload) {
  thread_local ThreadMac tm;
  unsigned char out[EVP_MAX_MD_SIZE];
  std::size_t len = 0;
  bool ok = true;
  if (!tm.ctx || tm.key != key) {
    if (!tm.mac) tm.mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    EVP_MAC_CTX_free(tm.ctx);
    tm.ctx = tm.mac ? EVP_MAC_CTX_new(tm.mac) : nullptr;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end()};
    ok = tm.ctx && EVP_MAC_init(tm.ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) == 1;
    tm.key = ok ? std::string(key) : std::string();
  } else {
    ok = EVP_MAC_init(tm.ctx, nullptr, 0, nullptr) == 1;  // Same key: restart.
  }
  ok = ok && EVP_MAC_update(tm.ctx, reinterpret_cast<const unsigned char*>(payload.data()), payload.size()) == 1 &&
       EVP_MAC_final(tm.ctx, out, &len, sizeof out) == 1;
  if (!ok) {
    // Fall back to the one-shot form (never expected; keeps the answer correct).
    unsigned int n = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(payload.data()),
         payload.size(), out, &n);
    len = n;
    EVP_MAC_CTX_free(tm.ctx);
    tm.ctx = nullptr;
  }
  return base64url(out, len);
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string AccessTokenSigner::mac(std::string_view payload) const {
  return hmacSha256(key_, payload);
}

std::string AccessTokenSigner::issue(const SessionId& session, const UserId& user, Duration ttl) const {
  const std::string payload =
      "v1~" + session.str() + "~" + user.str() + "~" + std::to_string(toUnixMillis(clock_->now() + ttl));
  return payload + "~" + mac(payload);
}

Result<AccessClaims> AccessTokenSigner::verify(std::string_view token) const {
  if (token.size() > 512) return unauthenticated("access token is too long");
  const auto parts = detail::splitTokenFields(token);
  if (parts.size() != 5 || parts.front() != "v1") return unauthenticated("access token is malformed");
  const std::string_view given_mac = parts.back();
  const std::string_view payload = token.substr(0, token.size() - given_mac.size() - 1);
  const std::string expected = mac(payload);
  if (!constantTimeEquals(expected, given_mac)) {
    return unauthenticated("access token signature does not match");
  }
  std::int64_t expiry = 0;
  auto [ptr, ec] = std::from_chars(parts[3].data(), parts[3].data() + parts[3].size(), expiry);
  if (ec != std::errc() || ptr != parts[3].data() + parts[3].size())
    return unauthenticated("access token is malformed");
  AccessClaims claims{SessionId(std::string(parts[1])), UserId(std::string(parts[2])), fromUnixMillis(expiry)};
  if (clock_->now() >= claims.expires_at) return unauthenticated("access token has expired");
  return claims;
}

Result<AccessClaims> AccessTokenSigner::verifyFor(std::string_view token, const SessionId& session) const {
  KASM_ASSIGN_OR_RETURN(AccessClaims claims, verify(token));
  if (claims.session_id != session) return permissionDenied("access token is for another session");
  return claims;
}

}  // namespace kasm::auth
