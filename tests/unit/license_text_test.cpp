// The licence text format: signing, strict armour, versions, activation, and a fuzz-style parser test.

#include <gtest/gtest.h>

#include <random>

#include "kasm/license/text.hpp"
#include "license/armor.hpp"

namespace kasm::license {
namespace {

constexpr std::string_view kInstallation = "0123456789abcdef0123456789abcdef";

TimePoint at(std::int64_t unix_seconds) {
  return fromUnixMillis(unix_seconds * 1000);
}

class LicenseTextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    key_ = std::make_unique<SigningKey>(SigningKey::generate().value());
    other_ = std::make_unique<SigningKey>(SigningKey::generate().value());
  }
  static void TearDownTestSuite() {
    key_.reset();
    other_.reset();
  }

  static LicenseDocument document() {
    LicenseDocument d;
    d.id = LicenseId("lic-1");
    d.activation_id = "act-1";
    d.customer = "ACME Corp.";
    d.installation_id = std::string(kInstallation);
    d.type = LicenseType::kConcurrentSessions;
    d.limit = 25;
    d.features = {"staging", "sharing"};
    d.issued_at = at(1'700'000'000);
    d.not_before = at(1'700'000'000);
    d.expires_at = at(1'731'536'000);
    d.renewal_ttl = std::chrono::hours(24 * 30);
    return d;
  }

  std::vector<VerifyingKey> keys() const { return {key_->verifyingKey()}; }

  // Armours an arbitrary payload with a good signature, to reach the payload parser.
  static std::string signRaw(std::string_view payload) {
    auto sig = key_->sign(std::string(kLicenseLabel) + "\n" + std::string(payload));
    return detail::armor(kLicenseLabel, std::string(payload) + *sig);
  }

  static std::unique_ptr<SigningKey> key_;
  static std::unique_ptr<SigningKey> other_;
};
std::unique_ptr<SigningKey> LicenseTextTest::key_;
std::unique_ptr<SigningKey> LicenseTextTest::other_;

TEST_F(LicenseTextTest, RoundTripsAndIsArmoured) {
  auto text = writeLicense(document(), *key_);
  ASSERT_TRUE(text.ok()) << text.error().toString();
  EXPECT_TRUE(text->starts_with("-----BEGIN KASM LICENSE-----\n"));
  EXPECT_TRUE(text->ends_with("-----END KASM LICENSE-----\n"));
  auto back = readLicense(*text, keys());
  ASSERT_TRUE(back.ok()) << back.error().toString();
  EXPECT_EQ(*back, document());
  EXPECT_EQ(back->validUntil(), at(1'700'000'000) + std::chrono::hours(24 * 30));  // The renewal TTL ends it first.
}

TEST_F(LicenseTextTest, KeysRoundTripThroughPem) {
  auto pub = VerifyingKey::fromPem(key_->verifyingKey().toPem());
  ASSERT_TRUE(pub.ok()) << pub.error().toString();
  EXPECT_EQ(*pub, key_->verifyingKey());
  auto priv = SigningKey::fromPem(key_->toPem());
  ASSERT_TRUE(priv.ok()) << priv.error().toString();
  EXPECT_EQ(priv->verifyingKey(), key_->verifyingKey());
  EXPECT_FALSE(VerifyingKey::fromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").ok());
  EXPECT_FALSE(SigningKey::fromPem(key_->verifyingKey().toPem()).ok());
  EXPECT_EQ(key_->verifyingKey().fingerprint().size(), 16u);
}

// Every single-bit change of every byte, the final line break included, is refused.
TEST_F(LicenseTextTest, EveryByteFlippedIsRejected) {
  const std::string text = writeLicense(document(), *key_).value();
  ASSERT_TRUE(readLicense(text, keys()).ok());
  int parse_errors = 0, signature_errors = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string changed = text;
      changed[i] = static_cast<char>(changed[i] ^ (1 << bit));
      auto r = readLicense(changed, keys());
      ASSERT_FALSE(r.ok()) << "byte " << i << " bit " << bit << " was accepted";
      (r.error().code() == ErrorCode::kUnauthenticated ? signature_errors : parse_errors)++;
    }
  }
  // Both defences take part: damaged armour fails to parse, well-formed changes fail the signature.
  EXPECT_GT(parse_errors, 0);
  EXPECT_GT(signature_errors, 0);
}

TEST_F(LicenseTextTest, PasteWhitespaceAndCrLfAreTolerated) {
  const std::string text = writeLicense(document(), *key_).value();
  std::string crlf;
  for (char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  EXPECT_TRUE(readLicense(crlf, keys()).ok());
  EXPECT_TRUE(readLicense("\n\n  \t" + text + "\n\n   ", keys()).ok());
  std::string no_final_newline = text;
  no_final_newline.pop_back();
  EXPECT_TRUE(readLicense(no_final_newline, keys()).ok());
  // Inside the armour nothing is tolerated.
  std::string indented = text;
  indented.insert(text.find('\n') + 1, " ");
  EXPECT_FALSE(readLicense(indented, keys()).ok());
}

TEST_F(LicenseTextTest, AnotherVendorsKeyIsRejected) {
  const std::string text = writeLicense(document(), *other_).value();
  auto r = readLicense(text, keys());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(r.error().message().find("signature"), std::string::npos) << r.error().message();
  // Several configured keys (a rotation): any one may verify.
  std::vector<VerifyingKey> both{key_->verifyingKey(), other_->verifyingKey()};
  EXPECT_TRUE(readLicense(text, both).ok());
  EXPECT_EQ(readLicense(text, {}).error().code(), ErrorCode::kUnauthenticated);
}

TEST_F(LicenseTextTest, UnknownVersionIsRefusedWithAClearMessage) {
  LicenseDocument d = document();
  d.format_version = 2;
  auto r = readLicense(writeLicense(d, *key_).value(), keys());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message().find("format version 2"), std::string::npos) << r.error().message();
}

TEST_F(LicenseTextTest, MalformedArmourGetsClearMessages) {
  const std::string text = writeLicense(document(), *key_).value();
  auto message = [&](std::string_view t) {
    auto r = readLicense(t, keys());
    EXPECT_FALSE(r.ok()) << t;
    return r.ok() ? std::string() : r.error().message();
  };
  EXPECT_NE(message("").find("empty"), std::string::npos);
  EXPECT_NE(message("   \n ").find("empty"), std::string::npos);
  EXPECT_NE(message("hello, this is my license").find("must start with the line -----BEGIN KASM LICENSE-----"),
            std::string::npos);
  EXPECT_NE(message(text.substr(0, text.size() / 2)).find("cut off"), std::string::npos);
  EXPECT_NE(message("-----BEGIN KASM LICENSE-----\n-----END KASM LICENSE-----\n").find("nothing"), std::string::npos);
  auto activation_key = [&] {
    ActivationKey a;
    a.id = "act-1";
    a.customer = "ACME";
    a.limit = 5;
    a.not_before = at(1'700'000'000);
    a.expires_at = at(1'800'000'000);
    return writeActivationKey(a, *key_).value();
  }();
  EXPECT_NE(message(activation_key).find("'KASM ACTIVATION KEY' block, not a license"), std::string::npos);
  // Every truncation fails, whatever the cut.
  for (std::size_t n = 0; n + 1 < text.size(); ++n) {
    EXPECT_FALSE(readLicense(text.substr(0, n), keys()).ok()) << "a prefix of " << n << " bytes was accepted";
  }
}

TEST_F(LicenseTextTest, PayloadMustBeCanonical) {
  auto good = readLicense(writeLicense(document(), *key_).value(), keys());
  ASSERT_TRUE(good.ok());
  const std::string payload =
      std::string("kasm-license-version: 1\nid: lic-1\nactivation-id: act-1\ncustomer: ACME\n") +
      "installation-id: " + std::string(kInstallation) +
      "\ntype: concurrent_sessions\nlimit: 5\nfeatures: \nissued-at: 2023-11-14T22:13:20Z\n"
      "not-before: 2023-11-14T22:13:20Z\nexpires-at: 2024-11-14T22:13:20Z\n"
      "renewal-ttl-seconds: 0\n";
  ASSERT_TRUE(readLicense(signRaw(payload), keys()).ok()) << readLicense(signRaw(payload), keys()).error().message();
  auto refused = [&](std::string from, std::string to) {
    std::string p = payload;
    p.replace(p.find(from), from.size(), to);
    auto r = readLicense(signRaw(p), keys());
    EXPECT_FALSE(r.ok()) << "accepted: " << to;
    return r.ok() ? std::string() : r.error().message();
  };
  EXPECT_NE(refused("limit: 5", "limit: 05").find("canonical"), std::string::npos);
  EXPECT_NE(refused("limit: 5", "limit: 0").find("limit"), std::string::npos);
  EXPECT_NE(refused("features: ", "features: b,a").find("canonical"), std::string::npos);
  EXPECT_NE(refused("type: concurrent_sessions", "type: seats").find("type"), std::string::npos);
  EXPECT_NE(refused("expires-at: 2024-11-14T22:13:20Z", "expires-at: 2024-02-30T22:13:20Z").find("expires-at"),
            std::string::npos);
  EXPECT_NE(refused("customer: ACME\n", "").find("customer"), std::string::npos);
  EXPECT_NE(refused("renewal-ttl-seconds: 0\n", "renewal-ttl-seconds: 0\nextra: 1\n").find("unexpected"),
            std::string::npos);
}

TEST_F(LicenseTextTest, ActivationBindsAKeyToAnInstallation) {
  ActivationKey a;
  a.id = "purchase-42";
  a.customer = "ACME";
  a.type = LicenseType::kNamedUsers;
  a.limit = 10;
  a.features = {"staging"};
  a.issued_at = at(1'700'000'000);
  a.not_before = at(1'700'000'000);
  a.expires_at = at(1'731'536'000);
  const std::string text = writeActivationKey(a, *key_).value();
  auto back = readActivationKey(text, keys());
  ASSERT_TRUE(back.ok()) << back.error().toString();
  EXPECT_EQ(*back, a);
  EXPECT_FALSE(readActivationKey(writeLicense(document(), *key_).value(), keys()).ok());

  auto doc = activate(*back, kInstallation, at(1'710'000'000) + std::chrono::milliseconds(700));
  ASSERT_TRUE(doc.ok()) << doc.error().toString();
  EXPECT_EQ(doc->installation_id, kInstallation);
  EXPECT_EQ(doc->issued_at, at(1'710'000'000));  // Whole seconds.
  EXPECT_EQ(doc->id, licenseIdFor("purchase-42", kInstallation));
  EXPECT_EQ(doc->limit, 10);
  EXPECT_EQ(doc->type, LicenseType::kNamedUsers);
  EXPECT_TRUE(readLicense(writeLicense(*doc, *key_).value(), keys()).ok());
  // Re-activation renews the same licence id; another installation gets another.
  EXPECT_EQ(activate(*back, kInstallation, at(1'720'000'000))->id, doc->id);
  EXPECT_NE(activate(*back, "another-installation", at(1'720'000'000))->id, doc->id);

  auto late = activate(*back, kInstallation, at(1'731'536'000));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(activate(*back, "not an id!", at(1'710'000'000)).error().code(), ErrorCode::kInvalidArgument);
}

// Random damage to the armour and to signed payloads: never a crash, and nothing but the original
// licence is ever accepted. Deterministic seed, bounded count.
TEST_F(LicenseTextTest, FuzzedInputNeverCrashesOrPasses) {
  const std::string text = writeLicense(document(), *key_).value();
  const LicenseDocument original = document();
  std::mt19937_64 rng(20240607);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % std::max<std::size_t>(n, 1)); };
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-\n\r \t:,";
  auto mutate = [&](std::string s) {
    const int rounds = 1 + static_cast<int>(pick(4));
    for (int i = 0; i < rounds; ++i) {
      switch (pick(7)) {
        case 0:
          if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1 << pick(8));
          break;
        case 1: s.insert(pick(s.size() + 1), 1, alphabet[pick(alphabet.size())]); break;
        case 2:
          if (!s.empty()) s.erase(pick(s.size()), 1 + pick(8));
          break;
        case 3: s.resize(pick(s.size() + 1)); break;
        case 4: s.insert(pick(s.size() + 1), 1, static_cast<char>(pick(256))); break;
        case 5: {  // Duplicate a slice.
          const auto from = pick(s.size() + 1);
          s.insert(pick(s.size() + 1), s.substr(from, pick(80)));
          break;
        }
        default:
          if (!s.empty()) s[pick(s.size())] = alphabet[pick(alphabet.size())];
          break;
      }
    }
    return s;
  };
  int accepted = 0;
  for (int i = 0; i < 4000; ++i) {
    auto r = readLicense(mutate(text), keys());
    if (r.ok()) {
      EXPECT_EQ(*r, original);  // Only paste whitespace can have changed.
      ++accepted;
    }
  }
  // The payload parser behind a good signature: mutated payloads, properly signed.
  const std::string payload = detail::dearmor(text, kLicenseLabel, "license").value();
  const std::string body = payload.substr(0, payload.size() - 64);
  for (int i = 0; i < 3000; ++i) {
    auto r = readLicense(signRaw(mutate(body)), keys());
    if (r.ok()) {
      EXPECT_TRUE(r->validate().ok());
    }
    auto a = readActivationKey(mutate(text), keys());
    EXPECT_FALSE(a.ok());
  }
  EXPECT_LT(accepted, 4000);
}

TEST(LicenseBase64, IsStrict) {
  EXPECT_EQ(detail::base64Decode("QQ==").value(), "A");
  EXPECT_FALSE(detail::base64Decode("QR==").ok());  // Non-zero unused bits.
  EXPECT_FALSE(detail::base64Decode("QQ=").ok());
  EXPECT_FALSE(detail::base64Decode("Q=Q=").ok());
  EXPECT_FALSE(detail::base64Decode("QQ==QQ==").ok());
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    EXPECT_EQ(detail::base64Decode(detail::base64Encode(s)).value(), s);
  }
}

TEST(LicenseTime, FormatsAndParsesUtc) {
  EXPECT_EQ(detail::formatTime(fromUnixMillis(0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(detail::formatTime(at(1'709'210'096)), "2024-02-29T12:34:56Z");
  EXPECT_EQ(detail::parseTime("2024-02-29T12:34:56Z", "t").value(), at(1'709'210'096));
  EXPECT_FALSE(detail::parseTime("2023-02-29T12:34:56Z", "t").ok());
  EXPECT_FALSE(detail::parseTime("2024-02-29 12:34:56Z", "t").ok());
  EXPECT_FALSE(detail::parseTime("2024-02-29T24:00:00Z", "t").ok());
}

}  // namespace
}  // namespace kasm::license
