// Removing persistent profiles (Workspace::persistent_profile_path): for a reset at launch and when
// an administrator deletes a user with their profiles.

#include <filesystem>
#include <system_error>

#include "kasm/agent/local_agent.hpp"
#include "model/validation.hpp"

namespace kasm::agent {

Result<void> LocalAgent::removeProfile(const std::string& profile) {
  if (profile.empty()) return invalidArgument("no profile named");
  if (profile.front() != '/') {
    // A Docker volume.
    auto removed = runtime_.removeVolume(profile);
    if (removed.ok() || removed.error().code() == ErrorCode::kNotFound) return {};
    return removed.error().withContext("persistent profile volume " + profile);
  }
  KASM_RETURN_IF_ERROR(kasm::detail::requireAbsolutePath(profile, "persistent profile"));
  const std::filesystem::path path(profile);
  if (std::distance(path.begin(), path.end()) < 3) {  // "/", "a", "b"
    return invalidArgument("refusing to remove " + profile + ": a profile lies at least two directories deep");
  }
  if (!options_.prepare_host_volumes) {
    return failedPrecondition("persistent profile " + profile +
                              " is on the engine's host, which this agent does not manage; remove it there");
  }
  std::error_code ec;
  // remove_all removes symbolic links inside the tree, never what they point to.
  std::filesystem::remove_all(profile, ec);
  if (ec) return internalError("removing persistent profile " + profile + ": " + ec.message());
  return {};
}

}  // namespace kasm::agent
