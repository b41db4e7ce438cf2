#include "kasm/sched/scheduler.hpp"

#include <algorithm>
#include <array>
#include <functional>
#include <set>
#include <string_view>
#include <unordered_map>

#include "sched/fit_tree.hpp"
#include "sched/name_index.hpp"

namespace kasm::sched {
namespace {

constexpr std::uint32_t kNone = detail::NameIndex::kAbsent;

using detail::Key;

// The zones a decision searches, in order; no heap allocation for up to 16 zones.
class ZoneList {
 public:
  void push_back(std::uint32_t z) {
    if (n_ < inline_.size())
      inline_[n_] = z;
    else
      heap_.push_back(z);
    ++n_;
  }
  std::uint32_t operator[](std::size_t i) const { return i < inline_.size() ? inline_[i] : heap_[i - inline_.size()]; }
  std::size_t size() const { return n_; }
  std::uint32_t front() const { return (*this)[0]; }
  bool contains(std::uint32_t z) const {
    for (std::size_t i = 0; i < n_; ++i) {
      if ((*this)[i] == z) return true;
    }
    return false;
  }

 private:
  std::array<std::uint32_t, 16> inline_{};
  std::vector<std::uint32_t> heap_;
  std::size_t n_ = 0;
};

bool labelsMatch(const std::map<std::string, std::string>& have, const std::map<std::string, std::string>& include,
                 const std::map<std::string, std::string>& exclude) {
  for (const auto& [k, v] : include) {
    auto it = have.find(k);
    if (it == have.end() || (v != "*" && it->second != v)) return false;
  }
  for (const auto& [k, v] : exclude) {
    auto it = have.find(k);
    if (it != have.end() && (v == "*" || it->second == v)) return false;
  }
  return true;
}

}  // namespace

AgentEntry AgentEntry::fromAgent(const Agent& a) {
  AgentEntry e;
  e.id = a.id;
  e.zone = a.zone_id;
  e.kind = a.kind;
  e.labels = a.labels;
  e.images = a.images;
  e.capacity = a.capacity();
  e.reserved = a.reserved;
  e.session_count = a.session_count;
  e.enabled = a.enabled;
  e.draining = a.draining;
  e.alive = a.status == AgentStatus::kOk;
  return e;
}

// How messages name a zone: by its name, the id beside it when the two differ.
static std::string zoneLabel(const ZoneRules& z) {
  if (z.name.empty() || z.name == z.id.str()) return z.id.str();
  return z.name + " (" + z.id.str() + ")";
}

ZoneRules ZoneRules::fromZone(const Zone& z) {
  ZoneRules r;
  r.id = z.id;
  r.name = z.name;
  r.strategy = z.load_strategy;
  r.search_alternate_zones = z.search_alternate_zones;
  r.prioritize_static_agents = z.prioritize_static_agents;
  return r;
}

struct Scheduler::Impl {
  struct Slot {
    AgentEntry e;
    bool used = false;
    std::uint32_t zone = kNone;
    std::uint32_t pool = kNone;
    std::uint32_t salt = 0;
    std::uint64_t last_seq = 0;
    std::int64_t score = 0;
    bool indexed = false;
  };
  struct Pool {
    std::uint32_t zone;
    AgentKind kind;
    std::map<std::string, std::string> labels;
    std::vector<std::string> images;       // Sorted.
    std::vector<std::uint32_t> image_ids;  // Interned, sorted: the hot-path membership test.
    detail::FitTree ordered;               // Available agents, best first, with their free resources.
    std::uint32_t members = 0;
    bool hasImage(const std::string& image) const { return std::binary_search(images.begin(), images.end(), image); }
    bool hasImageId(std::uint32_t id) const { return std::binary_search(image_ids.begin(), image_ids.end(), id); }
  };
  struct ZoneState {
    ZoneRules rules;
    std::unique_ptr<PlacementPolicy> owned;
    const PlacementPolicy* policy = nullptr;
    bool exists = false;
    std::vector<std::uint32_t> pools;
  };

  explicit Impl(Random& r) : random(r) {}

  Random& random;
  std::vector<Slot> slots;
  std::vector<std::uint32_t> free_slots;
  std::unordered_map<AgentId, std::uint32_t> by_id;
  std::vector<ZoneState> zones;
  detail::NameIndex zone_index;  // Zone id -> index into `zones` (the same dense order).
  std::vector<Pool> pools;
  std::unordered_map<std::string, std::uint32_t> pool_index;
  std::uint64_t seq = 0;
  detail::NameIndex image_index;  // Image reference -> interned id.

  // The tier of each pool for a request depends only on the zone (its pools and rules), the image,
  // whether pulling is allowed and the label filter, so the split of a zone's pools into the four
  // tiers is cached and rebuilt when pools or rules change. Whether a pool has an agent free enough
  // is left to its tree. Each split records what it was built for, so a hash collision only costs
  // a rebuild.
  struct TierSplit {
    std::array<std::vector<std::uint32_t>, 4> tiers;
    std::uint32_t zone = kNone;
    std::uint32_t image_id = kNone;
    bool has_image = false;
    bool allow_pull = false;
    std::map<std::string, std::string> include_labels;
    std::map<std::string, std::string> exclude_labels;

    bool builtFor(std::uint32_t z, std::uint32_t image, const PlacementRequest& r) const {
      return zone == z && image_id == image && has_image == !r.image.empty() && allow_pull == r.allow_pull &&
             include_labels == r.include_labels && exclude_labels == r.exclude_labels;
    }
  };
  // Bounds the cache against requests with ever new label filters.
  static constexpr std::size_t kMaxTierSplits = 4096;
  mutable std::unordered_map<std::uint64_t, TierSplit> tier_cache;
  mutable TierSplit uncached_split;  // For the rare key already taken by another request's split.
  void invalidateTiers() { tier_cache.clear(); }

  static std::uint64_t tierKey(std::uint32_t z, std::uint32_t image_id, const PlacementRequest& r) {
    std::uint64_t h = (std::uint64_t{z} << 34) ^ (std::uint64_t{image_id} << 2) ^ (r.image.empty() ? 0u : 2u) ^
                      (r.allow_pull ? 1u : 0u);
    if (r.include_labels.empty() && r.exclude_labels.empty()) return h;
    auto mix = [&h](std::string_view text) {
      h = (h ^ std::hash<std::string_view>{}(text)) * 0xff51afd7ed558ccdull;
      h ^= h >> 32;
    };
    for (const auto& [k, v] : r.include_labels) {
      mix(k);
      mix(v);
    }
    mix("\x1f");  // Between the two filters, so {a: b} included differs from {a: b} excluded.
    for (const auto& [k, v] : r.exclude_labels) {
      mix(k);
      mix(v);
    }
    return h;
  }

  const TierSplit& tierSplit(std::uint32_t z, std::uint32_t image_id, const PlacementRequest& r) const {
    const std::uint64_t key = tierKey(z, image_id, r);
    auto it = tier_cache.find(key);
    if (it != tier_cache.end() && it->second.builtFor(z, image_id, r)) return it->second;
    TierSplit split;
    split.zone = z;
    split.image_id = image_id;
    split.has_image = !r.image.empty();
    split.allow_pull = r.allow_pull;
    split.include_labels = r.include_labels;
    split.exclude_labels = r.exclude_labels;
    const bool by_kind = zones[z].rules.prioritize_static_agents;
    for (std::uint32_t pi : zones[z].pools) {
      const Pool& p = pools[pi];
      if (!labelsMatch(p.labels, r.include_labels, r.exclude_labels)) continue;
      int image_tier = 0;
      if (split.has_image && (image_id == kNone || !p.hasImageId(image_id))) {
        if (!r.allow_pull) continue;
        image_tier = 1;
      }
      split.tiers[static_cast<std::size_t>((by_kind && p.kind == AgentKind::kAutoscaled ? 2 : 0) + image_tier)]
          .push_back(pi);
    }
    if (it != tier_cache.end()) {
      uncached_split = std::move(split);
      return uncached_split;
    }
    if (tier_cache.size() >= kMaxTierSplits) tier_cache.clear();
    return tier_cache.emplace(key, std::move(split)).first->second;
  }
  std::vector<std::uint32_t> sorted_zones;  // Zone indexes by zone id, for alternate-zone search.

  void resortZones() {
    std::vector<std::pair<std::string, std::uint32_t>> named;
    for (std::uint32_t idx = 0; idx < zone_index.size(); ++idx) named.emplace_back(zone_index.name(idx), idx);
    std::sort(named.begin(), named.end());
    sorted_zones.clear();
    for (const auto& [name, idx] : named) sorted_zones.push_back(idx);
  }

  std::uint32_t internZone(const ZoneId& id) {
    const std::uint32_t idx = zone_index.intern(id.str());
    if (idx == zones.size()) {
      zones.emplace_back();
      zones.back().rules.id = id;
      resortZones();
    }
    return idx;
  }

  std::uint32_t internPool(std::uint32_t zone, const AgentEntry& e, std::vector<std::string> images) {
    std::sort(images.begin(), images.end());
    images.erase(std::unique(images.begin(), images.end()), images.end());
    std::string key = std::to_string(zone) + '\x1f' + (e.kind == AgentKind::kStatic ? 's' : 'a') + '\x1f';
    for (const auto& [k, v] : e.labels) key += k + '\x1e' + v + '\x1d';
    key += '\x1f';
    for (const auto& i : images) key += i + '\x1d';
    auto [it, inserted] = pool_index.try_emplace(std::move(key), static_cast<std::uint32_t>(pools.size()));
    if (inserted) {
      std::vector<std::uint32_t> ids;
      for (const auto& i : images) ids.push_back(image_index.intern(i));
      std::sort(ids.begin(), ids.end());
      pools.push_back(Pool{zone, e.kind, e.labels, std::move(images), std::move(ids), {}, 0});
      invalidateTiers();
      zones[zone].pools.push_back(it->second);
    }
    return it->second;
  }

  bool available(const Slot& s) const { return s.e.enabled && !s.e.draining && s.e.alive && zones[s.zone].exists; }

  std::int64_t scoreOf(const Slot& s) const {
    const PlacementPolicy* p = zones[s.zone].policy;
    if (!p) return 0;
    return p->score(AgentLoad{s.e.capacity, s.e.reserved, s.e.session_count, s.last_seq});
  }

  Key keyOf(std::uint32_t i) const { return Key{-slots[i].score, slots[i].salt, i}; }

  void unindex(std::uint32_t i) {
    Slot& s = slots[i];
    if (s.indexed) {
      pools[s.pool].ordered.erase(keyOf(i));
      s.indexed = false;
    }
  }

  void index(std::uint32_t i) {
    Slot& s = slots[i];
    if (!available(s)) return;
    s.score = scoreOf(s);
    pools[s.pool].ordered.insert(keyOf(i), (s.e.capacity - s.e.reserved).clampedAtZero());
    s.indexed = true;
  }

  void rekeyZone(std::uint32_t zone) {
    for (std::uint32_t p : zones[zone].pools) {
      std::vector<Key> members;
      pools[p].ordered.collect(members);
      pools[p].ordered.clear();
      for (const Key& k : members) slots[k.slot].indexed = false;
    }
    for (std::uint32_t i = 0; i < slots.size(); ++i) {
      if (slots[i].used && slots[i].zone == zone) {
        unindex(i);
        index(i);
      }
    }
  }

  bool fits(const Slot& s, const Resources& need) const { return (s.e.capacity - s.e.reserved).fits(need); }

  // The zone a request names first (its restriction, else the zone asked for), or an error for an
  // unknown zone.
  Result<std::uint32_t> firstZone(const PlacementRequest& r) const {
    const ZoneId& first = r.restrict_to_zone ? *r.restrict_to_zone : r.zone;
    if (first.empty()) return invalidArgument("placement: no zone given");
    const std::uint32_t idx = zone_index.find(first.str());
    if (idx == detail::NameIndex::kAbsent || !zones[idx].exists)
      return notFound("zone '" + first.str() + "' does not exist");
    return idx;
  }

  bool searchesAlternates(const PlacementRequest& r, std::uint32_t first) const {
    return !r.restrict_to_zone && zones[first].rules.search_alternate_zones;
  }

  // The zones to search, in order, starting at `first`.
  ZoneList zoneOrder(const PlacementRequest& r, std::uint32_t first) const {
    ZoneList order;
    order.push_back(first);
    if (searchesAlternates(r, first)) {
      for (std::uint32_t idx : sorted_zones) {
        if (idx != first && zones[idx].exists) order.push_back(idx);
      }
    }
    return order;
  }

  Placement placementOf(std::uint32_t i, const PlacementRequest& r) const {
    const Slot& s = slots[i];
    const Pool& p = pools[s.pool];
    return Placement{s.e.id, s.e.zone, !r.image.empty() && !p.hasImage(r.image)};
  }

  struct Choice {
    std::uint32_t slot;
    bool needs_pull;
  };

  // The best agent of zone `z` for `r`: tier by tier (static before autoscaled when the zone says
  // so, agents with the image before those that would pull it), the best key over the tier's pools.
  std::optional<Choice> chooseInZone(std::uint32_t z, const PlacementRequest& r, std::uint32_t image_id) const {
    const TierSplit& split = tierSplit(z, image_id, r);
    for (std::size_t t = 0; t < 4; ++t) {
      std::optional<Key> best;
      for (std::uint32_t pi : split.tiers[t]) {
        if (auto k = pools[pi].ordered.firstFit(r.resources, best)) best = k;
      }
      if (best) return Choice{best->slot, (t % 2) == 1};
    }
    return std::nullopt;
  }

  // On success, `*slot_out` is the chosen slot (so place() can reserve without a lookup). The
  // alternate zones are only listed when the first one cannot take the session.
  Result<Placement> chooseIndexed(const PlacementRequest& r, std::uint32_t* slot_out = nullptr) const {
    KASM_ASSIGN_OR_RETURN(const std::uint32_t first, firstZone(r));
    if (r.restrict_to_agent) return chooseAgent(r, zoneOrder(r, first), searchesAlternates(r, first));
    const std::uint32_t image_id = r.image.empty() ? kNone : image_index.find(r.image);
    std::optional<Choice> choice = chooseInZone(first, r, image_id);
    if (!choice && searchesAlternates(r, first)) {
      for (std::uint32_t z : sorted_zones) {
        if (z == first || !zones[z].exists) continue;
        if ((choice = chooseInZone(z, r, image_id))) break;
      }
    }
    if (!choice) return explain(r, zoneOrder(r, first), searchesAlternates(r, first));
    if (slot_out) *slot_out = choice->slot;
    const Slot& chosen = slots[choice->slot];
    return Placement{chosen.e.id, chosen.e.zone, choice->needs_pull};
  }

  // Moves slot i to its new rank after its reservations changed: one re-key in its pool's tree,
  // done in place when the agent stays in the same leaf.
  void reindex(std::uint32_t i, const Key& before) {
    Slot& s = slots[i];
    if (!s.indexed || !available(s)) {
      if (s.indexed) {
        pools[s.pool].ordered.erase(before);
        s.indexed = false;
      }
      index(i);
      return;
    }
    s.score = scoreOf(s);
    pools[s.pool].ordered.rekey(before, keyOf(i), (s.e.capacity - s.e.reserved).clampedAtZero());
  }

  void reserveSlot(std::uint32_t i, const Resources& resources) {
    const Key before = keyOf(i);
    auto& s = slots[i];
    s.e.reserved += resources;
    s.e.session_count += 1;
    s.last_seq = ++seq;
    reindex(i, before);
  }

  Result<Placement> chooseScan(const PlacementRequest& r) const {
    KASM_ASSIGN_OR_RETURN(const std::uint32_t first, firstZone(r));
    const bool alternates = searchesAlternates(r, first);
    const ZoneList order = zoneOrder(r, first);
    if (r.restrict_to_agent) return chooseAgent(r, order, alternates);
    for (std::size_t zi = 0; zi < order.size(); ++zi) {
      const std::uint32_t z = order[zi];
      const bool by_kind = zones[z].rules.prioritize_static_agents;
      std::array<std::optional<Key>, 4> best;
      for (std::uint32_t i = 0; i < slots.size(); ++i) {
        const Slot& s = slots[i];
        if (!s.used || s.zone != z || !available(s) || !fits(s, r.resources)) continue;
        const Pool& p = pools[s.pool];
        if (!labelsMatch(p.labels, r.include_labels, r.exclude_labels)) continue;
        int image_tier = 0;
        if (!r.image.empty() && !p.hasImage(r.image)) {
          if (!r.allow_pull) continue;
          image_tier = 1;
        }
        const int t = (by_kind && p.kind == AgentKind::kAutoscaled ? 2 : 0) + image_tier;
        Key k{-scoreOf(s), s.salt, i};
        if (!best[t] || k < *best[t]) best[t] = k;
      }
      for (const auto& b : best) {
        if (b) return placementOf(b->slot, r);
      }
    }
    return explain(r, order, alternates);
  }

  Result<Placement> chooseAgent(const PlacementRequest& r, const ZoneList& order, bool alternates) const {
    auto it = by_id.find(*r.restrict_to_agent);
    if (it == by_id.end())
      return notFound("agent '" + r.restrict_to_agent->str() + "' (the workspace's restriction) does not exist");
    const Slot& s = slots[it->second];
    const bool zone_ok = order.contains(s.zone);
    const Pool& p = pools[s.pool];
    const bool image_ok = r.image.empty() || r.allow_pull || p.hasImage(r.image);
    if (zone_ok && available(s) && fits(s, r.resources) && image_ok &&
        labelsMatch(p.labels, r.include_labels, r.exclude_labels)) {
      return placementOf(it->second, r);
    }
    return explain(r, order, alternates);
  }

  Error explain(const PlacementRequest& r, const ZoneList& order, bool alternates) const {
    std::string msg = "no agent can take a session needing " + r.resources.toString();
    if (r.restrict_to_agent) msg += " on agent " + r.restrict_to_agent->str() + " (the workspace's restriction)";
    msg += ":";
    for (std::size_t zi = 0; zi < order.size(); ++zi) {
      const std::uint32_t z = order[zi];
      int total = 0, disabled = 0, draining = 0, gone = 0, labels = 0, image = 0, cores = 0, memory = 0, gpus = 0;
      for (std::uint32_t i = 0; i < slots.size(); ++i) {
        const Slot& s = slots[i];
        if (!s.used || s.zone != z) continue;
        if (r.restrict_to_agent && s.e.id != *r.restrict_to_agent) continue;
        ++total;
        if (!s.e.enabled) {
          ++disabled;
          continue;
        }
        if (s.e.draining) {
          ++draining;
          continue;
        }
        if (!s.e.alive) {
          ++gone;
          continue;
        }
        const Pool& p = pools[s.pool];
        if (!labelsMatch(p.labels, r.include_labels, r.exclude_labels)) {
          ++labels;
          continue;
        }
        if (!r.image.empty() && !r.allow_pull && !p.hasImage(r.image)) {
          ++image;
          continue;
        }
        const Resources free = (s.e.capacity - s.e.reserved).clampedAtZero();
        if (free.millicores < r.resources.millicores) ++cores;
        if (free.memory_bytes < r.resources.memory_bytes) ++memory;
        if (free.gpus < r.resources.gpus) ++gpus;
      }
      msg += (zi ? "; zone " : " zone ") + zoneLabel(zones[z].rules) + " ";
      if (total == 0) {
        msg += "has no agents";
        continue;
      }
      msg += "(" + std::to_string(total) + " agent" + (total == 1 ? "" : "s") + "):";
      std::vector<std::string> parts;
      auto add = [&](int n, const std::string& what) {
        if (n > 0) parts.push_back(std::to_string(n) + " " + what);
      };
      add(disabled, "disabled");
      add(draining, "draining");
      add(gone, "missing or dead");
      add(labels, "excluded by labels");
      add(image, "lack image " + r.image + " (pulling not allowed)");
      add(cores, "lack " + std::to_string(r.resources.millicores / 1000.0).substr(0, 5) + " free cores");
      add(memory, "lack " + std::to_string(r.resources.memory_bytes / Resources::kMiB) + " MiB free memory");
      add(gpus, "lack " + std::to_string(r.resources.gpus) + " free GPUs");
      for (std::size_t i = 0; i < parts.size(); ++i) msg += (i ? ", " : " ") + parts[i];
    }
    if (r.restrict_to_zone) {
      msg += "; the workspace is restricted to this zone";
    } else if (!alternates) {
      msg += "; alternate zones not searched (zone " + zoneLabel(zones[order.front()].rules) + " does not allow it)";
    }
    return resourceExhausted(std::move(msg));
  }
};

Scheduler::Scheduler(Random& random) : impl_(std::make_unique<Impl>(random)) {}
Scheduler::~Scheduler() = default;

void Scheduler::upsertZone(const ZoneRules& rules) {
  const std::uint32_t z = impl_->internZone(rules.id);
  auto& zs = impl_->zones[z];
  zs.rules = rules;
  zs.exists = true;
  impl_->invalidateTiers();
  if (rules.custom_policy) {
    zs.owned.reset();
    zs.policy = rules.custom_policy.get();
  } else {
    zs.owned = makePolicy(rules.strategy);
    zs.policy = zs.owned.get();
  }
  impl_->rekeyZone(z);
}

void Scheduler::removeZone(const ZoneId& zone) {
  const std::uint32_t idx = impl_->zone_index.find(zone.str());
  if (idx == detail::NameIndex::kAbsent) return;
  impl_->zones[idx].exists = false;
  impl_->rekeyZone(idx);
}

Result<void> Scheduler::upsertAgent(const AgentEntry& entry) {
  if (entry.id.empty()) return invalidArgument("agent.id must not be empty");
  if (entry.zone.empty()) return invalidArgument("agent.zone_id must not be empty");
  KASM_RETURN_IF_ERROR(entry.capacity.validate("agent.capacity"));
  auto& im = *impl_;
  std::uint32_t i;
  auto it = im.by_id.find(entry.id);
  if (it != im.by_id.end()) {
    i = it->second;
    im.unindex(i);
    im.pools[im.slots[i].pool].members--;
  } else {
    if (!im.free_slots.empty()) {
      i = im.free_slots.back();
      im.free_slots.pop_back();
    } else {
      i = static_cast<std::uint32_t>(im.slots.size());
      im.slots.emplace_back();
    }
    im.slots[i] = Impl::Slot{};
    im.slots[i].used = true;
    im.slots[i].salt = static_cast<std::uint32_t>(im.random.next() >> 32);
    im.by_id.emplace(entry.id, i);
  }
  auto& s = im.slots[i];
  s.e = entry;
  s.zone = im.internZone(entry.zone);
  s.pool = im.internPool(s.zone, entry, entry.images);
  s.e.images.clear();  // Kept once, in the pool.
  im.pools[s.pool].members++;
  im.index(i);
  return {};
}

void Scheduler::removeAgent(const AgentId& id) {
  auto& im = *impl_;
  auto it = im.by_id.find(id);
  if (it == im.by_id.end()) return;
  const std::uint32_t i = it->second;
  im.unindex(i);
  im.pools[im.slots[i].pool].members--;
  im.slots[i] = Impl::Slot{};
  im.free_slots.push_back(i);
  im.by_id.erase(it);
}

std::optional<AgentEntry> Scheduler::agent(const AgentId& id) const {
  auto it = impl_->by_id.find(id);
  if (it == impl_->by_id.end()) return std::nullopt;
  const auto& s = impl_->slots[it->second];
  AgentEntry e = s.e;
  e.images = impl_->pools[s.pool].images;
  return e;
}

std::size_t Scheduler::agentCount() const {
  return impl_->by_id.size();
}

Result<Placement> Scheduler::choose(const PlacementRequest& request) const {
  KASM_RETURN_IF_ERROR(request.resources.validate("request.resources"));
  return impl_->chooseIndexed(request);
}

Result<Placement> Scheduler::chooseByScan(const PlacementRequest& request) const {
  KASM_RETURN_IF_ERROR(request.resources.validate("request.resources"));
  return impl_->chooseScan(request);
}

Result<Placement> Scheduler::place(const PlacementRequest& request) {
  KASM_RETURN_IF_ERROR(request.resources.validate("request.resources"));
  std::uint32_t slot = kNone;
  // Returned as it came (no unwrapping and rewrapping of the placement's two ids).
  Result<Placement> chosen = impl_->chooseIndexed(request, &slot);
  if (!chosen.ok()) return chosen;
  if (slot == kNone) {
    KASM_RETURN_IF_ERROR(reserve(chosen->agent, request.resources));  // Chosen through an agent restriction.
  } else {
    impl_->reserveSlot(slot, request.resources);
  }
  return chosen;
}

Result<void> Scheduler::reserve(const AgentId& id, const Resources& resources) {
  auto& im = *impl_;
  auto it = im.by_id.find(id);
  if (it == im.by_id.end()) return notFound("agent '" + id.str() + "' is not known to the scheduler");
  im.reserveSlot(it->second, resources);
  return {};
}

Result<void> Scheduler::release(const AgentId& id, const Resources& resources) {
  auto& im = *impl_;
  auto it = im.by_id.find(id);
  if (it == im.by_id.end()) return notFound("agent '" + id.str() + "' is not known to the scheduler");
  const std::uint32_t i = it->second;
  const Key before = im.keyOf(i);
  auto& s = im.slots[i];
  s.e.reserved = (s.e.reserved - resources).clampedAtZero();
  s.e.session_count = std::max(0, s.e.session_count - 1);
  im.reindex(i, before);
  return {};
}

std::optional<std::pair<std::int64_t, std::uint64_t>> Scheduler::rankOf(const AgentId& id) const {
  auto it = impl_->by_id.find(id);
  if (it == impl_->by_id.end()) return std::nullopt;
  const auto& s = impl_->slots[it->second];
  return std::make_pair(impl_->scoreOf(s), s.salt);
}

}  // namespace kasm::sched
