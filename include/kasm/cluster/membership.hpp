#pragma once

// Scale-out: several managers (kasm-server processes) on one store, exactly one primary per zone.
// Each manager registers a ManagerNode row and heartbeats it; for every zone it may lead it takes
// or renews the lease "zone:<id>" (kasm/model/cluster.hpp) by compare-and-set on its row. The
// primary of a zone runs that zone's background work (Manager::tick(zones), its autoscale
// configurations, its fixed-server checks); the others serve requests only. A primary that dies
// stops renewing and another takes its zones once the lease expires (lease_ttl, 8 s by default;
// with beats every 2 s a zone is led again within 10 s).
//
// Safety: leads() answers from this process's own clock and the time of its last successful
// renewal, minus a margin, so a primary cut from the store stops acting before its lease can be
// taken (given clocks that agree within the margin; run NTP). Threading: beat() from one thread;
// leads() and leading() from any.

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"
#include "kasm/model/cluster.hpp"
#include "kasm/model/zone.hpp"
#include "kasm/spi/store.hpp"

namespace kasm::cluster {

// Takes `name` for `holder` until now + ttl, or renews it when `holder` already has it. True when
// `holder` holds it after the call; false when another holder's lease has not expired or another
// manager won the race. Store errors pass through.
Result<bool> acquireLease(spi::Store& store, Clock& clock, const std::string& name, const ManagerNodeId& holder,
                          Duration ttl);
// Gives it up at once (a draining or stopping manager), if `holder` has it.
Result<void> releaseLease(spi::Store& store, const std::string& name, const ManagerNodeId& holder);

struct MembershipOptions {
  ManagerNodeId id;  // This process's, new at each start (generated when empty).
  std::string hostname;
  std::string url;
  std::string version;
  std::vector<ZoneId> zones;  // The zones it may lead; empty: any.
  Duration lease_ttl = std::chrono::seconds(8);
  Duration safety_margin = std::chrono::seconds(2);  // leads() stops this much before the lease ends.
};

class Membership {
 public:
  Membership(spi::Store& store, Clock& clock, MembershipOptions options);

  // Heartbeat and leases: call every lease_ttl / 4. A disabled manager (its row's `enabled`, set
  // by an administrator) releases what it holds and leads nothing.
  Result<void> beat();
  // Releases every lease now (drain on SIGTERM, stop): the others take the zones at their next beat.
  void stepDown();

  bool leads(const ZoneId& zone) const;
  std::set<ZoneId> leading() const;
  const ManagerNodeId& id() const noexcept { return options_.id; }

 private:
  spi::Store& store_;
  Clock& clock_;
  MembershipOptions options_;
  mutable std::mutex mu_;
  std::map<ZoneId, TimePoint> held_until_;  // Zones led, and until when by this process's clock.
  std::atomic<bool> stepped_down_{false};
  TimePoint started_at_;
};

}  // namespace kasm::cluster
