#pragma once

#include <string>
#include <string_view>

#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"

namespace kasm::auth {

// What a session access token grants: one user, one session, until a time.
struct AccessClaims {
  SessionId session_id;
  UserId user_id;
  // When it was issued, so that logging out everywhere (the user's sessions_valid_after) revokes
  // it. Tokens of the older v1 form carry none and count as issued at the epoch.
  TimePoint issued_at;
  TimePoint expires_at;
};

// Issues and verifies short-lived session access tokens:
// "v2~<session>~<user>~<issued ms>~<expiry ms>~<mac>" where mac = base64url(HMAC-SHA256(key,
// everything before it)). Tokens are bound to one session and one user and expire; the proxy checks
// one on every request and WebSocket upgrade.
//
// Thread-safe (immutable after construction). The key must be at least 32 bytes; keep it secret
// and share it between the servers of one installation.
class AccessTokenSigner {
 public:
  // InvalidArgument for a key shorter than 32 bytes.
  static Result<AccessTokenSigner> create(std::string key, const Clock& clock);

  std::string issue(const SessionId& session, const UserId& user, Duration ttl) const;
  // Unauthenticated for a malformed, forged or expired token (the message says which).
  Result<AccessClaims> verify(std::string_view token) const;
  // verify() plus a check that the token is for `session`: PermissionDenied otherwise.
  Result<AccessClaims> verifyFor(std::string_view token, const SessionId& session) const;

 private:
  AccessTokenSigner(std::string key, const Clock& clock) : key_(std::move(key)), clock_(&clock) {}
  std::string mac(std::string_view payload) const;

  std::string key_;
  const Clock* clock_;
};

}  // namespace kasm::auth
