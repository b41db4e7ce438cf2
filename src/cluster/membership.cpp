#include "kasm/cluster/membership.hpp"

#include <algorithm>

#include "kasm/store/repository.hpp"

namespace kasm::cluster {

Result<bool> acquireLease(spi::Store& store, Clock& clock, const std::string& name, const ManagerNodeId& holder,
                          Duration ttl) {
  Repository repo(store);
  const TimePoint now = clock.now();
  auto cur = repo.get<Lease>(name);
  if (!cur.ok()) {
    if (cur.error().code() != ErrorCode::kNotFound) return cur.error();
    Lease l{name, holder, now + ttl, now, 1};
    auto made = repo.insert(l);
    if (made.ok()) return true;
    if (made.error().code() == ErrorCode::kAlreadyExists || made.error().code() == ErrorCode::kAborted) return false;
    return made.error();
  }
  Lease l = cur->value;
  if (l.holder != holder) {
    if (now < l.expires_at) return false;  // Someone else's, still valid.
    l.holder = holder;
    l.acquired_at = now;
    ++l.epoch;
  }
  l.expires_at = now + ttl;
  auto w = repo.update(l, cur->version);
  if (w.ok()) return true;
  if (w.error().code() == ErrorCode::kAborted) return false;  // Another manager renewed or took it first.
  return w.error();
}

Result<void> releaseLease(spi::Store& store, const std::string& name, const ManagerNodeId& holder) {
  Repository repo(store);
  auto cur = repo.get<Lease>(name);
  if (!cur.ok()) return cur.error().code() == ErrorCode::kNotFound ? Result<void>{} : Result<void>(cur.error());
  if (cur->value.holder != holder) return {};
  Lease l = cur->value;
  l.expires_at = fromUnixMillis(0);  // Expired: the next beat of another manager takes it.
  auto w = repo.update(l, cur->version);
  if (!w.ok() && w.error().code() != ErrorCode::kAborted) return w.error();
  return {};
}

Membership::Membership(spi::Store& store, Clock& clock, MembershipOptions options)
    : store_(store), clock_(clock), options_(std::move(options)), started_at_(clock.now()) {
  if (options_.id.empty()) options_.id = ManagerNodeId::generate();
}

Result<void> Membership::beat() {
  Repository repo(store_);
  const TimePoint began = clock_.now();
  // This manager's row: created at the first beat, heartbeat after; `enabled` is the administrator's.
  bool enabled = true;
  auto row = repo.get<ManagerNode>(options_.id.str());
  ManagerNode node;
  if (row.ok()) {
    node = row->value;
    enabled = node.enabled;
  } else if (row.error().code() == ErrorCode::kNotFound) {
    node.id = options_.id;
    node.hostname = options_.hostname;
    node.url = options_.url;
    node.version = options_.version;
    node.zones = options_.zones;
    node.started_at = started_at_;
  } else {
    return row.error();
  }

  KASM_ASSIGN_OR_RETURN(auto zones, repo.list<Zone>());
  std::map<ZoneId, TimePoint> before;
  {
    std::lock_guard lock(mu_);
    before = held_until_;
  }
  std::map<ZoneId, TimePoint> held;
  const bool leading_allowed = enabled && !stepped_down_.load();
  for (const auto& z : zones) {
    const ZoneId& id = z.value.id;
    const std::string name = "zone:" + id.str();
    const bool may =
        leading_allowed &&
        (options_.zones.empty() || std::find(options_.zones.begin(), options_.zones.end(), id) != options_.zones.end());
    if (!may) {
      // Only a lease this process took can be its to give back.
      if (before.count(id)) (void)releaseLease(store_, name, options_.id);
      continue;
    }
    auto got = acquireLease(store_, clock_, name, options_.id, options_.lease_ttl);
    if (got.ok() && *got) held[id] = began + options_.lease_ttl - options_.safety_margin;
  }
  {
    std::lock_guard lock(mu_);
    held_until_ = held;
  }
  node.leading.clear();
  for (const auto& [id, until] : held) node.leading.push_back(id);
  node.heartbeat_at = clock_.now();
  if (row.ok()) {
    KASM_RETURN_IF_ERROR(repo.update(node, row->version));
  } else {
    KASM_RETURN_IF_ERROR(repo.insert(node));
  }
  return {};
}

void Membership::stepDown() {
  stepped_down_ = true;
  std::map<ZoneId, TimePoint> held;
  {
    std::lock_guard lock(mu_);
    held.swap(held_until_);
  }
  for (const auto& [id, until] : held) (void)releaseLease(store_, "zone:" + id.str(), options_.id);
}

bool Membership::leads(const ZoneId& zone) const {
  std::lock_guard lock(mu_);
  auto it = held_until_.find(zone);
  return it != held_until_.end() && clock_.now() < it->second;
}

std::set<ZoneId> Membership::leading() const {
  std::lock_guard lock(mu_);
  std::set<ZoneId> out;
  const TimePoint now = clock_.now();
  for (const auto& [id, until] : held_until_) {
    if (now < until) out.insert(id);
  }
  return out;
}

}  // namespace kasm::cluster
