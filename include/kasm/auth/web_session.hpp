#pragma once

// Browser logins: a signed, expiring session cookie, a CSRF token bound to it, and a limiter for
// failed login attempts. Stateless on the server apart from the user's `sessions_valid_after`
// (logout everywhere), so any number of servers sharing a store accept each other's cookies.

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"

namespace kasm::auth {

struct WebSessionClaims {
  UserId user_id;
  TimePoint issued_at;
  TimePoint expires_at;
};

// Cookie values "w1~<user>~<issued ms>~<expiry ms>~<nonce>~<hmac>". The key must be at least 32
// bytes and is never the key of another token kind (derive one per purpose).
class WebSessionSigner {
 public:
  static Result<WebSessionSigner> create(std::string key, const Clock& clock);

  // `nonce` makes two logins in the same millisecond distinct (any random text without '~').
  std::string issue(const UserId& user, Duration ttl, std::string_view nonce) const;
  // Unauthenticated for a malformed, forged or expired value.
  Result<WebSessionClaims> verify(std::string_view cookie) const;
  // The CSRF token of a session: an HMAC of the cookie value, so it needs no storage and a page
  // that cannot read the (HttpOnly) cookie learns it only from the login or /auth/me answer.
  std::string csrfToken(std::string_view cookie) const;
  bool checkCsrf(std::string_view cookie, std::string_view given) const;

 private:
  WebSessionSigner(std::string key, const Clock& clock) : key_(std::move(key)), clock_(&clock) {}
  std::string key_;
  const Clock* clock_;
};

// Counts failed logins per client address, and per user name at each address, in a sliding window;
// past a limit, further attempts are refused (ResourceExhausted, with the wait) without checking the
// password, so guessing costs time and the scrypt work cannot be used to exhaust the server.
//
// The address comes first and a user name is only ever limited at one address: a global per-name
// limit would let anyone keep an administrator out by failing a few logins with their name. Memory
// is bounded (max_tracked windows per kind; the oldest are forgotten first). Thread-safe.
class LoginRateLimiter {
 public:
  struct Options {
    int max_failures_per_address = 20;
    int max_failures_per_user_at_address = 5;
    Duration window = std::chrono::minutes(5);
    std::size_t max_tracked = 10000;
  };
  explicit LoginRateLimiter(const Clock& clock) : LoginRateLimiter(clock, Options{}) {}
  LoginRateLimiter(const Clock& clock, Options options) : clock_(&clock), options_(options) {}

  // OK, or ResourceExhausted saying how long to wait (retryAfter() gives it in seconds).
  Result<void> check(std::string_view username, std::string_view address);
  void recordFailure(std::string_view username, std::string_view address);
  // Forgets the failures of `username` at `address` (the address's own count stays).
  void recordSuccess(std::string_view username, std::string_view address);
  // Seconds until `username` may try again from `address`; 0 when not limited.
  std::int64_t retryAfter(std::string_view username, std::string_view address);
  // Windows held in memory (addresses plus user-at-address pairs); for tests and metrics.
  std::size_t tracked();

 private:
  struct Window {
    int failures = 0;
    TimePoint started;
  };
  using Windows = std::map<std::string, Window, std::less<>>;
  std::int64_t waitLocked(const Window* w, int limit, TimePoint now) const;
  void makeRoom(Windows& m, TimePoint now);
  static std::string pairKey(std::string_view username, std::string_view address);

  const Clock* clock_;
  Options options_;
  std::mutex mutex_;
  Windows by_address_;
  Windows by_user_at_address_;
};

}  // namespace kasm::auth
