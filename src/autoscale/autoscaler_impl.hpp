#pragma once

// Internal to the autoscaler: its state and the steps autoscaler.cpp (the tick: reconciliation,
// the fleet as the planner sees it) and autoscaler_machines.cpp (making, draining and destroying
// machines; the decision log) share.

#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "kasm/autoscale/autoscaler.hpp"
#include "kasm/manager/manager.hpp"
#include "kasm/store/repository.hpp"

namespace kasm::autoscale {

struct Autoscaler::Impl {
  Impl(spi::Store& s, Manager& m, const spi::VmProviderRegistry& p, Clock& c, AutoscalerOptions o)
      : repo(s), manager(m), providers(p), clock(c), options(std::move(o)) {}

  Repository repo;
  Manager& manager;
  const spi::VmProviderRegistry& providers;
  Clock& clock;
  AutoscalerOptions options;

  // The provider made for a configuration, remade when its name or settings change.
  struct ProviderSlot {
    std::string made_from;
    std::unique_ptr<spi::VmProvider> provider;
  };
  std::map<AutoscaleConfigId, ProviderSlot> providers_made;
  struct Backoff {
    TimePoint until;
    Duration delay{};
    std::string made_from;  // The settings that failed: an edit ends the backoff at once.
  };
  std::map<AutoscaleConfigId, Backoff> backoff;
  std::map<std::string, TimePoint> orphans_seen;
  // The zone's reserved capacity at each tick of a configuration, the last growth_window of it
  // (PlannerInput::growth).
  std::map<AutoscaleConfigId, std::deque<std::pair<TimePoint, Resources>>>
      reserved_history;  // Provider instance id -> when first listed without a row.
  // What was last recorded per configuration: the summary's kind ("+", "-", "steady", ...) and when.
  std::map<AutoscaleConfigId, std::pair<std::string, TimePoint>> last_recorded;
  mutable std::mutex status_mu;
  std::map<AutoscaleConfigId, ConfigStatus> statuses;

  // One configuration's pass; what it did goes into `report` and the decision log.
  void tickConfig(const AutoscaleConfig& c, TickReport& report);
  Result<spi::VmProvider*> providerFor(const AutoscaleConfig& c);

  // ---- autoscaler_machines.cpp ----
  // Makes one machine: its agent (registration token) or nothing yet (servers), its row, the
  // provider's create. A retryable failure leaves the row creating (retried with the same client
  // token and user data); any other removes what was made.
  Result<AutoscaleVm> createMachine(const AutoscaleConfig& c, const std::string& zone_name, spi::VmProvider& provider,
                                    std::optional<Versioned<AutoscaleVm>> retry = std::nullopt);
  // Stops new sessions reaching it; destroys it at once when it holds none.
  Result<bool> drainMachine(const AutoscaleConfig& c, Versioned<AutoscaleVm> vm, spi::VmProvider& provider,
                            const std::string& reason);
  // Removes its agent or server (refused while it holds a session: then false), then the machine
  // and the row. A provider failure leaves the row destroying, retried at the next tick.
  Result<bool> destroyMachine(const AutoscaleConfig& c, Versioned<AutoscaleVm> vm, spi::VmProvider& provider,
                              const std::string& reason);
  Result<void> save(Versioned<AutoscaleVm>& vm);
  void record(const AutoscaleConfig& c, const std::string& summary, const std::vector<std::string>& actions,
              const std::string& error);
  void failed(const AutoscaleConfig& c, const std::string& what, const Error& e, TickReport& report);
  void succeeded(const AutoscaleConfig& c);
};

// Errors worth retrying with the same request later (the provider was away or throttled).
inline bool retryable(const Error& e) {
  return e.code() == ErrorCode::kUnavailable || e.code() == ErrorCode::kResourceExhausted ||
         e.code() == ErrorCode::kDeadlineExceeded || e.code() == ErrorCode::kAborted;
}

}  // namespace kasm::autoscale
