// Fuzzes the browser login cookie and its CSRF token (include/kasm/auth/web_session.hpp), which the
// REST API checks on every cookie-authenticated request.
//
// Input: [position][mask][text]. The text, as a cookie, is not signed with the key, so it must never
// verify, and no CSRF token of a real cookie equals it. Then a cookie issued for the text as a user
// id (when valid) must verify to that user, its CSRF token must check, and the cookie or the CSRF
// token with one byte changed (at the input's position, by the input's non-zero mask) must not.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "kasm/auth/web_session.hpp"

namespace {

using namespace kasm;

[[noreturn]] void fail(const char* what, int line) {
  std::fprintf(stderr, "invariant failed at %s:%d: %s\n", __FILE__, line, what);
  std::abort();
}
#define check(ok) ((ok) ? void() : fail(#ok, __LINE__))

ManualClock& fixedClock() {
  static ManualClock c;
  return c;
}

const auth::WebSessionSigner& signer() {
  static const auth::WebSessionSigner s =
      auth::WebSessionSigner::create(std::string(32, 'w') + "fuzz web session key", fixedClock()).value();
  return s;
}

std::string alter(std::string s, const std::uint8_t* data) {
  const std::uint8_t mask = data[1] == 0 ? 1 : data[1];
  s[data[0] % s.size()] = static_cast<char>(s[data[0] % s.size()] ^ mask);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);
  static const std::string real_cookie = signer().issue(UserId("alice"), std::chrono::hours(12), "n0");

  check(!signer().verify(text).ok());
  check(!signer().checkCsrf(real_cookie, text));
  (void)signer().checkCsrf(text, text);

  auto user = UserId::parse(text);
  if (!user.ok()) return 0;
  const std::string cookie = signer().issue(user.value(), std::chrono::hours(12), "nonce");
  const auto claims = signer().verify(cookie);
  check(claims.ok() && claims.value().user_id == user.value());
  check(claims.value().issued_at == fixedClock().now() &&
        claims.value().expires_at == fixedClock().now() + std::chrono::hours(12));
  const std::string csrf = signer().csrfToken(cookie);
  check(signer().checkCsrf(cookie, csrf));
  check(!signer().verify(alter(cookie, data)).ok());
  check(!signer().checkCsrf(cookie, alter(csrf, data)));
  check(!signer().checkCsrf(alter(cookie, data), csrf));
  return 0;
}
