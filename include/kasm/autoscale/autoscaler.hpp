#pragma once

// The autoscaler: once per tick and enabled configuration, it reconciles the machines it made with
// what the provider lists, runs the planner (planner.hpp) and carries out its actions through the
// configuration's VmProvider (kasm/spi/vm_provider.hpp), recording each decision with its reason.
//
// Safety, whatever the planner says: a machine is destroyed only after its agent was drained and
// Manager::removeAgent agreed that it holds no session (or, for a server, Manager::removeServer);
// a machine whose agent has not checked in within the provision timeout is destroyed; a machine
// the provider tagged for this installation without a row here is destroyed after a grace period;
// a row whose machine the provider no longer lists is marked missing; a provider that fails is
// backed off (doubling to a maximum) without holding up the other configurations.
//
// Threading: tick() is called from one thread at a time (the server's background loop). Only one
// process of an installation should run it (issue 18 elects it; until then, the one server).

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kasm/autoscale/planner.hpp"
#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"
#include "kasm/spi/store.hpp"
#include "kasm/spi/vm_provider.hpp"

namespace kasm {
class Manager;
}

namespace kasm::autoscale {

struct AutoscalerOptions {
  std::string installation_id;   // Tagged on every machine (vm_tags::kInstallation).
  std::string upstream_address;  // {upstream_address}: where agents reach this installation.
  // The key provider secrets are sealed with (ManagerOptions::session_secret_key).
  std::string secret_key;
  Duration orphan_grace = std::chrono::minutes(10);
  Duration demand_window = std::chrono::minutes(5);  // How long a refused launch adds to the need.
  Duration provider_backoff = std::chrono::seconds(30);
  Duration provider_backoff_max = std::chrono::minutes(10);
  std::size_t decisions_kept = 500;  // Per configuration; older ones are removed.
  // A steady state is recorded again after this long even when nothing changed.
  Duration steady_record_period = std::chrono::minutes(30);
};

struct TickReport {
  int configs = 0;
  int created = 0, drained = 0, destroyed = 0, missing = 0, orphans_destroyed = 0, errors = 0;
};

// The latest word on one configuration, for the API and the admin pages: why nothing happens now
// is as useful as why something did.
struct ConfigStatus {
  AutoscaleConfigId config_id;
  std::string summary;
  std::string error;  // The provider's last failure while backing off.
  std::optional<TimePoint> backoff_until;
  TimePoint at;
};

class Autoscaler {
 public:
  Autoscaler(spi::Store& store, Manager& manager, const spi::VmProviderRegistry& providers, Clock& clock,
             AutoscalerOptions options);
  ~Autoscaler();
  Autoscaler(const Autoscaler&) = delete;
  Autoscaler& operator=(const Autoscaler&) = delete;

  // One pass over every enabled configuration, or over those of `zones` (the zones this process
  // leads; kasm/cluster/membership.hpp).
  Result<TickReport> tick(const std::set<ZoneId>* zones = nullptr);
  std::vector<ConfigStatus> status() const;
  // The provider names a configuration may use.
  std::vector<std::string> providerNames() const;
  // sealProviderConfig with this autoscaler's key: what an API stores for `incoming`.
  Result<std::string> sealSettings(std::string_view incoming, std::string_view stored) const;
  // Makes (and drops) the provider from stored settings: what a save checks, so that a typo in an
  // administrator's settings is refused with the provider's words rather than found at a tick.
  Result<void> checkSettings(const std::string& provider, std::string_view stored) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Provider settings at rest: secret members (isSecretProviderField) sealed, and "********" in
// `incoming` keeping what `stored` holds (an administrator edits other fields without retyping the
// key). InvalidArgument when `incoming` is not a JSON object.
Result<std::string> sealProviderConfig(std::string_view incoming, std::string_view stored, std::string_view key);
// The settings a provider is made from: secrets unsealed.
Result<std::string> unsealProviderConfig(std::string_view stored, std::string_view key);
// The settings as an API shows them: secrets as "********".
std::string redactProviderConfig(std::string_view stored);

}  // namespace kasm::autoscale
