#pragma once

// Autoscaling as stored: what to keep running (AutoscaleConfig), the machines made for it
// (AutoscaleVm) and why the autoscaler did what it did (AutoscaleDecision). The planner and the
// loop that act on them are in kasm/autoscale/.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/enum_names.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/resources.hpp"
#include "kasm/core/result.hpp"
#include "kasm/model/agent.hpp"
#include "kasm/model/server.hpp"

namespace kasm {

// A window in which a configuration keeps its standby, in the configuration's time zone. `days`
// are the days the window starts on (0 = Sunday ... 6 = Saturday; empty = every day); `start` and
// `end` are "HH:MM" (end "24:00" = midnight); an end at or before the start crosses midnight
// ("22:00" to "06:00" runs into the next morning).
struct AutoscaleSchedule {
  std::vector<std::int32_t> days;
  std::string start = "00:00";
  std::string end = "24:00";

  Result<void> validate(std::string_view field) const;
  friend bool operator==(const AutoscaleSchedule&, const AutoscaleSchedule&) = default;
};

// Minutes since midnight of "HH:MM" ("24:00" is 1440); nullopt when malformed.
std::optional<int> scheduleClockMinutes(std::string_view hhmm);

// Keeps enough machines running in a zone: Docker agents (pool_id empty), or servers of a server
// pool (pool_id set), made and destroyed through a VM provider (kasm/spi/vm_provider.hpp).
struct AutoscaleConfig {
  AutoscaleConfigId id;
  std::string name;
  ZoneId zone_id;
  std::optional<ServerPoolId> pool_id;  // Set: the machines become servers of this pool.
  bool enabled = true;
  std::string provider;  // A registered provider name: "aws-ec2", "command", or an embedder's.
  // The provider's settings, a JSON object. Secret members (secret_access_key, password, ...:
  // see isSecretProviderField) are sealed at rest and never returned by an API.
  std::string provider_config_json = "{}";

  // Free capacity to keep in the zone (agents): cores, memory and GPUs not reserved by sessions,
  // counting every enabled agent of the zone and the machines still booting.
  Resources standby;
  std::int32_t min_standby_sessions = 0;  // Server pools: free session slots to keep.
  std::int32_t min_instances = 0;         // Machines kept whatever the demand.
  std::int32_t max_instances = 10;        // Never more machines than this (booting ones count).
  // How long a machine stays idle (no session) before it may be destroyed, and how long after the
  // last scale-up nothing is destroyed (so a peak does not bounce the fleet).
  Duration downscale_backoff = std::chrono::minutes(10);
  // A machine whose agent has not checked in (or, for a server, answered) by then is destroyed.
  Duration provision_timeout = std::chrono::minutes(15);
  // True: a machine counts as capacity only once its agent checked in. False (server pools without
  // an agent): once the provider says it runs.
  bool require_checkin = true;
  // False: a machine serves one session and is destroyed when it ends (never reused).
  bool reusable = true;
  ResourceOverrides agent_overrides;  // Applied to the agents registered for its machines.
  std::map<std::string, std::string> agent_labels;
  // Where its agents may publish session ports (Agent::publish_networks): the subnets its machines
  // get addresses in ("10.1.0.0/16"). Empty refuses every session upstream they report.
  std::vector<std::string> agent_publish_networks;
  // The machine's user data: {server_id} (its agent's or server's id), {registration_token},
  // {upstream_address} (where agents reach this installation), {provider_name}, {zone_name},
  // {config_name}; "{{" and "}}" are literal braces. Any other {name} is an error.
  std::string startup_script;
  // Server pools: how the proxy reaches the machines' desktops.
  ServerConnectionType server_connection_type = ServerConnectionType::kRdp;
  std::uint16_t server_port = 3389;
  std::int32_t server_max_sessions = 1;
  std::string server_connection_username;    // May be "{sso_username}"; blank asks the user at launch.
  std::string time_zone = "UTC";             // An IANA name ("Europe/Paris") for the schedules.
  std::vector<AutoscaleSchedule> schedules;  // Empty: the standby is kept at all times.
  TimePoint created_at;

  bool forServers() const noexcept { return pool_id.has_value(); }
  Result<void> validate() const;
  friend bool operator==(const AutoscaleConfig&, const AutoscaleConfig&) = default;
};

// True for a provider_config_json member that holds a secret (sealed at rest, never shown).
bool isSecretProviderField(std::string_view name) noexcept;

// Where a machine is in its life. kCreating: the row is written and the provider is being asked
// (a create whose answer was lost is retried with the same client token); kBooting: the provider
// made it, its agent has not checked in; kReady: it serves; kDraining: chosen for removal, takes no
// new session, destroyed once empty; kDestroying: the provider is being asked to destroy it;
// kMissing: the provider no longer lists it (its sessions are failed by the manager's checks).
enum class VmPhase { kCreating, kBooting, kReady, kDraining, kDestroying, kMissing };

}  // namespace kasm

KASM_ENUM_NAMES(kasm::VmPhase, 6, {kasm::VmPhase::kCreating, "creating"}, {kasm::VmPhase::kBooting, "booting"},
                {kasm::VmPhase::kReady, "ready"}, {kasm::VmPhase::kDraining, "draining"},
                {kasm::VmPhase::kDestroying, "destroying"}, {kasm::VmPhase::kMissing, "missing"});

namespace kasm {

// One machine the autoscaler made (or is making). Its id is the provider's client token and the
// kasm:vm tag, so a machine and its row always find each other.
struct AutoscaleVm {
  AutoscaleVmId id;
  AutoscaleConfigId config_id;
  ZoneId zone_id;
  std::string provider;
  std::string instance_id;  // The provider's id; empty until the create is answered.
  std::string private_address;
  VmPhase phase = VmPhase::kCreating;
  std::optional<AgentId> agent_id;    // Agents: the agent registered for it.
  std::optional<ServerId> server_id;  // Server pools: the server row made for it.
  std::string reason;                 // Why it is in its phase ("idle 12 min > backoff 10 min").
  bool served = false;                // Has had a session (a non-reusable machine then goes).
  // While the create is not yet answered: the registration token in its user data, sealed, so a
  // retried create sends the very same user data (the provider answers it with the machine it
  // may already have made). Cleared once the provider has answered; never shown by an API.
  std::string registration_token_sealed;
  TimePoint created_at;
  std::optional<TimePoint> ready_at;
  std::optional<TimePoint> idle_since;  // No session since then (ready machines only).
  TimePoint updated_at;

  Result<void> validate() const;
  friend bool operator==(const AutoscaleVm&, const AutoscaleVm&) = default;
};

// One thing the autoscaler decided for a configuration, with its reason: what users of
// autoscalers most want to know is why a machine was or was not made.
struct AutoscaleDecision {
  AutoscaleDecisionId id;
  AutoscaleConfigId config_id;
  ZoneId zone_id;
  TimePoint at;
  std::string summary;               // "zone east: +2 agents, standby cores 6 < 16"
  std::vector<std::string> actions;  // One line per machine made, drained or destroyed.
  std::string error;                 // A provider failure, with the provider's words.

  Result<void> validate() const;
  friend bool operator==(const AutoscaleDecision&, const AutoscaleDecision&) = default;
};

}  // namespace kasm
