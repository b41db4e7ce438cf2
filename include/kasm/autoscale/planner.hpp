#pragma once

// The autoscaler's decisions as a pure function: from a configuration, its machines, the zone's
// other capacity, recent unmet demand and the clock, the machines to make, drain and destroy, each
// with its reason. No I/O, no clock read: unit-tested on fixed inputs, and run by the loop in
// autoscaler.hpp once per tick and configuration.

#include <optional>
#include <string>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/resources.hpp"
#include "kasm/core/time_zone.hpp"
#include "kasm/model/autoscale.hpp"

namespace kasm::autoscale {

// One machine of the configuration as the planner sees it.
struct FleetMember {
  AutoscaleVmId id;
  VmPhase phase = VmPhase::kCreating;
  TimePoint created_at;
  std::optional<TimePoint> idle_since;
  bool checked_in = false;  // Its agent checked in (or its server answers); it serves.
  std::int32_t sessions = 0;
  bool served = false;             // Has had a session.
  Resources capacity;              // Agents: what it offers in total (zero while not known).
  Resources available;             // Agents: capacity less what sessions hold.
  std::int32_t free_sessions = 0;  // Server pools: session slots left.
};

struct PlannerInput {
  AutoscaleConfig config;
  TimeZone time_zone = TimeZone::utc();  // The configuration's, loaded by the caller.
  TimePoint now;
  std::string zone_name;
  std::vector<FleetMember> fleet;
  // Free capacity of the zone outside this configuration (static agents, other configurations'
  // ready machines): enabled, checked in, not draining. Server pools: the pool's other servers.
  Resources other_available;
  std::int32_t other_free_sessions = 0;
  // Launches refused for want of capacity lately (the loop keeps a window of them): served on top
  // of the standby, in schedule or not.
  Resources unplaced;
  std::int32_t unplaced_sessions = 0;
  // What one new machine brings: the configuration's agent overrides where set, else what its
  // machines reported; zero in every part while nothing is known yet.
  Resources machine_capacity;
  std::optional<TimePoint> last_scale_up;
  // How much the zone's reserved capacity grew over the last `growth_window` (negative when it
  // shrank), and how long a new machine takes to check in. While demand grows, what it will take
  // during one boot is made ready ahead of it: a standby alone is eaten by a morning ramp before
  // the machines it calls for have booted. Zero boot_time (not known yet): no lookahead.
  Resources growth;
  Duration growth_window = std::chrono::minutes(5);
  Duration boot_time{};
};

enum class ActionKind { kCreate, kDrain, kDestroy };

struct Action {
  ActionKind kind = ActionKind::kCreate;
  std::optional<AutoscaleVmId> vm;  // kDrain, kDestroy: which machine.
  std::string reason;
};

struct Plan {
  std::vector<Action> actions;
  // One line for people: "zone east: +2 agents, standby cores 6 < 16".
  std::string summary;
  bool in_schedule = true;
  std::int32_t instances = 0;  // Machines counted (creating, booting, ready; not draining or gone).
  Resources standby_target, standby_free;
  Resources ahead;  // Part of standby_target kept ahead of growing demand (PlannerInput::growth).
  std::int32_t sessions_target = 0, sessions_free = 0;

  std::size_t count(ActionKind k) const;
};

// True when `now` falls in one of the configuration's schedule windows (always, without windows).
bool inSchedule(const AutoscaleConfig& config, const TimeZone& tz, TimePoint now);

Plan plan(const PlannerInput& in);

// "6", "0.5" cores; "16 GiB", "512 MiB": how figures read in reasons.
std::string formatCores(std::int64_t millicores);
std::string formatMemory(std::int64_t bytes);

}  // namespace kasm::autoscale
