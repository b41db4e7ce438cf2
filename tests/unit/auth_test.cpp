#include <gtest/gtest.h>

#include "kasm/auth/access_token.hpp"
#include "kasm/auth/secret.hpp"
#include "kasm/core/random.hpp"

namespace kasm::auth {
namespace {

// RFC 4231 test cases 1, 2 and 6 (a key longer than a block), base64url without padding; the same
// thread switches keys between them, which the per-thread midstate cache must notice.
TEST(Secret, HmacSha256MatchesRfc4231) {
  EXPECT_EQ(hmacSha256(std::string(20, '\x0b'), "Hi There"), "sDRMYdjbOFNcqK_OrwvxK4gdwgDJgz2nJuk3bC4yz_c");
  EXPECT_EQ(hmacSha256("Jefe", "what do ya want for nothing?"), "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM");
  EXPECT_EQ(hmacSha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First"),
            "YOQxWR7gtn8Niiaqy_W3f44LxiE3KMUUBUYEDw7jf1Q");
  EXPECT_EQ(hmacSha256("Jefe", "what do ya want for nothing?"), "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM");
}

// Secrets come from the OS CSPRNG: the functions that make them accept no seeded generator.
template <class R>
concept CanMakeSecretFrom = requires(R& r) {
  generateToken(r);
}
|| requires(R& r) {
  generateToken(r, 16);
}
|| requires(R& r) {
  hashPassword("pw", r);
};
static_assert(!CanMakeSecretFrom<SeededRandom>, "secrets must not be made from a seeded generator");

TEST(Secret, HashVerifyAndTokens) {
  const std::string token = generateToken();
  EXPECT_EQ(token.size(), 64u);
  EXPECT_NE(token, generateToken());
  EXPECT_EQ(generateToken(9).size(), 18u);
  const std::string stored = hashSecret(token);
  EXPECT_EQ(stored.rfind("$sha256$", 0), 0u);
  EXPECT_EQ(stored.find(token), std::string::npos);
  EXPECT_TRUE(verifySecret(token, stored));
  std::string wrong = token;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(verifySecret(wrong, stored));
  EXPECT_FALSE(verifySecret(token, "$sha256$short"));
  EXPECT_FALSE(verifySecret("", stored));
}

TEST(Secret, AuthorizationCredentialsMatchTheSchemeIgnoringCase) {
  EXPECT_EQ(authorizationCredentials("Bearer abc", "Bearer"), "abc");
  EXPECT_EQ(authorizationCredentials("bearer abc", "Bearer"), "abc") << "scheme names ignore case";
  EXPECT_EQ(authorizationCredentials("BEARER   a:b", "Bearer"), "a:b");
  EXPECT_EQ(authorizationCredentials("Basic dXNlcjpwdw==", "Basic"), "dXNlcjpwdw==");
  EXPECT_EQ(authorizationCredentials("Basic abc", "Bearer"), std::nullopt);
  EXPECT_EQ(authorizationCredentials("Bearerabc", "Bearer"), std::nullopt);
  EXPECT_EQ(authorizationCredentials("Bearer ", "Bearer"), std::nullopt);
  EXPECT_EQ(authorizationCredentials("Bearer    ", "Bearer"), std::nullopt);
  EXPECT_EQ(authorizationCredentials("", "Bearer"), std::nullopt);
  EXPECT_EQ(authorizationCredentials("Bear", "Bearer"), std::nullopt);
}

class AccessTokenTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  AccessTokenSigner signer_ = *AccessTokenSigner::create(std::string(32, 'k'), clock_);
};

TEST_F(AccessTokenTest, IssuedTokensVerifyForTheirSessionUntilExpiry) {
  const auto token = signer_.issue(SessionId("s1"), UserId("alice.smith"), std::chrono::minutes(5));
  auto claims = signer_.verifyFor(token, SessionId("s1"));
  ASSERT_TRUE(claims.ok()) << claims.error().toString();
  EXPECT_EQ(claims->user_id, UserId("alice.smith"));
  EXPECT_EQ(signer_.verifyFor(token, SessionId("s2")).error().code(), ErrorCode::kPermissionDenied);
  clock_.advance(std::chrono::minutes(5));
  auto expired = signer_.verify(token);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(expired.error().message().find("expired"), std::string::npos);
}

TEST_F(AccessTokenTest, AnyChangedByteIsRejected) {
  const auto token = signer_.issue(SessionId("s1"), UserId("alice"), std::chrono::minutes(5));
  for (std::size_t i = 0; i < token.size(); ++i) {
    std::string t = token;
    t[i] = t[i] == 'x' ? 'y' : 'x';
    EXPECT_FALSE(signer_.verify(t).ok()) << "byte " << i;
  }
  // A token signed with another key is forged.
  auto other = *AccessTokenSigner::create(std::string(32, 'z'), clock_);
  EXPECT_EQ(signer_.verify(other.issue(SessionId("s1"), UserId("alice"), std::chrono::minutes(5))).error().code(),
            ErrorCode::kUnauthenticated);
  const std::string long_junk(600, 'a');  // Named: a temporary's c_str() would dangle in the list.
  for (std::string_view junk : {std::string_view(""), std::string_view("v1"), std::string_view("v1~~~~"),
                                std::string_view("v2~s~u~1~mac"), std::string_view(long_junk)}) {
    EXPECT_EQ(signer_.verify(junk).error().code(), ErrorCode::kUnauthenticated) << junk;
  }
  EXPECT_FALSE(AccessTokenSigner::create("short", clock_).ok());
}

// The issue time lets a logout everywhere (the user's sessions_valid_after) revoke tokens.
TEST_F(AccessTokenTest, TokensCarryTheirIssueTime) {
  clock_.advance(std::chrono::hours(1));
  const TimePoint issued = clock_.now();
  const auto token = signer_.issue(SessionId("s1"), UserId("alice"), std::chrono::minutes(5));
  auto claims = signer_.verify(token);
  ASSERT_TRUE(claims.ok());
  EXPECT_EQ(toUnixMillis(claims->issued_at), toUnixMillis(issued));
  EXPECT_EQ(toUnixMillis(claims->expires_at), toUnixMillis(issued + std::chrono::minutes(5)));
  // A token of the older form (no issue time) still verifies, as issued at the epoch: any logout
  // revokes it.
  const std::string payload = "v1~s1~alice~" + std::to_string(toUnixMillis(issued + std::chrono::minutes(5)));
  auto old = signer_.verify(payload + "~" + hmacSha256(std::string(32, 'k'), payload));
  ASSERT_TRUE(old.ok()) << old.error().toString();
  EXPECT_EQ(toUnixMillis(old->issued_at), 0);
}

}  // namespace
}  // namespace kasm::auth

#include "kasm/auth/password.hpp"

namespace kasm::auth {
namespace {

TEST(Password, ScryptHashesVerifyAndResistTampering) {
  const PasswordHashParams fast{10, 8, 1};  // Cheap parameters keep the test quick.
  auto h = hashPassword("correct horse", fast);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->rfind("$scrypt$ln=10,r=8,p=1$", 0), 0u);
  EXPECT_TRUE(verifyPassword("correct horse", *h));
  EXPECT_FALSE(verifyPassword("correct horsf", *h));
  EXPECT_NE(*hashPassword("correct horse", fast), *h);  // Salted.
  std::string tampered = *h;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verifyPassword("correct horse", tampered));
  for (auto junk : {"", "$scrypt$", "$scrypt$ln=99,r=8,p=1$AAAA$AAAA", "$sha256$abc", "plain"}) {
    EXPECT_FALSE(verifyPassword("x", junk)) << junk;
  }
  EXPECT_FALSE(hashPassword("").ok());
  EXPECT_FALSE(hashPassword(std::string(2000, 'a')).ok());
  auto default_cost = hashPassword("pw");
  ASSERT_TRUE(default_cost.ok());
  EXPECT_TRUE(verifyPassword("pw", *default_cost));
}

}  // namespace
}  // namespace kasm::auth
