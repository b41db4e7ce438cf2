#pragma once

// Scale-out as stored: the managers (kasm-server processes) of an installation and the leases that
// make one of them primary per zone (kasm/cluster/membership.hpp).

#include <optional>
#include <string>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"

namespace kasm {

// One manager process, registered at its start and heartbeating while it runs.
struct ManagerNode {
  ManagerNodeId id;
  std::string hostname;
  std::string url;              // Where it serves (for operators; balancers have their own list).
  bool enabled = true;          // A disabled manager leads no zone (it still serves requests).
  std::vector<ZoneId> zones;    // The zones it may lead; empty: any.
  std::vector<ZoneId> leading;  // The zones it led at its last heartbeat.
  std::string version;
  TimePoint started_at;
  TimePoint heartbeat_at;

  Result<void> validate() const;
  friend bool operator==(const ManagerNode&, const ManagerNode&) = default;
};

// A named lease ("zone:<id>"): held by one manager until expires_at, renewed by compare-and-set on
// its row; anyone may take it once it has expired. `epoch` grows at each change of holder.
struct Lease {
  std::string name;
  ManagerNodeId holder;
  TimePoint expires_at;
  TimePoint acquired_at;
  std::int64_t epoch = 0;

  Result<void> validate() const;
  friend bool operator==(const Lease&, const Lease&) = default;
};

}  // namespace kasm
