// Kasm's persistent profiles: a user's home directory kept between sessions on a host directory or
// Docker volume (Workspace::persistent_profile_path), mounted only when the user's group allows it,
// and never into two live sessions at once (two desktops writing one home corrupt it).

#include "manager/manager_impl.hpp"

namespace kasm {

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
  std::string profile = ws.profileFor(user.username, user.id.str());
  KASM_ASSIGN_OR_RETURN(auto mine, repo.list<Session>(spi::Query().where("user_id", user.id.str())));
  for (const auto& s : mine) {
    if (isLive(s.value.state) && s.value.profile == profile) {
      return failedPrecondition("the persistent profile of workspace '" + ws.friendly_name + "' is in use by session " +
                                s.value.id.str() +
                                "; end that session first, or launch with persistent_profile_mode Disabled");
    }
  }
  return profile;
}

}  // namespace kasm
