#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/enum_names.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/resources.hpp"
#include "kasm/core/result.hpp"

namespace kasm {

// Life of a session. Allowed transitions (anything else is rejected by Session::transitionTo):
//
//   requested    -> provisioning | failed | destroyed
//   provisioning -> running | failed | stopping
//   running      -> paused | stopping | failed
//   paused       -> running | stopping | failed
//   stopping     -> stopped | destroyed | failed
//   stopped      -> provisioning | stopping | destroyed
//   failed       -> stopping | destroyed
//   destroyed    -> (terminal)
//
// `stopping` is teardown in progress; Session::teardown says whether it ends in `stopped`
// (container kept, can be resumed) or `destroyed` (container removed).
enum class SessionState {
  kRequested,
  kProvisioning,
  kRunning,
  kPaused,
  kStopping,
  kStopped,
  kDestroyed,
  kFailed,
};

// What an expiring or idle session turns into.
enum class ExpirationAction { kDelete, kStop, kPause };

// What someone the owner shared a session with may do on its desktop (Kasm's "r" and "rw").
enum class ShareAccess { kRead, kReadWrite };

}  // namespace kasm

KASM_ENUM_NAMES(kasm::SessionState, 8, {kasm::SessionState::kRequested, "requested"},
                {kasm::SessionState::kProvisioning, "provisioning"}, {kasm::SessionState::kRunning, "running"},
                {kasm::SessionState::kPaused, "paused"}, {kasm::SessionState::kStopping, "stopping"},
                {kasm::SessionState::kStopped, "stopped"}, {kasm::SessionState::kDestroyed, "destroyed"},
                {kasm::SessionState::kFailed, "failed"});
KASM_ENUM_NAMES(kasm::ExpirationAction, 3, {kasm::ExpirationAction::kDelete, "delete"},
                {kasm::ExpirationAction::kStop, "stop"}, {kasm::ExpirationAction::kPause, "pause"});
KASM_ENUM_NAMES(kasm::ShareAccess, 2, {kasm::ShareAccess::kRead, "r"}, {kasm::ShareAccess::kReadWrite, "rw"});

namespace kasm {

// True when `from -> to` is an edge of the state machine above.
bool isAllowedTransition(SessionState from, SessionState to) noexcept;
// True for states that hold an agent reservation (the container exists or is being made).
bool holdsReservation(SessionState state) noexcept;
// True for states from which nothing further happens.
constexpr bool isTerminal(SessionState state) noexcept {
  return state == SessionState::kDestroyed;
}

// A session's share link. The share id itself (128 bits from the OS CSPRNG) is never stored in
// clear: `sealed_id` is it encrypted under the installation's key (so the owner can be shown it
// again) and `lookup` its SHA-256, the key of the share index (ShareIndex) through which joiners
// find the session.
struct SessionShare {
  std::string sealed_id;
  std::string lookup;
  UserId created_by;
  TimePoint created_at;
  std::optional<TimePoint> expires_at;  // None: until revoked or the session ends.

  friend bool operator==(const SessionShare&, const SessionShare&) = default;
};

// How many people a session may be shared with at once.
inline constexpr std::size_t kMaxSessionPermissions = 100;

// Someone besides the owner who may open the session's desktop, and how.
struct SessionPermission {
  UserId user_id;
  std::string username;  // When granted, for display.
  ShareAccess access = ShareAccess::kRead;
  TimePoint granted_at;

  friend bool operator==(const SessionPermission&, const SessionPermission&) = default;
};

// The share index: a share id's hash -> its session (the row's id is SessionShare::lookup).
struct ShareIndex {
  std::string lookup;
  SessionId session_id;
  TimePoint created_at;

  Result<void> validate() const;
  friend bool operator==(const ShareIndex&, const ShareIndex&) = default;
};

// A user's running (or starting, or stopped) instance of a workspace.
struct Session {
  SessionId id;
  UserId user_id;  // Empty while the session sits in a staging pool.
  WorkspaceId workspace_id;
  std::optional<ZoneId> zone_id;
  std::optional<AgentId> agent_id;
  std::optional<ServerId> server_id;                 // A session on a fixed server (no agent, no container).
  std::optional<StagingConfigId> staging_config_id;  // Set while the session is staged, unclaimed.

  SessionState state = SessionState::kRequested;
  std::string state_reason;                               // Why the last transition happened, e.g. "agent a1 is dead".
  ExpirationAction teardown = ExpirationAction::kDelete;  // Where `stopping` leads.
  std::string operational_message;                        // Progress text while starting ("pulling image 40%").
  std::int32_t progress = 0;                              // 0..100 while starting.

  Resources resources;  // Reserved on the agent while holdsReservation(state).
  std::string container_id;
  std::string container_name;
  std::string upstream;  // "host:port" the proxy forwards to.
  // A fixed server session whose server asks for credentials: what the user gave at launch,
  // sealed like the server's own (never returned by an API).
  std::string connection_sealed;
  // The persistent profile mounted as the user's home (Workspace::profileFor), empty for none.
  // Never mounted into two live sessions at once.
  std::string profile;
  std::optional<SessionShare> share;           // Set while the session has a share link.
  std::vector<SessionPermission> permissions;  // Who else may open it (joiners), and how.
  // Extra container variables the launch asked for (request_kasm `environment`), kept so that a
  // launch interrupted by a crash finishes with them.
  std::map<std::string, std::string> launch_environment;
  // The launch's idempotency key as stored: lowercase hex SHA-256 of the user id, a newline and the
  // key the client sent (SessionRequest::idempotency_key); empty for a launch without one. Unique
  // among sessions (a unique store column), so two launches with one key make one session.
  std::string launch_key;

  TimePoint created_at;
  TimePoint state_changed_at;
  std::optional<TimePoint> started_at;        // First time it reached `running`.
  std::optional<TimePoint> keepalive_at;      // Last keepalive.
  std::optional<TimePoint> last_activity_at;  // Last user input seen by the proxy.
  std::optional<TimePoint> expires_at;        // Keepalive expiry; extended by keepalives.
  std::optional<TimePoint> hard_expires_at;   // Session time limit; never extended.

  // Moves to `next`, recording the reason and time. Returns FailedPrecondition naming both states
  // when the edge does not exist; the session is unchanged then.
  Result<void> transitionTo(SessionState next, std::string reason, TimePoint now);

  bool isStaged() const noexcept { return staging_config_id.has_value() && user_id.empty(); }
  // The permission of `user`, if the owner shared the session with them.
  const SessionPermission* permissionOf(const UserId& user) const noexcept {
    for (const auto& p : permissions)
      if (p.user_id == user) return &p;
    return nullptr;
  }

  Result<void> validate() const;
  friend bool operator==(const Session&, const Session&) = default;
};

}  // namespace kasm
