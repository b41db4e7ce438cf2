#include "kasm/sched/placement_policy.hpp"

#include <algorithm>
#include <climits>

namespace kasm::sched {
namespace {

std::int64_t share(std::int64_t used, std::int64_t cap) {
  if (cap <= 0) return used > 0 ? 1'000'000 : 0;
  // 64-bit division when the product fits (below about 8 TiB), which is several times cheaper than
  // the 128-bit one that stays exact for petabyte memory figures; both give the same quotient.
  if (used >= 0 && used <= INT64_MAX / 1'000'000) return used * 1'000'000 / cap;
  return static_cast<std::int64_t>((static_cast<__int128>(used) * 1'000'000) / cap);
}

class LeastLoad final : public PlacementPolicy {
 public:
  std::string_view name() const override { return "least_load"; }
  std::int64_t score(const AgentLoad& l) const override { return -dominantLoadPpm(l); }
};
class MostLoad final : public PlacementPolicy {
 public:
  std::string_view name() const override { return "most_load"; }
  std::int64_t score(const AgentLoad& l) const override { return dominantLoadPpm(l); }
};
class FewestSessions final : public PlacementPolicy {
 public:
  std::string_view name() const override { return "fewest_sessions"; }
  std::int64_t score(const AgentLoad& l) const override { return -static_cast<std::int64_t>(l.session_count); }
};
class MostSessions final : public PlacementPolicy {
 public:
  std::string_view name() const override { return "most_sessions"; }
  std::int64_t score(const AgentLoad& l) const override { return l.session_count; }
};
class Spread final : public PlacementPolicy {
 public:
  std::string_view name() const override { return "spread"; }
  std::int64_t score(const AgentLoad& l) const override { return -static_cast<std::int64_t>(l.last_placed_seq); }
};

}  // namespace

std::int64_t dominantLoadPpm(const AgentLoad& l) noexcept {
  std::int64_t s = std::max(share(l.reserved.millicores, l.capacity.millicores),
                            share(l.reserved.memory_bytes, l.capacity.memory_bytes));
  if (l.capacity.gpus > 0 || l.reserved.gpus > 0) s = std::max(s, share(l.reserved.gpus, l.capacity.gpus));
  return s;
}

std::unique_ptr<PlacementPolicy> makePolicy(LoadStrategy strategy) {
  switch (strategy) {
    case LoadStrategy::kLeastLoad: return std::make_unique<LeastLoad>();
    case LoadStrategy::kMostLoad: return std::make_unique<MostLoad>();
    case LoadStrategy::kFewestSessions: return std::make_unique<FewestSessions>();
    case LoadStrategy::kMostSessions: return std::make_unique<MostSessions>();
    case LoadStrategy::kSpread: return std::make_unique<Spread>();
  }
  return std::make_unique<LeastLoad>();
}

}  // namespace kasm::sched
