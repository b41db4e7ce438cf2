#include "api/authorization.hpp"

#include <algorithm>
#include <boost/json.hpp>

#include "kasm/core/enum_names.hpp"

namespace kasm::api::detail {

Result<std::set<std::string>> permissionsOfUser(Repository& repo, const User& user) {
  std::set<std::string> out;
  for (const auto& gid : user.group_ids) {
    auto g = repo.get<Group>(gid.str());
    if (!g.ok()) {
      if (g.error().code() == ErrorCode::kNotFound) continue;
      return g.error();
    }
    out.insert(g->value.permissions.begin(), g->value.permissions.end());
  }
  return out;
}

Result<void> requireMayManageUser(Repository& repo, const std::set<std::string>& held, const User& target) {
  KASM_ASSIGN_OR_RETURN(auto theirs, permissionsOfUser(repo, target));
  if (!permissions::coversAdministrative(held, theirs)) {
    return permissionDenied("user '" + target.username + "' holds permissions you do not have");
  }
  return {};
}

Result<void> requireMayGrantGroups(Repository& repo, const std::set<std::string>& held,
                                   const std::vector<GroupId>& before, const std::vector<GroupId>& after) {
  for (const auto& gid : after) {
    if (std::find(before.begin(), before.end(), gid) != before.end()) continue;
    auto g = repo.get<Group>(gid.str());
    if (!g.ok()) {
      if (g.error().code() == ErrorCode::kNotFound) return notFound("group '" + gid.str() + "' does not exist");
      return g.error();
    }
    if (!permissions::coversAdministrative(held, g->value.permissions)) {
      return permissionDenied("group '" + g->value.name + "' carries permissions you do not have");
    }
  }
  return {};
}

bool mayLaunch(const User& user, const Workspace& workspace, const std::set<std::string>& held) {
  if (permissions::grants(held, permissions::kWorkspacesManage)) return true;
  for (const auto& g : workspace.group_ids) {
    if (std::find(user.group_ids.begin(), user.group_ids.end(), g) != user.group_ids.end()) return true;
  }
  return false;
}

Result<void> requireMayLaunch(const User& user, const Workspace& workspace, const std::set<std::string>& held) {
  if (!mayLaunch(user, workspace, held)) {
    return notFound("workspace " + workspace.id.str() + " does not exist or is not assigned to a group of user '" +
                    user.username + "'");
  }
  return {};
}

TimePoint revocationInstant(const Clock& clock) {
  return clock.now() + std::chrono::milliseconds(1);
}

Result<User> revokeLogins(Repository& repo, const Clock& clock, const UserId& id) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    KASM_ASSIGN_OR_RETURN(auto user, repo.get<User>(id.str()));
    user.value.sessions_valid_after = revocationInstant(clock);
    auto w = repo.update(user.value, user.version);
    if (w.ok()) return user.value;
    if (w.error().code() != ErrorCode::kAborted) return w.error();
  }
  return aborted("the user changed concurrently; retry");
}

void afterUserChange(Manager& manager, const User& before, const User& after, const AccessRevokedHook& hook) {
  if (after.disabled && !before.disabled) {
    auto settings = manager.effectiveSettings(after.id);
    const bool destroy = !settings.ok() || settings->keepalive_expiration_action == ExpirationAction::kDelete;
    auto sessions = manager.listSessions(spi::Query().where("user_id", after.id.str()));
    if (sessions.ok()) {
      for (const auto& s : *sessions) {
        if (s.state != SessionState::kRunning && s.state != SessionState::kPaused) continue;
        (void)(destroy ? manager.destroySession(s.id, "the user was disabled")
                       : manager.stopSession(s.id, "the user was disabled"));
      }
    }
  }
  const bool revoked = (after.disabled && !before.disabled) || (after.locked && !before.locked) ||
                       after.sessions_valid_after != before.sessions_valid_after;
  if (revoked && hook) hook(after.id);
}

Result<void> requireNoProfileInUse(Repository& repo, const User& user) {
  KASM_ASSIGN_OR_RETURN(auto sessions, repo.list<Session>(spi::Query().where("user_id", user.id.str())));
  for (const auto& s : sessions) {
    // As the deletes count them: a stopped session keeps its container, and the profile in it.
    const bool ended = s.value.state == SessionState::kDestroyed || s.value.state == SessionState::kFailed;
    if (ended || s.value.profile.empty()) continue;
    return failedPrecondition("session " + s.value.id.str() + " of user '" + user.username + "' is still " +
                              std::string(enumName(s.value.state)) + " with the persistent profile " + s.value.profile +
                              " (" + s.value.state_reason + "); the user was not deleted: try again once it has ended");
  }
  return {};
}

boost::json::object profileRemovalJson(const Manager::ProfileRemoval& removal) {
  auto entries = [](const std::vector<Manager::ProfileRemoval::Entry>& list, bool with_error) {
    boost::json::array out;
    for (const auto& e : list) {
      boost::json::object o;
      o["workspace_id"] = e.workspace_id.str();
      o["workspace"] = e.workspace_name;
      o["profile"] = e.profile;
      o["agent_id"] = e.agent_id ? boost::json::value(e.agent_id->str()) : boost::json::value(nullptr);
      if (with_error) o["error"] = e.error;
      out.push_back(std::move(o));
    }
    return out;
  };
  return boost::json::object{{"removed", entries(removal.removed, false)}, {"failed", entries(removal.failed, true)}};
}

}  // namespace kasm::api::detail
