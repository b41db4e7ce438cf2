// Kasm's persistent profiles: a user's home directory kept between sessions on a host directory or
// Docker volume (Workspace::persistent_profile_path), mounted only when the user's group allows it,
// and never into two live sessions at once (two desktops writing one home corrupt it).

#include <algorithm>
#include <set>

#include "license/armor.hpp"
#include "manager/manager_impl.hpp"

namespace kasm {

namespace {

// The settings row that says which session holds a profile. Its key is a hash: profile paths can
// be long and hold any character a user name brings.
std::string lockKey(const std::string& profile) {
  return std::string(settings::kProfileLockPrefix) + license::detail::sha256Hex(profile).substr(0, 32);
}

// Longer than a launch can take to store its session (placement and the store's write; the
// container starts after).
constexpr Duration kProfileLaunchGrace = std::chrono::minutes(2);

// A profile of its own for every user: the path names the user. Without, one profile serves every
// user of the workspace, and nothing done for one user may remove it.
bool perUser(const Workspace& ws) {
  return ws.persistent_profile_path.find("{username}") != std::string::npos ||
         ws.persistent_profile_path.find("{user_id}") != std::string::npos;
}

// `inner` is `outer`, or a host directory inside it (a volume is only itself).
bool within(const std::string& inner, const std::string& outer) {
  if (inner == outer) return true;
  return !outer.empty() && outer.front() == '/' && inner.size() > outer.size() && inner.starts_with(outer) &&
         (outer.back() == '/' || inner[outer.size()] == '/');
}

// What else removing `profile` (of `user` on workspace `ws_id`) would take with it: a profile equal
// to it or inside it that belongs to another user (user names that differ only in characters a
// path segment cannot hold come out the same), to every user of a workspace (a shared one), or,
// with `same_user`, to this user on another workspace. Empty when nothing.
std::string overlap(const std::vector<Versioned<Workspace>>& workspaces, const std::vector<Versioned<User>>& users,
                    const std::string& profile, const User& user, const WorkspaceId& ws_id, bool same_user) {
  for (const auto& w : workspaces) {
    const Workspace& other = w.value;
    if (other.persistent_profile_path.empty()) continue;
    if (!perUser(other)) {
      if (within(other.profileFor("", ""), profile)) {
        return "the profile of every user of workspace '" + other.friendly_name + "'";
      }
      continue;
    }
    for (const auto& u : users) {
      const bool self = u.value.id == user.id;
      if (self && (!same_user || other.id == ws_id)) continue;
      if (!within(other.profileFor(u.value.username, u.value.id.str()), profile)) continue;
      if (self) return "their profile of workspace '" + other.friendly_name + "'";
      return "the profile of user '" + u.value.username + "' on workspace '" + other.friendly_name + "'";
    }
  }
  return {};
}

// A profile that `profile` (a host directory) lies strictly inside, with whose it is: the sessions
// that mount it could replace a directory on the path to `profile` with a symbolic link, which a
// removal would follow out of the tree, so `profile` is never removed on its own. Any user's
// (`user` included, stored or not) on any workspace, or a shared one. Empty when none.
std::string enclosing(const std::vector<Versioned<Workspace>>& workspaces, const std::vector<Versioned<User>>& users,
                      const std::string& profile, const User& user) {
  auto contains = [&](const std::string& outer) { return outer != profile && within(profile, outer); };
  for (const auto& w : workspaces) {
    const Workspace& other = w.value;
    if (other.persistent_profile_path.empty()) continue;
    const std::string where = "workspace '" + other.friendly_name + "'";
    if (!perUser(other)) {
      const std::string p = other.profileFor("", "");
      if (contains(p)) return p + " (the profile of every user of " + where + ")";
      continue;
    }
    if (const std::string p = other.profileFor(user.username, user.id.str()); contains(p)) {
      return p + " (their profile of " + where + ")";
    }
    for (const auto& u : users) {
      if (u.value.id == user.id) continue;
      const std::string p = other.profileFor(u.value.username, u.value.id.str());
      if (contains(p)) return p + " (the profile of user '" + u.value.username + "' on " + where + ")";
    }
  }
  return {};
}

}  // namespace

Result<void> Manager::Impl::lockProfile(const std::string& profile, const SessionId& session,
                                        const std::string& workspace_name, bool* held_by_launch) {
  Setting row{lockKey(profile), session.str(), clock.now()};
  for (int attempt = 0; attempt < options.max_cas_retries; ++attempt) {
    auto inserted = repo.insert(row);
    if (inserted.ok()) return {};
    if (inserted.error().code() != ErrorCode::kAlreadyExists) return inserted.error();
    auto cur = repo.get<Setting>(row.key);
    if (!cur.ok()) {
      if (cur.error().code() == ErrorCode::kNotFound) continue;  // Released meanwhile.
      return cur.error();
    }
    auto holder = repo.get<Session>(cur->value.value);
    if (holder.ok() && isLive(holder->value.state) && holder->value.id != session) {
      return failedPrecondition("the persistent profile of workspace '" + workspace_name + "' is in use by session " +
                                holder->value.id.str() +
                                "; end that session first, or launch with persistent_profile_mode Disabled");
    }
    if (!holder.ok() && holder.error().code() != ErrorCode::kNotFound) return holder.error();
    // A holder not stored yet is a launch still placing its session, unless the lock is older than
    // any launch takes (a crash between lock and launch).
    if (!holder.ok() && clock.now() - cur->value.updated_at < kProfileLaunchGrace) {
      if (held_by_launch) *held_by_launch = true;
      return failedPrecondition("the persistent profile of workspace '" + workspace_name +
                                "' is being mounted by another launch");
    }
    // The holder ended, or its launch died: take it over.
    auto taken = repo.update(row, cur->version);
    if (taken.ok()) return {};
    if (taken.error().code() != ErrorCode::kAborted) return taken.error();
  }
  return aborted("the lock of a persistent profile kept changing");
}

void Manager::Impl::unlockProfile(const Session& s) {
  if (s.profile.empty()) return;
  auto cur = repo.get<Setting>(lockKey(s.profile));
  // Only our own lock; a lock left behind is taken over by the next launch anyway.
  if (cur.ok() && cur->value.value == s.id.str()) (void)repo.remove<Setting>(cur->value.key, cur->version);
}

Result<std::string> Manager::Impl::profileFor(const SessionRequest& req, const User& user, const Workspace& ws,
                                              const GroupSettings& settings) {
  const std::string& mode = req.persistent_profile_mode;
  const bool reset = mode == "Reset";
  const bool required = mode == "Enabled" || reset;
  if (!mode.empty() && mode != "Enabled" && mode != "Disabled" && !reset) {
    return invalidArgument("persistent_profile_mode must be Enabled, Disabled or Reset, not '" + mode.substr(0, 32) +
                           "'");
  }
  if (mode == "Disabled" || ws.persistent_profile_path.empty()) {
    if (required) {
      return failedPrecondition("workspace '" + ws.friendly_name + "' has no persistent profile");
    }
    return std::string();
  }
  if (!settings.allow_persistent_profile) {
    if (required) {
      return permissionDenied("user '" + user.username +
                              "' may not use persistent profiles (their group's "
                              "allow_persistent_profile is off)");
    }
    return std::string();
  }
  std::string profile = ws.profileFor(user.username, user.id.str());
  if (reset) {
    if (!perUser(ws)) {
      return failedPrecondition("the persistent profile of workspace '" + ws.friendly_name +
                                "' is shared by every user of the workspace (its persistent_profile_path has "
                                "neither {username} nor {user_id}); it cannot be reset for one user");
    }
    KASM_ASSIGN_OR_RETURN(auto workspaces, repo.list<Workspace>());
    KASM_ASSIGN_OR_RETURN(auto users, repo.list<User>());
    if (auto other = overlap(workspaces, users, profile, user, ws.id, /*same_user=*/true); !other.empty()) {
      return failedPrecondition("the persistent profile of workspace '" + ws.friendly_name + "' (" + profile +
                                ") cannot be reset: that would also remove " + other);
    }
    if (auto outer = enclosing(workspaces, users, profile, user); !outer.empty()) {
      return failedPrecondition("the persistent profile of workspace '" + ws.friendly_name + "' (" + profile +
                                ") cannot be reset: it lies inside " + outer +
                                ", whose sessions can change the path to it");
    }
  }
  return profile;
}

Result<Manager::ProfileRemoval> Manager::removeUserProfiles(const User& user) {
  auto& im = *impl_;
  if (user.id.empty()) return invalidArgument("removeUserProfiles: the user has no id");
  KASM_ASSIGN_OR_RETURN(auto workspaces, im.repo.list<Workspace>());
  KASM_ASSIGN_OR_RETURN(auto users, im.repo.list<User>());
  KASM_ASSIGN_OR_RETURN(auto agents, im.repo.list<Agent>());
  // Every agent: those in the store, connected here or not, and links to agents not stored.
  std::vector<std::pair<AgentId, std::string>> targets;  // Id and what to call it.
  for (const auto& a : agents) targets.emplace_back(a.value.id, a.value.hostname);
  {
    std::lock_guard lock(im.mu);
    for (const auto& entry : im.links) {
      // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
      const AgentId& id = entry.first;
      const bool stored = std::any_of(agents.begin(), agents.end(), [&](const auto& a) { return a.value.id == id; });
      if (!stored && entry.second) targets.emplace_back(id, id.str());
    }
  }
  ProfileRemoval out;
  std::set<std::string> seen;
  for (const auto& w : workspaces) {
    const Workspace& ws = w.value;
    if (!perUser(ws)) continue;
    const std::string profile = ws.profileFor(user.username, user.id.str());
    if (!seen.insert(profile).second) continue;  // Two workspaces with one path.
    ProfileRemoval::Entry entry{ws.id, ws.friendly_name, profile, std::nullopt, {}};
    if (auto other = overlap(workspaces, users, profile, user, ws.id, /*same_user=*/false); !other.empty()) {
      entry.error = "removing it would also remove " + other;
      out.failed.push_back(std::move(entry));
      continue;
    }
    if (auto outer = enclosing(workspaces, users, profile, user); !outer.empty()) {
      entry.error =
          "it lies inside " + outer + ", whose sessions can change the path to it; it is not removed on its own";
      out.failed.push_back(std::move(entry));
      continue;
    }
    if (targets.empty()) {
      entry.error = "no agent is registered, so no host was asked";
      out.failed.push_back(std::move(entry));
      continue;
    }
    // Held while it is removed, so that no launch mounts it meanwhile; a live session that holds
    // it keeps it.
    const SessionId remover = SessionId::generate();
    auto locked = im.lockProfile(profile, remover, ws.friendly_name);
    if (!locked.ok()) {
      const std::string& why = locked.error().message();
      entry.error = why.substr(0, why.find("; "));
      out.failed.push_back(std::move(entry));
      continue;
    }
    for (const auto& [agent_id, name] : targets) {
      entry.agent_id = agent_id;
      auto link = im.linkFor(agent_id);
      auto removed = link ? link->removeProfile(profile)
                          : Result<void>(unavailable("agent " + name +
                                                     " is not connected to this manager; remove the profile on "
                                                     "its host"));
      entry.error = removed.ok() ? std::string() : removed.error().message();
      (removed.ok() ? out.removed : out.failed).push_back(entry);
    }
    Session lock_holder;
    lock_holder.id = remover;
    lock_holder.profile = profile;
    im.unlockProfile(lock_holder);
  }
  return out;
}

}  // namespace kasm
