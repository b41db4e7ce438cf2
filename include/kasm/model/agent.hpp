#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/enum_names.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/resources.hpp"
#include "kasm/core/result.hpp"

namespace kasm {

// Liveness as seen by the manager from check-ins.
enum class AgentStatus {
  kPending,  // Registered, never checked in.
  kOk,       // Checked in recently.
  kMissing,  // Silent for longer than the missing threshold; its sessions are suspect.
  kDead,     // Silent for longer than the dead threshold; its sessions are failed.
};
enum class AgentKind { kStatic, kAutoscaled };

}  // namespace kasm

KASM_ENUM_NAMES(kasm::AgentStatus, 4, {kasm::AgentStatus::kPending, "pending"}, {kasm::AgentStatus::kOk, "ok"},
                {kasm::AgentStatus::kMissing, "missing"}, {kasm::AgentStatus::kDead, "dead"});
KASM_ENUM_NAMES(kasm::AgentKind, 2, {kasm::AgentKind::kStatic, "static"}, {kasm::AgentKind::kAutoscaled, "autoscaled"});

namespace kasm {

// Operator overrides of what an agent reports; an unset field means "use the reported value".
struct ResourceOverrides {
  std::optional<std::int64_t> millicores;
  std::optional<std::int64_t> memory_bytes;
  std::optional<std::int32_t> gpus;

  friend bool operator==(const ResourceOverrides&, const ResourceOverrides&) = default;
};

// A Docker host that runs session containers.
struct Agent {
  AgentId id;
  std::string hostname;
  ZoneId zone_id;
  AgentKind kind = AgentKind::kStatic;
  std::optional<AutoscaleConfigId> autoscale_config_id;
  std::map<std::string, std::string> labels;

  bool enabled = true;
  bool draining = false;  // Takes no new sessions; existing ones run to their end.
  AgentStatus status = AgentStatus::kPending;

  ResourceOverrides overrides;
  Resources reported;                  // Capacity the agent reported at its last check-in.
  Resources reserved;                  // Sum of the resources of sessions placed on it.
  std::int32_t session_count = 0;      // Sessions currently holding a reservation here.
  double cpu_utilization = 0.0;        // 0..1, from the last check-in.
  std::int64_t memory_used_bytes = 0;  // From the last check-in.
  std::vector<std::string> images;     // Image references present on the host.

  std::string api_address;  // Where a remote agent's API answers, "host:port"; empty = in-process.
  // Where a remote agent may publish session ports: IP addresses or CIDR networks ("10.1.2.3",
  // "10.1.0.0/16"). A session upstream the agent reports outside them is refused (see
  // kasm/agent/upstream_policy.hpp); empty refuses every one. Set by the installation when it
  // registers the agent, never by the agent.
  std::vector<std::string> publish_networks;
  // Where the agent's reverse tunnel is reached (kasm/tunnel/tunnel_hub.hpp): the gateway
  // ("address:port") of the server its tunnel is attached to. Empty: it has none, and the proxy
  // connects to its sessions' published addresses. Kept by the servers, never by the agent.
  std::string tunnel_gateway;
  std::string token_hash;  // Hash of the agent's registration token; never the token itself.
  // Set for a single-use registration token (an autoscaled machine's): it is accepted until then,
  // once, and exchanged at the first check-in for a token without an expiry.
  std::optional<TimePoint> token_expires_at;
  std::string agent_version;
  TimePoint registered_at;
  std::optional<TimePoint> last_checkin;

  // Capacity after overrides: what the scheduler may hand out in total.
  Resources capacity() const;
  // capacity() - reserved, never below zero.
  Resources available() const;
  bool hasImage(std::string_view image) const;

  Result<void> validate() const;
  friend bool operator==(const Agent&, const Agent&) = default;
};

}  // namespace kasm
