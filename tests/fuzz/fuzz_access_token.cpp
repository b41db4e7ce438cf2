// Fuzzes the verification of session access tokens (include/kasm/auth/access_token.hpp), which the
// proxy applies to every desktop request and WebSocket upgrade, from a query string, a cookie or a
// bearer header.
//
// Input: [position][mask][text]. The text is verified as a token: it is not signed with the key, so
// it must never verify. Then, when the text splits at '~' into a valid session id and user id, a
// token issued for them must verify to exactly those claims, and the same token with one byte
// changed (at the input's position, by the input's non-zero mask) must not verify.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "kasm/auth/access_token.hpp"

namespace {

using namespace kasm;

ManualClock& fixedClock() {
  static ManualClock c;
  return c;
}

const auth::AccessTokenSigner& signer() {
  static const auth::AccessTokenSigner s =
      auth::AccessTokenSigner::create(std::string(32, 'k') + "fuzz access token key", fixedClock()).value();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);
  const SessionId some_session("s1");

  FUZZ_CHECK(!signer().verify(text).ok());
  FUZZ_CHECK(!signer().verifyFor(text, some_session).ok());

  const auto tilde = text.find('~');
  if (tilde == std::string_view::npos) return 0;
  auto session = SessionId::parse(text.substr(0, tilde));
  auto user = UserId::parse(text.substr(tilde + 1));
  if (!session.ok() || !user.ok()) return 0;

  const std::string token = signer().issue(session.value(), user.value(), std::chrono::hours(1));
  const auto claims = signer().verifyFor(token, session.value());
  FUZZ_CHECK(claims.ok());
  FUZZ_CHECK(claims.value().session_id == session.value() && claims.value().user_id == user.value());
  FUZZ_CHECK(claims.value().issued_at == fixedClock().now() &&
             claims.value().expires_at == fixedClock().now() + std::chrono::hours(1));
  if (session.value() != some_session) FUZZ_CHECK(!signer().verifyFor(token, some_session).ok());

  FUZZ_CHECK(!signer().verify(fuzz::flipByte(token, data)).ok());
  return 0;
}
