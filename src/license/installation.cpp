#include "kasm/license/installation.hpp"

#include "kasm/core/id.hpp"
#include "kasm/store/repository.hpp"

namespace kasm::license {

Result<std::string> installationId(spi::Store& store, Clock& clock) {
  Repository repo(store);
  const std::string key(settings::kInstallationId);
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto existing = repo.get<Setting>(key);
    if (existing.ok()) {
      if (existing->value.value.empty()) {
        return dataLoss("the installation_id setting is empty; restore it from a backup (licenses are bound to it)");
      }
      return existing->value.value;
    }
    if (existing.error().code() != ErrorCode::kNotFound) return existing.error();
    Setting created{key, generateIdString(), clock.now()};
    auto inserted = repo.insert(created);
    if (inserted.ok()) return created.value;
    // Another process created it first: read theirs on the next round.
    if (inserted.error().code() != ErrorCode::kAlreadyExists) return inserted.error();
  }
  return aborted("the installation_id setting kept changing; try again");
}

}  // namespace kasm::license
