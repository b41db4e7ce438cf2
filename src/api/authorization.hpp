#pragma once

// Authorization rules shared by the REST and developer APIs: what a principal may do to a user or
// with a group, who may launch a workspace, and what follows when a user's access is revoked.
// "held" is the permission set of the caller: a login's groups, or an API key's own permissions.

#include <boost/json/object.hpp>
#include <functional>
#include <set>
#include <string>

#include "kasm/core/clock.hpp"
#include "kasm/manager/manager.hpp"
#include "kasm/store/repository.hpp"

namespace kasm::api::detail {

// Told the user whose access was just revoked (disabled, locked, deleted, logged out everywhere, a
// new password), so that a server can close that user's open desktop connections at once.
using AccessRevokedHook = std::function<void(const UserId&)>;

// The permissions `user` holds through their groups; a deleted group grants nothing.
Result<std::set<std::string>> permissionsOfUser(Repository& repo, const User& user);

// PermissionDenied unless `held` covers every administrative permission `target` holds: nobody
// changes the password of, disables, deletes, logs out or regroups a user who holds more than they do.
Result<void> requireMayManageUser(Repository& repo, const std::set<std::string>& held, const User& target);

// PermissionDenied unless `held` covers every administrative permission of every group that is in
// `after` and not in `before` (adding someone to a group grants its permissions). NotFound for a
// group that does not exist.
Result<void> requireMayGrantGroups(Repository& repo, const std::set<std::string>& held,
                                   const std::vector<GroupId>& before, const std::vector<GroupId>& after);

// NotFound (so that workspaces one may not use stay unknown) unless `user` is a member of a group
// the workspace is assigned to, or `held` includes workspaces:manage.
Result<void> requireMayLaunch(const User& user, const Workspace& workspace, const std::set<std::string>& held);
// The same test without the error, for lists.
bool mayLaunch(const User& user, const Workspace& workspace, const std::set<std::string>& held);

// The instant to store in sessions_valid_after so that every login and session access token issued
// up to now is refused (they carry millisecond times, so one more millisecond covers this one).
TimePoint revocationInstant(const Clock& clock);

// Sets `user`'s sessions_valid_after to revocationInstant() (logout everywhere), retrying lost
// compare-and-set races; NotFound when the user does not exist.
Result<User> revokeLogins(Repository& repo, const Clock& clock, const UserId& user);

// Follows a stored change of a user from `before` to `after`: when the user was just disabled, their
// live sessions end as their group's keepalive expiry says (delete, otherwise stop); when access was
// revoked in any way (disabled, locked, a new sessions_valid_after), `hook` is told. Best effort: a
// session that cannot be ended now is left to the proxy, which refuses a disabled user anyway.
void afterUserChange(Manager& manager, const User& before, const User& after, const AccessRevokedHook& hook);

// Deleting a user with their persistent profiles (delete_profiles, both APIs): FailedPrecondition
// while a session of `user` is still live with a profile (ending it did not finish: its agent did
// not answer), checked after their sessions were ended and before the user is removed, so that
// the user is kept and the deletion can be tried again.
Result<void> requireNoProfileInUse(Repository& repo, const User& user);
// Manager::removeUserProfiles' report as the APIs answer it: {"removed": [...], "failed": [...]},
// each {"workspace_id", "workspace", "profile", "agent_id" (null when no agent was asked), and in
// "failed" "error"}.
boost::json::object profileRemovalJson(const Manager::ProfileRemoval& removal);

}  // namespace kasm::api::detail
