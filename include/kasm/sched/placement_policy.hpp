#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "kasm/core/resources.hpp"
#include "kasm/model/zone.hpp"

namespace kasm::sched {

// What a policy may look at: the agent's capacity and what is already placed on it.
struct AgentLoad {
  Resources capacity;  // After operator overrides.
  Resources reserved;  // Held by sessions placed there.
  std::int32_t session_count = 0;
  std::uint64_t last_placed_seq = 0;  // Scheduler-wide sequence number of its latest placement.
};

// Ranks agents for placement: a pure function of one agent's load, higher is better. Because the
// score depends only on the agent (not on the request), the scheduler keeps agents ordered by it and
// a decision costs O(log N) instead of a scan. Ties are broken by a per-agent random salt drawn from
// the scheduler's injected Random, so decisions are reproducible for a given seed.
//
// Implementations must be thread-compatible (called under the scheduler's lock) and must not throw.
class PlacementPolicy {
 public:
  virtual ~PlacementPolicy() = default;
  virtual std::string_view name() const = 0;
  virtual std::int64_t score(const AgentLoad& load) const = 0;
};

// Dominant share of the agent in parts per million: max over CPU, memory and GPUs of reserved/capacity.
std::int64_t dominantLoadPpm(const AgentLoad& load) noexcept;

// The built-in policies, one per LoadStrategy:
//   least_load       lowest dominant share first (spreads load)
//   most_load        highest dominant share first (bin packing: frees whole agents)
//   fewest_sessions  fewest sessions first
//   most_sessions    most sessions first
//   spread           least recently placed first (round robin over fitting agents)
std::unique_ptr<PlacementPolicy> makePolicy(LoadStrategy strategy);

}  // namespace kasm::sched
