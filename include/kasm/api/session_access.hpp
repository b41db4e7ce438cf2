#pragma once

// Who may open a session's desktop through the proxy, decided from the store: the same rules for
// every server that fronts sessions (kasm-server's proxy authorizer is a thin adapter over this).

#include <optional>
#include <string>
#include <string_view>

#include "kasm/auth/access_token.hpp"
#include "kasm/manager/manager.hpp"
#include "kasm/spi/store.hpp"

namespace kasm::api {

// What the proxy needs to forward a request, and what it may remember for a moment.
struct SessionAccess {
  SessionId session;
  UserId user;
  std::string upstream;
  SessionProtocol protocol = SessionProtocol::kHttp;
  // What `user` may do: the owner and joiners given control (rw) have full control; other joiners
  // only watch (r), which the proxy enforces.
  bool view_only = false;
  bool owner = false;    // `user` owns the session.
  std::string username;  // `user`'s, for the chat.
  // The user's sessions_valid_after when this was decided: tokens issued before it are revoked,
  // so a remembered grant still refuses them.
  std::optional<TimePoint> valid_after;
  // Set for a session on a fixed server: the proxy asks Manager::serverConnection how to reach it
  // (RDP and SSH through a desktop gateway, VNC with the server's password).
  std::optional<ServerId> server_id;
  // The agent the session runs on (none for a fixed server's): its reverse tunnel, when it has one,
  // is how the proxy reaches the session.
  std::optional<AgentId> agent_id;

  // True when `claims` (a token already verified for this session) may still use this grant.
  bool admits(const auth::AccessClaims& claims) const {
    return claims.user_id == user && !(valid_after && claims.issued_at < *valid_after);
  }
};

// Decides whether `token` opens `session` now. The token must verify for the session
// (Unauthenticated / PermissionDenied from the signer); the session must exist (NotFound), belong to
// the token's user or have been shared with them (PermissionDenied) and run (FailedPrecondition); the user must exist
// and be neither disabled nor locked (PermissionDenied), and must not have revoked the token by logging out everywhere
// or changing their password since it was issued (Unauthenticated).
Result<SessionAccess> authorizeSessionAccess(Manager& manager, spi::Store& store, const auth::AccessTokenSigner& signer,
                                             std::string_view token, const SessionId& session);

}  // namespace kasm::api
