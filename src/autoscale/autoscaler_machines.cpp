// The autoscaler's hands: making, draining and destroying machines, backoff and the decision log.

#include <algorithm>

#include "autoscale/autoscaler_impl.hpp"
#include "kasm/auth/seal.hpp"
#include "kasm/autoscale/startup_script.hpp"

namespace kasm::autoscale {

namespace {

constexpr std::string_view kTokenPurpose = "autoscale-registration";

std::string machineName(const AutoscaleConfig& c, const AutoscaleVmId& id) {
  std::string name = "kasm-";
  for (char ch : c.name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    name.push_back(ok || (ch >= 'a' && ch <= 'z') ? ch : '-');
    if (name.size() >= 40) break;
  }
  return name + "-" + id.str().substr(0, 8);
}

std::string kindOf(const std::string& summary) {
  // "zone east: +2 agents, ..." -> "+"; "zone east: steady, ..." -> "steady".
  const auto colon = summary.find(": ");
  if (colon == std::string::npos) return summary;
  const std::string rest = summary.substr(colon + 2);
  if (!rest.empty() && (rest[0] == '+' || rest[0] == '-')) return rest.substr(0, 1);
  return rest.substr(0, rest.find_first_of(",:"));
}

}  // namespace

Result<void> Autoscaler::Impl::save(Versioned<AutoscaleVm>& vm) {
  vm.value.updated_at = clock.now();
  KASM_ASSIGN_OR_RETURN(vm.version, repo.update(vm.value, vm.version));
  return {};
}

Result<AutoscaleVm> Autoscaler::Impl::createMachine(const AutoscaleConfig& c, const std::string& zone_name,
                                                    spi::VmProvider& provider,
                                                    std::optional<Versioned<AutoscaleVm>> retry) {
  const TimePoint now = clock.now();
  Versioned<AutoscaleVm> vm;
  std::string token;
  if (retry) {
    vm = *retry;
    if (!vm.value.registration_token_sealed.empty()) {
      KASM_ASSIGN_OR_RETURN(token, auth::unseal(options.secret_key, kTokenPurpose, vm.value.registration_token_sealed));
    }
  } else {
    AutoscaleVm& m = vm.value;
    m.id = AutoscaleVmId::generate();
    m.config_id = c.id;
    m.zone_id = c.zone_id;
    m.provider = c.provider;
    m.phase = VmPhase::kCreating;
    m.created_at = m.updated_at = now;
    m.reason = "being created";
    if (!c.forServers()) {
      Agent a;
      a.hostname = machineName(c, m.id);
      a.zone_id = c.zone_id;
      a.kind = AgentKind::kAutoscaled;
      a.autoscale_config_id = c.id;
      a.labels = c.agent_labels;
      a.overrides = c.agent_overrides;
      a.publish_networks = c.agent_publish_networks;
      KASM_ASSIGN_OR_RETURN(auto reg, manager.registerAgent(a, now + c.provision_timeout));
      m.agent_id = reg.agent.id;
      token = std::move(reg.token);
      auto sealed = auth::seal(options.secret_key, kTokenPurpose, token);
      if (!sealed.ok()) {
        (void)manager.removeAgent(*m.agent_id);
        return sealed.error().withContext("sealing the registration token");
      }
      m.registration_token_sealed = *sealed;
    }
    auto inserted = repo.insert(m);
    if (!inserted.ok()) {
      if (m.agent_id) (void)manager.removeAgent(*m.agent_id);
      return inserted.error();
    }
    vm.version = *inserted;
  }
  AutoscaleVm& m = vm.value;
  const std::string server_id = m.agent_id ? m.agent_id->str() : m.id.str();
  auto script = renderStartupScript(c.startup_script, {{"server_id", server_id},
                                                       {"registration_token", token},
                                                       {"upstream_address", options.upstream_address},
                                                       {"provider_name", c.provider},
                                                       {"zone_name", zone_name},
                                                       {"config_name", c.name}});
  auto undo = [&] {
    (void)repo.remove<AutoscaleVm>(m.id.str());
    if (m.agent_id) (void)manager.removeAgent(*m.agent_id);
  };
  if (!script.ok()) {
    undo();
    return script.error().withContext("startup_script");
  }
  spi::VmSpec spec;
  spec.name = machineName(c, m.id);
  spec.client_token = m.id.str();
  spec.user_data = std::move(*script);
  spec.tags = {{std::string(spi::vm_tags::kInstallation), options.installation_id},
               {std::string(spi::vm_tags::kConfig), c.id.str()},
               {std::string(spi::vm_tags::kVm), m.id.str()}};
  auto inst = provider.create(spec);
  if (!inst.ok()) {
    if (retryable(inst.error())) {
      m.reason = "the provider did not answer the create; retried: " + inst.error().message();
      (void)save(vm);
    } else {
      undo();
    }
    return inst.error();
  }
  m.instance_id = inst->id;
  m.private_address = inst->private_address;
  m.phase = VmPhase::kBooting;
  m.registration_token_sealed.clear();
  m.reason = c.forServers() ? "created; waiting for it to answer" : "created; waiting for its agent to check in";
  KASM_RETURN_IF_ERROR(save(vm));
  return m;
}

Result<bool> Autoscaler::Impl::drainMachine(const AutoscaleConfig& c, Versioned<AutoscaleVm> vm,
                                            spi::VmProvider& provider, const std::string& reason) {
  AutoscaleVm& m = vm.value;
  if (m.agent_id) {
    KASM_RETURN_IF_ERROR(manager.setAgentAvailability(*m.agent_id, true, true));
  } else if (m.server_id) {
    KASM_ASSIGN_OR_RETURN(auto s, repo.get<Server>(m.server_id->str()));
    s.value.enabled = false;  // A disabled server takes no new session; running ones go on.
    KASM_RETURN_IF_ERROR(manager.upsertServer(s.value));
  }
  m.phase = VmPhase::kDraining;
  m.reason = "draining: " + reason;
  KASM_RETURN_IF_ERROR(save(vm));
  // Empty already (the usual case: it was idle): destroyed now rather than at the next tick.
  return destroyMachine(c, vm, provider, reason);
}

Result<bool> Autoscaler::Impl::destroyMachine(const AutoscaleConfig& c, Versioned<AutoscaleVm> vm,
                                              spi::VmProvider& provider, const std::string& reason) {
  (void)c;
  AutoscaleVm& m = vm.value;
  // Never with a live session: the manager refuses to remove an agent or server that holds one.
  if (m.agent_id) {
    auto removed = manager.removeAgent(*m.agent_id);
    if (!removed.ok() && removed.error().code() == ErrorCode::kFailedPrecondition) return false;
    if (!removed.ok() && removed.error().code() != ErrorCode::kNotFound) return removed.error();
  }
  if (m.server_id) {
    auto removed = manager.removeServer(*m.server_id);
    if (!removed.ok() && removed.error().code() == ErrorCode::kFailedPrecondition) return false;
    if (!removed.ok() && removed.error().code() != ErrorCode::kNotFound) return removed.error();
  }
  if (m.phase != VmPhase::kDestroying && m.phase != VmPhase::kMissing) {
    m.phase = VmPhase::kDestroying;
    m.reason = reason;
    KASM_RETURN_IF_ERROR(save(vm));
  }
  if (!m.instance_id.empty()) {
    KASM_RETURN_IF_ERROR(provider.destroy(m.instance_id));
  } else {
    // The create may have gone through unanswered: whatever carries this row's tag goes too.
    KASM_ASSIGN_OR_RETURN(auto found,
                          provider.list({{std::string(spi::vm_tags::kInstallation), options.installation_id},
                                         {std::string(spi::vm_tags::kVm), m.id.str()}}));
    for (const auto& inst : found) KASM_RETURN_IF_ERROR(provider.destroy(inst.id));
  }
  KASM_RETURN_IF_ERROR(repo.remove<AutoscaleVm>(m.id.str()));
  return true;
}

void Autoscaler::Impl::failed(const AutoscaleConfig& c, const std::string& what, const Error& e, TickReport& report) {
  ++report.errors;
  const TimePoint now = clock.now();
  auto& b = backoff[c.id];
  // Throttling and outages back off from the base; a configuration the provider refuses waits
  // longer (an administrator must act), both doubling to the maximum.
  const Duration base = retryable(e) ? options.provider_backoff : options.provider_backoff * 4;
  b.delay = b.delay.count() == 0 ? base : std::min(b.delay * 2, options.provider_backoff_max);
  b.until = now + b.delay;
  b.made_from = c.provider + "\n" + c.provider_config_json;
  const std::string message = what + ": " + e.toString();
  {
    std::lock_guard lock(status_mu);
    auto& s = statuses[c.id];
    s.config_id = c.id;
    s.error = message;
    s.backoff_until = b.until;
    s.at = now;
  }
  auto zone = repo.get<Zone>(c.zone_id.str());
  record(c,
         "zone " + (zone.ok() ? zone->value.name : c.zone_id.str()) + ": provider failed, next try in " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(b.delay).count()) + " s",
         {}, message);
}

void Autoscaler::Impl::succeeded(const AutoscaleConfig& c) {
  backoff.erase(c.id);
  std::lock_guard lock(status_mu);
  auto& s = statuses[c.id];
  s.error.clear();
  s.backoff_until.reset();
}

void Autoscaler::Impl::record(const AutoscaleConfig& c, const std::string& summary,
                              const std::vector<std::string>& actions, const std::string& error) {
  const TimePoint now = clock.now();
  {
    std::lock_guard lock(status_mu);
    auto& s = statuses[c.id];
    s.config_id = c.id;
    s.summary = summary;
    s.at = now;
    if (!error.empty()) s.error = error;
  }
  // The log keeps what changed: every action and error, a change of kind ("steady" -> "+"), and a
  // steady state again after steady_record_period.
  const std::string kind = kindOf(summary);
  auto& last = last_recorded[c.id];
  if (actions.empty() && error.empty() && last.first == kind && now - last.second < options.steady_record_period) {
    return;
  }
  last = {kind, now};
  AutoscaleDecision d;
  d.id = AutoscaleDecisionId::generate();
  d.config_id = c.id;
  d.zone_id = c.zone_id;
  d.at = now;
  d.summary = summary;
  d.actions = actions;
  d.error = error;
  if (!repo.insert(d).ok()) return;
  // Keep the newest decisions_kept (trimmed in batches, not at every insert).
  auto all = repo.list<AutoscaleDecision>(spi::Query().where("config_id", c.id.str()));
  if (!all.ok() || all->size() <= options.decisions_kept + 50) return;
  std::sort(all->begin(), all->end(), [](const auto& a, const auto& b) { return a.value.at > b.value.at; });
  for (std::size_t i = options.decisions_kept; i < all->size(); ++i) {
    (void)repo.remove<AutoscaleDecision>((*all)[i].value.id.str());
  }
}

}  // namespace kasm::autoscale
