// The autoscaler's tick: per configuration, reconcile rows with the provider's listing, build the
// fleet as the planner sees it, plan, act (autoscaler_machines.cpp), record.

#include "kasm/autoscale/autoscaler.hpp"

#include <algorithm>
#include <set>

#include "autoscale/autoscaler_impl.hpp"

namespace kasm::autoscale {

Autoscaler::Autoscaler(spi::Store& store, Manager& manager, const spi::VmProviderRegistry& providers, Clock& clock,
                       AutoscalerOptions options)
    : impl_(std::make_unique<Impl>(store, manager, providers, clock, std::move(options))) {}

Autoscaler::~Autoscaler() = default;

std::vector<ConfigStatus> Autoscaler::status() const {
  std::lock_guard lock(impl_->status_mu);
  std::vector<ConfigStatus> out;
  for (const auto& [id, s] : impl_->statuses) out.push_back(s);
  return out;
}

std::vector<std::string> Autoscaler::providerNames() const {
  return impl_->providers.names();
}

Result<std::string> Autoscaler::sealSettings(std::string_view incoming, std::string_view stored) const {
  return sealProviderConfig(incoming, stored, impl_->options.secret_key);
}

Result<void> Autoscaler::checkSettings(const std::string& provider, std::string_view stored) const {
  KASM_ASSIGN_OR_RETURN(auto settings, unsealProviderConfig(stored, impl_->options.secret_key));
  auto made = impl_->providers.create(provider, settings);
  if (!made.ok()) return invalidArgument("provider_config_json: " + made.error().message());
  return {};
}

Result<TickReport> Autoscaler::tick(const std::set<ZoneId>* zones) {
  TickReport report;
  KASM_ASSIGN_OR_RETURN(auto configs, impl_->repo.list<AutoscaleConfig>());
  std::set<AutoscaleConfigId> live;
  for (const auto& c : configs) {
    live.insert(c.value.id);
    if (!c.value.enabled || (zones && !zones->count(c.value.zone_id))) continue;
    ++report.configs;
    impl_->tickConfig(c.value, report);
  }
  // Forget what belonged to configurations that are gone.
  std::erase_if(impl_->providers_made, [&](const auto& kv) { return !live.count(kv.first); });
  std::erase_if(impl_->backoff, [&](const auto& kv) { return !live.count(kv.first); });
  std::erase_if(impl_->reserved_history, [&](const auto& kv) { return !live.count(kv.first); });
  std::lock_guard lock(impl_->status_mu);
  std::erase_if(impl_->statuses, [&](const auto& kv) { return !live.count(kv.first); });
  return report;
}

Result<spi::VmProvider*> Autoscaler::Impl::providerFor(const AutoscaleConfig& c) {
  const std::string made_from = c.provider + "\n" + c.provider_config_json;
  auto& slot = providers_made[c.id];
  if (!slot.provider || slot.made_from != made_from) {
    slot.provider.reset();
    KASM_ASSIGN_OR_RETURN(auto settings, unsealProviderConfig(c.provider_config_json, options.secret_key));
    KASM_ASSIGN_OR_RETURN(slot.provider, providers.create(c.provider, settings));
    slot.made_from = made_from;
  }
  return slot.provider.get();
}

namespace {

std::string shortId(const AutoscaleVmId& id) {
  return id.str().substr(0, 8);
}

}  // namespace

void Autoscaler::Impl::tickConfig(const AutoscaleConfig& c, TickReport& report) {
  const TimePoint now = clock.now();
  if (auto b = backoff.find(c.id); b != backoff.end() && now < b->second.until) {
    if (b->second.made_from == c.provider + "\n" + c.provider_config_json) return;
    backoff.erase(b);  // Edited since it failed: try the new settings now.
  }
  auto made = providerFor(c);
  if (!made.ok()) return failed(c, "provider '" + c.provider + "' could not be made", made.error(), report);
  spi::VmProvider& provider = **made;
  auto zone = repo.get<Zone>(c.zone_id.str());
  const std::string zone_name = zone.ok() ? zone->value.name : c.zone_id.str();

  const std::map<std::string, std::string> tags = {{std::string(spi::vm_tags::kInstallation), options.installation_id},
                                                   {std::string(spi::vm_tags::kConfig), c.id.str()}};
  auto listed = provider.list(tags);
  if (!listed.ok()) return failed(c, "listing its machines failed", listed.error(), report);
  auto rows = repo.list<AutoscaleVm>(spi::Query().where("config_id", c.id.str()));
  if (!rows.ok()) return failed(c, "reading its machines failed", rows.error(), report);

  std::map<std::string, const spi::VmInstance*> by_row;
  for (const auto& inst : *listed) {
    if (inst.state == spi::VmState::kTerminated) continue;
    auto t = inst.tags.find(std::string(spi::vm_tags::kVm));
    if (t != inst.tags.end()) by_row[t->second] = &inst;
  }
  std::vector<std::string> actions;
  std::string error;

  // ---- machines tagged for this configuration without a row: destroyed after the grace period ----
  std::set<std::string> rows_known, listed_ids;
  for (const auto& r : *rows) rows_known.insert(r.value.id.str());
  for (const auto& [row_id, inst] : by_row) {
    listed_ids.insert(inst->id);
    if (rows_known.count(row_id)) continue;
    const TimePoint first = orphans_seen.emplace(inst->id, now).first->second;
    if (now - first < options.orphan_grace) continue;
    if (auto d = provider.destroy(inst->id); d.ok()) {
      actions.push_back("destroyed " + inst->id + ": tagged for this configuration, no row for " +
                        std::to_string(std::chrono::duration_cast<std::chrono::minutes>(now - first).count()) + " min");
      ++report.orphans_destroyed;
      orphans_seen.erase(inst->id);
    } else {
      error = "destroying orphan " + inst->id + ": " + d.error().message();
    }
  }
  std::erase_if(orphans_seen, [&](const auto& kv) { return !listed_ids.count(kv.first); });

  // ---- each row against the listing, and as the planner sees it ----
  PlannerInput in;
  in.config = c;
  if (auto tz = TimeZone::load(c.time_zone); tz.ok()) in.time_zone = std::move(*tz);
  in.now = now;
  in.zone_name = zone_name;
  std::map<std::string, Versioned<AutoscaleVm>> kept;
  std::set<std::string> own_agents, own_servers;
  Resources observed;
  for (auto vm : *rows) {
    auto& m = vm.value;
    if (m.agent_id) own_agents.insert(m.agent_id->str());
    if (m.server_id) own_servers.insert(m.server_id->str());
    auto it = by_row.find(m.id.str());
    const spi::VmInstance* inst = it == by_row.end() ? nullptr : it->second;
    if (m.phase == VmPhase::kDestroying) {
      auto d = destroyMachine(c, vm, provider, m.reason);
      if (d.ok() && *d) ++report.destroyed;
      if (!d.ok()) error = "destroying " + shortId(m.id) + ": " + d.error().message();
      continue;
    }
    if (m.instance_id.empty()) {
      if (inst) {  // The create was answered after all (or its answer was lost): adopt the machine.
        m.instance_id = inst->id;
        m.phase = VmPhase::kBooting;
        m.registration_token_sealed.clear();
        m.reason = "created; waiting for its agent to check in";
        (void)save(vm);
      } else if (m.phase == VmPhase::kCreating && now - m.created_at < c.provision_timeout) {
        auto r = createMachine(c, zone_name, provider, vm);
        if (!r.ok()) {
          error = "creating " + shortId(m.id) + " again: " + r.error().message();
        } else {
          vm.value = *r;
        }
      }
    } else if (!inst && m.phase != VmPhase::kMissing) {
      m.phase = VmPhase::kMissing;
      m.reason = "the provider no longer lists " + m.instance_id;
      (void)save(vm);
      if (m.agent_id) (void)manager.setAgentAvailability(*m.agent_id, false, true);
      actions.push_back("marked " + shortId(m.id) + " missing: " + m.reason);
      ++report.missing;
    }
    if (m.phase == VmPhase::kMissing) {
      // Gone with the machine: its row and agent go once no session is left on it.
      auto d = destroyMachine(c, vm, provider, m.reason);
      if (d.ok() && *d) actions.push_back("removed missing " + shortId(m.id));
      continue;
    }
    if (inst && !inst->private_address.empty() && inst->private_address != m.private_address) {
      m.private_address = inst->private_address;
      (void)save(vm);
    }

    FleetMember f;
    f.id = m.id;
    f.phase = m.phase;
    f.created_at = m.created_at;
    f.served = m.served;
    if (m.agent_id) {
      if (auto a = repo.get<Agent>(m.agent_id->str()); a.ok()) {
        const Agent& ag = a->value;
        f.checked_in = ag.status == AgentStatus::kOk && ag.last_checkin.has_value();
        f.sessions = ag.session_count;
        f.capacity = ag.capacity();
        f.available = ag.draining ? Resources{} : ag.available();
        if (f.checked_in) {
          observed.millicores = std::max(observed.millicores, f.capacity.millicores);
          observed.memory_bytes = std::max(observed.memory_bytes, f.capacity.memory_bytes);
          observed.gpus = std::max(observed.gpus, f.capacity.gpus);
        }
      }
    } else if (c.forServers()) {
      if (!m.server_id && inst && inst->state == spi::VmState::kRunning && !m.private_address.empty()) {
        Server s;
        s.friendly_name = "kasm-" + c.name + "-" + shortId(m.id);
        s.hostname = m.private_address;
        s.port = c.server_port;
        s.connection_type = c.server_connection_type;
        s.zone_id = c.zone_id;
        s.pool_id = c.pool_id;
        s.max_simultaneous_sessions = c.server_max_sessions;
        s.connection_username = c.server_connection_username;
        if (auto made_server = manager.upsertServer(s); made_server.ok()) {
          m.server_id = made_server->id;
          own_servers.insert(m.server_id->str());
          (void)save(vm);
        } else {
          error = "registering the server of " + shortId(m.id) + ": " + made_server.error().message();
        }
      }
      if (m.server_id) {
        if (auto s = repo.get<Server>(m.server_id->str()); s.ok()) {
          f.checked_in = s->value.status == ServerStatus::kRunning;
          f.sessions = static_cast<std::int32_t>(s->value.slots.size());
          f.free_sessions = s->value.enabled ? std::max(0, s->value.max_simultaneous_sessions - f.sessions) : 0;
        }
      }
    }
    if (!c.require_checkin && inst && inst->state == spi::VmState::kRunning) f.checked_in = true;

    // Phases and idleness follow what was seen.
    bool changed = false;
    if ((m.phase == VmPhase::kBooting || m.phase == VmPhase::kCreating) && f.checked_in && !m.instance_id.empty()) {
      m.phase = VmPhase::kReady;
      m.ready_at = now;
      m.reason = "ready " +
                 std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - m.created_at).count()) +
                 " s after it was made";
      changed = true;
    }
    if (m.phase == VmPhase::kReady) {
      if (f.sessions == 0 && !m.idle_since) {
        m.idle_since = now;
        changed = true;
      } else if (f.sessions > 0 && (m.idle_since || !m.served)) {
        m.idle_since.reset();
        m.served = true;
        changed = true;
      }
    }
    if (changed) (void)save(vm);
    f.phase = m.phase;
    f.idle_since = m.idle_since;
    f.served = m.served;
    in.fleet.push_back(f);
    kept.emplace(m.id.str(), vm);
  }

  // ---- the rest of the zone ----
  if (c.forServers()) {
    if (auto servers = repo.list<Server>(spi::Query().where("pool_id", c.pool_id->str())); servers.ok()) {
      for (const auto& s : *servers) {
        if (own_servers.count(s.value.id.str()) || !s.value.enabled || s.value.status != ServerStatus::kRunning)
          continue;
        in.other_free_sessions +=
            std::max(0, s.value.max_simultaneous_sessions - static_cast<std::int32_t>(s.value.slots.size()));
      }
    }
  } else {
    Resources reserved;
    if (auto agents = repo.list<Agent>(spi::Query().where("zone_id", c.zone_id.str())); agents.ok()) {
      for (const auto& a : *agents) {
        const Agent& ag = a.value;
        reserved += ag.reserved;
        if (own_agents.count(ag.id.str()) || !ag.enabled || ag.draining || ag.status != AgentStatus::kOk) continue;
        in.other_available += ag.available();
      }
    }
    // Growth of what sessions hold over the last window, and how long machines took to check in.
    auto& history = reserved_history[c.id];
    history.emplace_back(now, reserved);
    while (history.size() > 1 && now - history.front().first > in.growth_window) history.pop_front();
    if (history.size() > 1) {
      in.growth = reserved - history.front().second;
      in.growth_window = now - history.front().first;
    }
    Duration booted{};
    int boots = 0;
    for (const auto& [id, vm] : kept) {
      if (vm.value.ready_at) {
        booted += *vm.value.ready_at - vm.value.created_at;
        ++boots;
      }
    }
    if (boots > 0) in.boot_time = booted / boots;
    const auto demand = manager.unplacedDemand(c.zone_id, options.demand_window);
    in.unplaced = demand.resources;
  }
  in.machine_capacity = {c.agent_overrides.millicores.value_or(observed.millicores),
                         c.agent_overrides.memory_bytes.value_or(observed.memory_bytes),
                         c.agent_overrides.gpus.value_or(observed.gpus)};
  for (const auto& [id, vm] : kept) {
    if (!in.last_scale_up || vm.value.created_at > *in.last_scale_up) in.last_scale_up = vm.value.created_at;
  }

  // ---- plan and act ----
  const Plan p = plan(in);
  bool provider_failed = false;
  for (const auto& a : p.actions) {
    if (provider_failed) break;
    if (a.kind == ActionKind::kCreate) {
      auto r = createMachine(c, zone_name, provider);
      if (!r.ok()) {
        error = "creating a machine: " + r.error().message();
        provider_failed = true;
        failed(c, "creating a machine failed", r.error(), report);
        break;
      }
      ++report.created;
      actions.push_back("made " + shortId(r->id) + (r->instance_id.empty() ? "" : " (" + r->instance_id + ")") + ": " +
                        a.reason);
      continue;
    }
    auto it = kept.find(a.vm->str());
    if (it == kept.end()) continue;
    if (a.kind == ActionKind::kDrain) {
      auto r = drainMachine(c, it->second, provider, a.reason);
      if (!r.ok()) {
        error = "draining " + shortId(*a.vm) + ": " + r.error().message();
        continue;
      }
      ++report.drained;
      actions.push_back("drained " + shortId(*a.vm) + (*r ? " and destroyed it" : "") + ": " + a.reason);
      if (*r) ++report.destroyed;
    } else {
      auto r = destroyMachine(c, it->second, provider, a.reason);
      if (!r.ok()) {
        error = "destroying " + shortId(*a.vm) + ": " + r.error().message();
        continue;
      }
      if (*r) {
        ++report.destroyed;
        actions.push_back("destroyed " + shortId(*a.vm) + ": " + a.reason);
      }
    }
  }
  if (!provider_failed && error.empty()) succeeded(c);
  if (!error.empty() && !provider_failed) ++report.errors;
  record(c, p.summary, actions, error);
}

}  // namespace kasm::autoscale
