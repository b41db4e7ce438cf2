#include <gtest/gtest.h>

#include <array>
#include <set>

#include "kasm/core/secure_random.hpp"
#include "kasm/kasm.hpp"

namespace kasm {
namespace {

Result<int> half(int x) {
  if (x % 2) return invalidArgument("x must be even, got " + std::to_string(x));
  return x / 2;
}

Result<int> quarter(int x) {
  KASM_ASSIGN_OR_RETURN(int h, half(x));
  return half(h);
}

TEST(Result, CarriesValueOrError) {
  auto ok = half(4);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 2);
  auto bad = half(3);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().toString(), "invalid_argument: x must be even, got 3");
  EXPECT_EQ(bad.valueOr(-1), -1);
}

TEST(Result, MacrosPropagateTheFirstError) {
  EXPECT_EQ(*quarter(8), 2);
  auto r = quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("got 3"), std::string::npos);
}

TEST(Error, ContextPrefixesMessageAndKeepsCode) {
  Error e = notFound("agent a1").withContext("placing session s1");
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_EQ(e.message(), "placing session s1: agent a1");
  EXPECT_EQ(errorCodeName(ErrorCode::kResourceExhausted), "resource_exhausted");
}

TEST(Id, GeneratedIdsAreHexUniqueAndValid) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = SessionId::generate();
    EXPECT_EQ(id.str().size(), 32u);
    EXPECT_TRUE(isValidIdString(id.str()));
    seen.insert(id.str());
  }
  EXPECT_EQ(seen.size(), 1000u);
}

// Ids act as capabilities (a session id is half of a desktop URL), so they come from the OS CSPRNG
// and no seeded generator can be handed to the functions that make them.
template <class R>
concept CanMakeIdFrom = requires(R& r) {
  SessionId::generate(r);
}
|| requires(R& r) {
  generateIdString(r);
};
static_assert(!CanMakeIdFrom<SeededRandom>, "ids must not be made from a seeded generator");

TEST(SecureRandom, BitsAreBalancedAndNeverRepeat) {
  // 4,096 draws of 64 bits: each bit position is set close to half the time (a stuck or
  // low-entropy source fails this), and no value repeats.
  std::array<int, 64> ones{};
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 4096; ++i) {
    const std::uint64_t v = secureRandomU64();
    seen.insert(v);
    for (int b = 0; b < 64; ++b) ones[b] += static_cast<int>((v >> b) & 1);
  }
  EXPECT_EQ(seen.size(), 4096u);
  for (int b = 0; b < 64; ++b) {
    EXPECT_GT(ones[b], 1848) << "bit " << b;  // 2048 +- 200, about 6 standard deviations.
    EXPECT_LT(ones[b], 2248) << "bit " << b;
  }
  std::array<std::byte, 100000> big{};
  secureRandomBytes(big);  // Larger than one getrandom() chunk of the urandom pool.
  int zero = 0;
  for (auto b : big) zero += b == std::byte{0};
  EXPECT_LT(zero, 600);  // About 390 expected.
}

TEST(Id, ParseRejectsBadIdsNamingTheField) {
  EXPECT_TRUE(AgentId::parse("agent-1.a_b").ok());
  for (std::string_view bad :
       std::initializer_list<std::string_view>{"", "has space", "semi;colon", "../etc", std::string_view("x\0y", 3)}) {
    auto r = AgentId::parse(bad, "agent_id");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.error().message().rfind("agent_id", 0), 0u);
  }
  EXPECT_FALSE(AgentId::parse(std::string(65, 'a')).ok());
}

TEST(ManualClock, MovesOnlyWhenTold) {
  ManualClock clock(fromUnixMillis(1000));
  EXPECT_EQ(toUnixMillis(clock.now()), 1000);
  clock.advance(std::chrono::seconds(2));
  EXPECT_EQ(toUnixMillis(clock.now()), 3000);
  clock.set(fromUnixMillis(5));
  EXPECT_EQ(toUnixMillis(clock.now()), 5);
}

TEST(Random, UniformStaysInBounds) {
  SeededRandom r(1);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    auto v = r.uniform(7);
    ASSERT_LT(v, 7u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 7u);
}

TEST(Resources, ArithmeticAndFit) {
  const auto agent = Resources::fromCores(8, 16 * Resources::kGiB, 1);
  const auto small = Resources::fromCores(0.5, 512 * Resources::kMiB);
  EXPECT_EQ(small.millicores, 500);
  EXPECT_TRUE(agent.fits(small));
  EXPECT_FALSE(small.fits(agent));
  EXPECT_EQ((agent - small * 4).millicores, 6000);
  EXPECT_EQ((agent - small * 4).memory_bytes, 14 * Resources::kGiB);
  EXPECT_EQ(small + small, small * 2);
  EXPECT_FALSE(agent.fits(Resources{0, 0, 2}));  // GPUs count too.
  EXPECT_EQ((small - agent).clampedAtZero(), Resources{});
  EXPECT_TRUE((small - agent).anyNegative());
  EXPECT_EQ(agent.toString(), "8 cores, 16 GiB, 1 GPU");
}

TEST(Resources, ValidateNamesTheBadComponent) {
  auto r = Resources{-1, 0, 0}.validate("workspace.resources");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("workspace.resources.millicores"), std::string::npos);
  EXPECT_FALSE((Resources{0, std::int64_t{1} << 55, 0}.validate("r").ok()));
  EXPECT_FALSE((Resources{0, 0, 5000}.validate("r").ok()));
  EXPECT_TRUE((Resources{1000, 1024, 1}.validate("r").ok()));
}

TEST(Resources, ParseMemorySizes) {
  EXPECT_EQ(*parseMemorySize("512MiB"), 512 * Resources::kMiB);
  EXPECT_EQ(*parseMemorySize("2G"), 2 * Resources::kGiB);
  EXPECT_EQ(*parseMemorySize("1.5GiB"), 3 * Resources::kGiB / 2);
  EXPECT_EQ(*parseMemorySize("1024"), 1024);
  for (auto bad : {"", "GiB", "-5M", "5 parsecs", "1e99T"}) {
    EXPECT_FALSE(parseMemorySize(bad).ok()) << bad;
  }
}

TEST(Version, MatchesTheHeaderConstants) {
  const std::string expected =
      std::to_string(kVersionMajor) + "." + std::to_string(kVersionMinor) + "." + std::to_string(kVersionPatch);
  EXPECT_EQ(version(), expected);
}

}  // namespace
}  // namespace kasm

namespace kasm {
namespace {
// Error messages quote client input; every API puts them in JSON as they are (found by the
// rest_api fuzz target: a path with a byte that is not UTF-8 made an invalid JSON answer).
TEST(ErrorMessages, AreAlwaysValidUtf8) {
  EXPECT_EQ(notFound("no such route: /a\x8e/b").message(), "no such route: /a\xEF\xBF\xBD/b");
  EXPECT_EQ(notFound("caf\xC3\xA9 \xF0\x9F\x99\x82").message(), "caf\xC3\xA9 \xF0\x9F\x99\x82") << "valid text is kept";
  EXPECT_EQ(validUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD") << "an overlong encoding is invalid";
  EXPECT_EQ(validUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") << "a surrogate is invalid";
  EXPECT_EQ(validUtf8("end\xE2\x82"), "end\xEF\xBF\xBD\xEF\xBF\xBD") << "a cut sequence is invalid";
}
}  // namespace
}  // namespace kasm
