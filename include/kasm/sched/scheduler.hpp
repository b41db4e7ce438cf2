#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kasm/core/id.hpp"
#include "kasm/core/random.hpp"
#include "kasm/core/resources.hpp"
#include "kasm/core/result.hpp"
#include "kasm/model/agent.hpp"
#include "kasm/model/zone.hpp"
#include "kasm/sched/placement_policy.hpp"

namespace kasm::sched {

// What the scheduler knows about one agent.
struct AgentEntry {
  AgentId id;
  ZoneId zone;
  AgentKind kind = AgentKind::kStatic;
  std::map<std::string, std::string> labels;
  std::vector<std::string> images;
  Resources capacity;  // After overrides.
  Resources reserved;
  std::int32_t session_count = 0;
  bool enabled = true;
  bool draining = false;
  bool alive = true;  // Checked in recently (status ok).

  // From the model: capacity() applies overrides; alive means status ok.
  static AgentEntry fromAgent(const Agent& agent);
};

// Placement rules of one zone.
struct ZoneRules {
  ZoneId id;
  std::string name;  // For messages; the id when empty.
  LoadStrategy strategy = LoadStrategy::kLeastLoad;
  bool search_alternate_zones = false;
  bool prioritize_static_agents = true;
  // A custom policy overrides `strategy` (the embedder keeps ownership semantics via shared_ptr).
  std::shared_ptr<const PlacementPolicy> custom_policy;

  static ZoneRules fromZone(const Zone& zone);
};

// One session's needs and restrictions.
struct PlacementRequest {
  Resources resources;
  ZoneId zone;                                        // The zone asked for.
  std::optional<ZoneId> restrict_to_zone;             // Workspace restriction: only this zone.
  std::optional<AgentId> restrict_to_agent;           // Workspace restriction: only this agent.
  std::map<std::string, std::string> include_labels;  // The agent must carry all of these.
  std::map<std::string, std::string> exclude_labels;  // The agent must carry none of these.
  std::string image;                                  // Empty = no image requirement.
  bool allow_pull = true;                             // Agents without the image may be used (they pull).
};

struct Placement {
  AgentId agent;
  ZoneId zone;
  bool needs_pull = false;  // The agent does not have the image yet.
};

// Decides which agent takes a session and keeps the capacity bookkeeping. Agents are grouped in
// pools of identical zone, kind, labels and images; each pool keeps its agents ordered by the zone's
// policy score, so a decision looks at the best agent of each eligible pool: O(P log N) for P pools,
// independent of how many agents there are. When nothing fits, the error counts why, per zone.
//
// Rules, in order: restrict_to_agent / restrict_to_zone; the requested zone, then the other zones
// (by id) only if the requested zone allows searching alternate zones; within a zone static agents
// before autoscaled ones when the zone prioritises them; agents that have the image before those that
// would pull it; then the best policy score; ties broken by a per-agent salt from `random`.
//
// Thread-compatible: the caller serialises access (the Manager holds it on its lock).
class Scheduler {
 public:
  explicit Scheduler(Random& random);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Adds or changes a zone; agents of unknown zones are kept but only placed once the zone exists.
  void upsertZone(const ZoneRules& rules);
  void removeZone(const ZoneId& zone);

  // Adds or replaces an agent (its capacity, availability, labels, images and reservations).
  Result<void> upsertAgent(const AgentEntry& entry);
  void removeAgent(const AgentId& id);
  std::optional<AgentEntry> agent(const AgentId& id) const;
  std::size_t agentCount() const;

  // Chooses an agent and reserves the resources there (one more session).
  Result<Placement> place(const PlacementRequest& request);
  // Chooses without reserving.
  Result<Placement> choose(const PlacementRequest& request) const;
  // The same decision by scanning every agent: the reference the index is tested and benchmarked
  // against. Never faster; use choose().
  Result<Placement> chooseByScan(const PlacementRequest& request) const;

  // Adds or returns a session's resources on an agent. Errors: NotFound for an unknown agent.
  Result<void> reserve(const AgentId& id, const Resources& resources);
  Result<void> release(const AgentId& id, const Resources& resources);

  // The policy score and tie-break salt the scheduler uses for `id` (for tests).
  std::optional<std::pair<std::int64_t, std::uint64_t>> rankOf(const AgentId& id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kasm::sched
