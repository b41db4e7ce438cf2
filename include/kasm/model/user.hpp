#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"
#include "kasm/model/session.hpp"

namespace kasm {

// Permission names granted through groups and API keys. Stable strings: they appear in the API.
namespace permissions {
inline constexpr std::string_view kAdmin = "admin";  // Everything.
inline constexpr std::string_view kUsersManage = "users:manage";
inline constexpr std::string_view kWorkspacesManage = "workspaces:manage";
inline constexpr std::string_view kAgentsManage = "agents:manage";
inline constexpr std::string_view kSessionsManage = "sessions:manage";  // Other users' sessions.
inline constexpr std::string_view kSessionsLaunch = "sessions:launch";
inline constexpr std::string_view kSettingsManage = "settings:manage";
inline constexpr std::string_view kLicensesManage = "licenses:manage";
// True for a name in the list above.
bool isKnown(std::string_view name) noexcept;
// The list above without kAdmin, so "every permission" can be enumerated.
std::span<const std::string_view> all() noexcept;
// True when `held` grants `wanted`: kAdmin grants everything; an empty `wanted` needs nothing.
bool grants(const std::set<std::string>& held, std::string_view wanted) noexcept;
// True when `held` grants every administrative permission in `wanted`. sessions:launch is what
// every user of the default group has, not a privilege over others, so it is not counted: a
// principal with users:manage may manage ordinary users without launching sessions itself, but
// never a user who holds a permission it lacks (no escalation through user management).
bool coversAdministrative(const std::set<std::string>& held, const std::set<std::string>& wanted) noexcept;
}  // namespace permissions

// Per-group session policy. When a user is in several groups, the group with the highest priority
// that sets a value wins (resolved by the manager).
struct GroupSettings {
  std::int32_t max_sessions_per_user = 1;  // 0 = unlimited.
  Duration keepalive_expiration = std::chrono::hours(1);
  ExpirationAction keepalive_expiration_action = ExpirationAction::kDelete;
  std::optional<Duration> session_time_limit;  // Hard cap on a session's age.
  std::optional<Duration> idle_disconnect;     // Disconnect viewers after this long without input.
  bool allow_sharing = false;                  // Owners may share their sessions (a licensed feature).
  // Owners may give the people they share with control of the desktop ("rw"); without it joiners
  // only watch.
  bool shared_session_full_control = false;
  bool allow_clipboard_down = true;
  bool allow_clipboard_up = true;
  bool allow_downloads = false;
  bool allow_uploads = false;
  bool allow_audio = true;
  bool allow_microphone = false;
  // The largest file an upload or a download may move, in MiB (1-1024). A transfer is held in the
  // server's memory while it passes.
  std::int32_t file_transfer_limit_mb = 100;
  bool allow_persistent_profile = false;
  std::optional<WorkspaceId> default_workspace;

  Result<void> validate() const;
  friend bool operator==(const GroupSettings&, const GroupSettings&) = default;
};

struct Group {
  GroupId id;
  std::string name;
  std::string description;
  std::int32_t priority = 100;  // Lower number wins when settings conflict, as in Kasm.
  std::set<std::string> permissions;
  GroupSettings settings;
  TimePoint created_at;

  Result<void> validate() const;
  friend bool operator==(const Group&, const Group&) = default;
};

// A user's preferences, with Kasm's names (developer API get_attributes / update_user_attributes).
struct UserAttributes {
  std::string ssh_public_key;                // One OpenSSH public key line; empty = none.
  bool show_tips = true;                     // Tips in the viewer.
  bool toggle_control_panel = true;          // The viewer's control panel starts shown.
  bool chat_sfx = true;                      // Sounds for chat messages.
  std::optional<WorkspaceId> default_image;  // Launched by auto_login_kasm.
  bool auto_login_kasm = false;              // Launch default_image after logging in.
  std::string preferred_language;            // BCP 47, e.g. "en-US"; empty = the browser's.
  std::string preferred_timezone;            // IANA, e.g. "Europe/Paris"; empty = the browser's.

  friend bool operator==(const UserAttributes&, const UserAttributes&) = default;
};

// InvalidArgument naming the field when a preference is malformed.
Result<void> validateAttributes(const UserAttributes& a);
// A language tag as browsers send it ("en-US"), at most 35 characters; empty is accepted.
Result<void> validateLanguageTag(std::string_view tag, std::string_view field);
// An IANA time zone name ("Europe/Paris"), at most 64 characters, no path tricks; empty is accepted.
Result<void> validateTimeZoneName(std::string_view zone, std::string_view field);

struct User {
  UserId id;
  std::string username;  // Unique, case-sensitive; 1..255 printable characters.
  std::string first_name;
  std::string last_name;
  std::string email;
  std::string organization;
  std::string phone;
  std::string password_hash;  // A PHC-format hash ("$scrypt$..."); empty = no password login.
  std::vector<GroupId> group_ids;
  // A disabled or locked user cannot log in, open desktops or use their API keys; disabling also
  // ends their running sessions (see the APIs).
  bool disabled = false;
  bool locked = false;  // Set and cleared by an administrator.
  TimePoint created_at;
  std::optional<TimePoint> last_login_at;
  // Web logins and session access tokens issued before this instant are no longer accepted
  // (logout everywhere, a password change).
  std::optional<TimePoint> sessions_valid_after;
  UserAttributes attributes;

  bool canAct() const { return !disabled && !locked; }
  // True when a credential issued at `issued_at` was revoked by sessions_valid_after.
  bool revokedAt(TimePoint issued_at) const { return sessions_valid_after && issued_at < *sessions_valid_after; }

  Result<void> validate() const;
  friend bool operator==(const User&, const User&) = default;
};

// A credential for scripts and the developer API: `key` is public, the secret is stored only as a
// hash and shown once at creation.
struct ApiKey {
  ApiKeyId id;
  std::string name;
  std::string key;          // Public identifier sent as `api_key`; unique.
  std::string secret_hash;  // Hash of `api_key_secret`; never the secret itself.
  std::set<std::string> permissions;
  bool read_only = false;
  bool enabled = true;
  std::optional<UserId> owner;
  std::optional<TimePoint> expires_at;
  TimePoint created_at;
  std::optional<TimePoint> last_used_at;

  bool isExpired(TimePoint now) const { return expires_at && now >= *expires_at; }
  Result<void> validate() const;
  friend bool operator==(const ApiKey&, const ApiKey&) = default;
};

}  // namespace kasm
