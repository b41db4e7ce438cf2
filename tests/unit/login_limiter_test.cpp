// The failed-login limiter: limits by address first and by user name only per address, so that
// nobody can keep an administrator out by failing logins with their name, and its memory is bounded
// however many names and addresses an attacker sprays.

#include <gtest/gtest.h>

#include "kasm/auth/web_session.hpp"

namespace kasm::auth {
namespace {

TEST(LoginRateLimiter, AUserNameIsLimitedPerAddressNotEverywhere) {
  ManualClock clock;
  LoginRateLimiter limiter(clock, {.max_failures_per_address = 20, .max_failures_per_user_at_address = 3});
  for (int i = 0; i < 3; ++i) limiter.recordFailure("root", "203.0.113.9");
  EXPECT_FALSE(limiter.check("root", "203.0.113.9").ok());
  EXPECT_GT(limiter.retryAfter("root", "203.0.113.9"), 0);
  EXPECT_TRUE(limiter.check("root", "10.0.0.2").ok()) << "root's own address is not locked out";
  EXPECT_TRUE(limiter.check("alice", "203.0.113.9").ok());
  limiter.recordSuccess("root", "10.0.0.2");
  EXPECT_FALSE(limiter.check("root", "203.0.113.9").ok()) << "a success elsewhere clears nothing here";
  clock.advance(std::chrono::minutes(6));
  EXPECT_TRUE(limiter.check("root", "203.0.113.9").ok());
}

TEST(LoginRateLimiter, AnAddressIsLimitedAcrossNames) {
  ManualClock clock;
  LoginRateLimiter limiter(clock, {.max_failures_per_address = 5, .max_failures_per_user_at_address = 3});
  for (int i = 0; i < 5; ++i) limiter.recordFailure("user" + std::to_string(i), "198.51.100.1");
  EXPECT_FALSE(limiter.check("someone-new", "198.51.100.1").ok());
  EXPECT_TRUE(limiter.check("someone-new", "198.51.100.2").ok());
}

TEST(LoginRateLimiter, MemoryIsBoundedUnderASprayOfNamesAndAddresses) {
  ManualClock clock;
  LoginRateLimiter limiter(clock, {.max_failures_per_address = 2,
                                   .max_failures_per_user_at_address = 2,
                                   .window = std::chrono::minutes(5),
                                   .max_tracked = 100});
  for (int i = 0; i < 5000; ++i) {
    clock.advance(std::chrono::milliseconds(1));  // All within one window: nothing has ended.
    limiter.recordFailure("name" + std::to_string(i), "2001:db8::" + std::to_string(i));
  }
  EXPECT_LE(limiter.tracked(), 200u);
  // The newest attackers are still remembered.
  limiter.recordFailure("name4999", "2001:db8::4999");
  EXPECT_FALSE(limiter.check("name4999", "2001:db8::4999").ok());
}

}  // namespace
}  // namespace kasm::auth
