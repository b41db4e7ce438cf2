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

#include "fuzz_check.hpp"
#include "kasm/auth/web_session.hpp"

namespace {

using namespace kasm;

ManualClock& fixedClock() {
  static ManualClock c;
  return c;
}

const auth::WebSessionSigner& signer() {
  static const auth::WebSessionSigner s =
      auth::WebSessionSigner::create(std::string(32, 'w') + "fuzz web session key", fixedClock()).value();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);
  static const std::string real_cookie = signer().issue(UserId("alice"), std::chrono::hours(12), "n0");

  FUZZ_CHECK(!signer().verify(text).ok());
  FUZZ_CHECK(!signer().checkCsrf(real_cookie, text));
  (void)signer().checkCsrf(text, text);

  auto user = UserId::parse(text);
  if (!user.ok()) return 0;
  const std::string cookie = signer().issue(user.value(), std::chrono::hours(12), "nonce");
  const auto claims = signer().verify(cookie);
  FUZZ_CHECK(claims.ok() && claims.value().user_id == user.value());
  FUZZ_CHECK(claims.value().issued_at == fixedClock().now() &&
             claims.value().expires_at == fixedClock().now() + std::chrono::hours(12));
  const std::string csrf = signer().csrfToken(cookie);
  FUZZ_CHECK(signer().checkCsrf(cookie, csrf));
  FUZZ_CHECK(!signer().verify(fuzz::flipByte(cookie, data)).ok());
  FUZZ_CHECK(!signer().checkCsrf(cookie, fuzz::flipByte(csrf, data)));
  FUZZ_CHECK(!signer().checkCsrf(fuzz::flipByte(cookie, data), csrf));
  return 0;
}
