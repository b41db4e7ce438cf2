#include "kasm/api/session_access.hpp"

#include "kasm/share/sharing.hpp"
#include "kasm/store/repository.hpp"

namespace kasm::api {

Result<SessionAccess> authorizeSessionAccess(Manager& manager, spi::Store& store, const auth::AccessTokenSigner& signer,
                                             std::string_view token, const SessionId& session) {
  if (token.empty()) return unauthenticated("a session access token is required");
  KASM_ASSIGN_OR_RETURN(auth::AccessClaims claims, signer.verifyFor(token, session));
  auto s = manager.getSession(session);
  if (!s.ok()) return notFound("session " + session.str() + " does not exist");
  // The owner, or someone the owner shared the session with (the rules are Sharing's).
  auto role = share::Sharing::roleOf(*s, claims.user_id);
  if (!role.ok()) return permissionDenied("the token's user does not own this session and it was not shared with them");
  const bool view_only = *role == share::Role::kWatch;
  if (s->state != SessionState::kRunning) {
    return failedPrecondition("session " + session.str() + " is " + std::string(enumName(s->state)));
  }
  if (s->upstream.empty()) {
    // Its container is being started again (an engine restart): nowhere to send anyone yet.
    return unavailable("session " + session.str() + " is restarting; try again in a moment");
  }
  Repository repo(store);
  // The token alone is not enough: access ends at once when the user is disabled, locked or
  // deleted, or revokes their tokens (logout everywhere, a new password).
  auto user = repo.get<User>(claims.user_id.str());
  if (!user.ok()) {
    if (user.error().code() == ErrorCode::kNotFound) return permissionDenied("the session's user no longer exists");
    return user.error();
  }
  if (!user->value.canAct()) return permissionDenied("user '" + user->value.username + "' is disabled or locked");
  if (user->value.revokedAt(claims.issued_at))
    return unauthenticated("this access token was revoked; reopen the session");
  SessionProtocol protocol = SessionProtocol::kHttp;
  if (s->server_id) {
    // A fixed server's session speaks what the server does.
    auto server = repo.get<Server>(s->server_id->str());
    if (!server.ok()) {
      if (server.error().code() == ErrorCode::kNotFound) return failedPrecondition("the session's server was removed");
      return server.error();
    }
    protocol = server->value.protocol();
  } else {
    auto ws = repo.get<Workspace>(s->workspace_id.str());
    if (!ws.ok()) return ws.error();
    protocol = ws->value.protocol;
  }
  // The proxy can only keep a watcher's hands off a desktop (VNC, or RDP shown as VNC); web content
  // and terminals cannot be shown read-only.
  if (view_only && protocol != SessionProtocol::kVnc && protocol != SessionProtocol::kRdp) {
    return permissionDenied("this session can only be shared with people who may control it");
  }
  SessionAccess out{session, claims.user_id, s->upstream, protocol, view_only};
  out.server_id = s->server_id;
  out.agent_id = s->agent_id;
  out.owner = *role == share::Role::kOwner;
  out.username = user->value.username;
  out.valid_after = user->value.sessions_valid_after;
  return out;
}

}  // namespace kasm::api
