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

// A command for a remote agent, queued in the store so that whichever server the agent polls
// delivers it and whichever server receives its result answers the caller, wherever that caller
// runs (kasm/cluster/agent_commands.hpp). `id` is a decimal number (the agent protocol's command
// id), zero-padded so that ids sort in the order commands were queued.
struct AgentCommandRow {
  std::string id;
  AgentId agent_id;
  ManagerNodeId issuer;    // The manager whose call waits for the result.
  std::string state;       // "queued", "sent" (a server handed it to the agent), "done".
  std::string command;     // The command's JSON (kasm/agent/remote_link.hpp).
  std::string result;      // The agent's result JSON once done.
  ManagerNodeId sent_by;   // The server that handed it to the agent.
  std::string agent_boot;  // The agent process it was handed to (its boot id).
  std::int32_t deliveries = 0;
  TimePoint queued_at;
  TimePoint sent_at;
  TimePoint expires_at;  // The caller gives up then; the row is removed after it.

  Result<void> validate() const;
  friend bool operator==(const AgentCommandRow&, const AgentCommandRow&) = default;
};

}  // namespace kasm
