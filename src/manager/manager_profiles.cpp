// Kasm's persistent profiles: a user's home directory kept between sessions on a host directory or
// Docker volume (Workspace::persistent_profile_path), mounted only when the user's group allows it,
// and never into two live sessions at once (two desktops writing one home corrupt it).

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

}  // namespace

Result<void> Manager::Impl::lockProfile(const std::string& profile, const SessionId& session,
                                        const std::string& workspace_name) {
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
  if (!mode.empty() && mode != "Enabled" && mode != "Disabled") {
    return invalidArgument("persistent_profile_mode must be Enabled or Disabled, not '" + mode.substr(0, 32) + "'");
  }
  if (mode == "Disabled" || ws.persistent_profile_path.empty()) {
    if (mode == "Enabled") {
      return failedPrecondition("workspace '" + ws.friendly_name + "' has no persistent profile");
    }
    return std::string();
  }
  if (!settings.allow_persistent_profile) {
    if (mode == "Enabled") {
      return permissionDenied("user '" + user.username +
                              "' may not use persistent profiles (their group's "
                              "allow_persistent_profile is off)");
    }
    return std::string();
  }
  return ws.profileFor(user.username, user.id.str());
}

}  // namespace kasm
