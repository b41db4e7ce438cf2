#include "kasm/model/session.hpp"

#include <algorithm>

#include "model/validation.hpp"

namespace kasm {

bool isAllowedTransition(SessionState from, SessionState to) noexcept {
  using S = SessionState;
  switch (from) {
    case S::kRequested: return to == S::kProvisioning || to == S::kFailed || to == S::kDestroyed;
    case S::kProvisioning: return to == S::kRunning || to == S::kFailed || to == S::kStopping;
    case S::kRunning: return to == S::kPaused || to == S::kStopping || to == S::kFailed;
    case S::kPaused: return to == S::kRunning || to == S::kStopping || to == S::kFailed;
    case S::kStopping: return to == S::kStopped || to == S::kDestroyed || to == S::kFailed;
    case S::kStopped: return to == S::kProvisioning || to == S::kStopping || to == S::kDestroyed;
    case S::kFailed: return to == S::kStopping || to == S::kDestroyed;
    case S::kDestroyed: return false;
  }
  return false;
}

bool holdsReservation(SessionState state) noexcept {
  using S = SessionState;
  // A stopped container keeps its disk but not its CPU and memory; failed sessions release at once.
  return state == S::kProvisioning || state == S::kRunning || state == S::kPaused || state == S::kStopping;
}

Result<void> Session::transitionTo(SessionState next, std::string reason, TimePoint now) {
  if (!isAllowedTransition(state, next)) {
    return failedPrecondition("session " + id.str() + " cannot go from " + std::string(enumName(state)) + " to " +
                              std::string(enumName(next)));
  }
  state = next;
  state_reason = std::move(reason);
  state_changed_at = now;
  if (next == SessionState::kRunning && !started_at) started_at = now;
  return {};
}

Result<void> Session::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "session.id"));
  KASM_RETURN_IF_ERROR(detail::requireId(workspace_id.str(), "session.workspace_id"));
  KASM_RETURN_IF_ERROR(detail::requireOptionalId(user_id.str(), "session.user_id"));
  if (user_id.empty() && !staging_config_id) {
    return invalidArgument("session.user_id is required unless the session is staged");
  }
  if (zone_id) KASM_RETURN_IF_ERROR(detail::requireId(zone_id->str(), "session.zone_id"));
  if (agent_id) KASM_RETURN_IF_ERROR(detail::requireId(agent_id->str(), "session.agent_id"));
  if (server_id) KASM_RETURN_IF_ERROR(detail::requireId(server_id->str(), "session.server_id"));
  if (agent_id && server_id) return invalidArgument("session.agent_id and session.server_id exclude each other");
  KASM_RETURN_IF_ERROR(resources.validate("session.resources"));
  if (!launch_key.empty() && (launch_key.size() != 64 || !std::all_of(launch_key.begin(), launch_key.end(), [](char c) {
                                return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                              }))) {
    return invalidArgument("session.launch_key must be empty or 64 lowercase hex digits (a SHA-256)");
  }
  if (progress < 0 || progress > 100) return invalidArgument("session.progress must be 0-100");
  KASM_RETURN_IF_ERROR(detail::requireText(state_reason, "session.state_reason", 4096));
  KASM_RETURN_IF_ERROR(detail::requireText(operational_message, "session.operational_message", 4096));
  if (share) {
    KASM_RETURN_IF_ERROR(detail::requireText(share->sealed_id, "session.share.sealed_id", 256));
    KASM_RETURN_IF_ERROR(detail::requireId(share->lookup, "session.share.lookup"));
  }
  if (permissions.size() > kMaxSessionPermissions) {
    return invalidArgument("session.permissions: at most " + std::to_string(kMaxSessionPermissions) +
                           " people per session");
  }
  for (const auto& p : permissions) {
    KASM_RETURN_IF_ERROR(detail::requireId(p.user_id.str(), "session.permissions.user_id"));
    KASM_RETURN_IF_ERROR(detail::requireText(p.username, "session.permissions.username", 256));
  }
  // A session that holds a place holds it on an agent or on a fixed server.
  if (holdsReservation(state) && state != SessionState::kStopping && !agent_id && !server_id) {
    return invalidArgument("session.agent_id is required in state " + std::string(enumName(state)));
  }
  return {};
}

Result<void> ShareIndex::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(lookup, "share_index.lookup"));
  return detail::requireId(session_id.str(), "share_index.session_id");
}

}  // namespace kasm
