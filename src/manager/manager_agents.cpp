// Manager: the agent registry, check-ins and reconciliation with what agents hold.

#include <algorithm>
#include <map>
#include <set>

#include "kasm/auth/secret.hpp"
#include "kasm/manager/manager.hpp"
#include "manager/manager_impl.hpp"

namespace kasm {

namespace {
// A container that serves (or is about to, or is paused on purpose).
bool isUp(spi::ContainerStatus s) {
  return s == spi::ContainerStatus::kRunning || s == spi::ContainerStatus::kRestarting ||
         s == spi::ContainerStatus::kPaused;
}

// Read-modify-write of an agent with compare-and-set retries. `write` (when given) is asked after
// the change whether it needs storing; a false answer returns the changed agent unwritten.
Result<Agent> updateAgent(Manager::Impl& im, const AgentId& id, const std::function<Result<void>(Agent&)>& mutate,
                          const std::function<bool(const Agent& before, const Agent& after)>& write = nullptr) {
  for (int attempt = 0; attempt < im.options.max_cas_retries; ++attempt) {
    auto cur = im.repo.get<Agent>(id.str());
    if (!cur.ok()) {
      if (cur.error().code() == ErrorCode::kNotFound) return notFound("agent '" + id.str() + "' is not registered");
      return cur.error();
    }
    Agent a = cur->value;
    KASM_RETURN_IF_ERROR(mutate(a));
    if (write && !write(cur->value, a)) return a;
    auto w = im.repo.update(a, cur->version);
    if (w.ok()) {
      im.syncAgent(a);
      return a;
    }
    if (w.error().code() != ErrorCode::kAborted) return w.error();
  }
  return aborted("agent " + id.str() + " kept changing");
}
}  // namespace

Result<Manager::AgentRegistration> Manager::registerAgent(Agent agent, std::optional<TimePoint> token_expires_at) {
  auto& im = *impl_;
  std::string token = auth::generateToken();
  agent.token_hash = auth::hashSecret(token);
  agent.token_expires_at = token_expires_at;
  if (agent.id.empty()) agent.id = AgentId::generate();
  agent.registered_at = im.clock.now();
  agent.status = AgentStatus::kPending;
  agent.reserved = {};
  agent.session_count = 0;
  agent.last_checkin.reset();
  auto zone = im.repo.get<Zone>(agent.zone_id.str());
  if (!zone.ok()) {
    if (zone.error().code() == ErrorCode::kNotFound)
      return notFound("zone '" + agent.zone_id.str() + "' does not exist");
    return zone.error();
  }
  KASM_RETURN_IF_ERROR(im.repo.insert(agent));
  im.syncAgent(agent);
  return AgentRegistration{std::move(agent), std::move(token)};
}

Result<std::string> Manager::rotateAgentToken(const AgentId& id) {
  std::string token = auth::generateToken();
  KASM_RETURN_IF_ERROR(updateAgent(*impl_, id, [&](Agent& a) -> Result<void> {
    a.token_hash = auth::hashSecret(token);
    a.token_expires_at.reset();
    return {};
  }));
  return token;
}

void Manager::Impl::noteUnplaced(const ZoneId& zone, const Resources& r) {
  const TimePoint now = clock.now();
  while (!unplaced.empty() && (unplaced.size() >= 100000 || now - unplaced.front().at > std::chrono::minutes(15))) {
    unplaced.pop_front();
  }
  unplaced.push_back({now, zone, r});
}

Manager::UnplacedDemand Manager::unplacedDemand(const ZoneId& zone, Duration window) const {
  auto& im = *impl_;
  const TimePoint since = im.clock.now() - window;
  UnplacedDemand out;
  std::lock_guard lock(im.mu);
  for (auto it = im.unplaced.rbegin(); it != im.unplaced.rend() && it->at >= since; ++it) {
    if (it->zone != zone) continue;
    out.resources += it->resources;
    ++out.launches;
  }
  return out;
}

Result<void> Manager::removeAgent(const AgentId& id) {
  auto& im = *impl_;
  KASM_ASSIGN_OR_RETURN(auto cur, im.repo.get<Agent>(id.str()));
  KASM_ASSIGN_OR_RETURN(auto sessions, im.repo.list<Session>(spi::Query().where("agent_id", id.str())));
  std::string holding;
  int live = 0;
  for (const auto& s : sessions) {
    if (isTerminal(s.value.state)) continue;
    if (++live <= 3) holding += (holding.empty() ? "" : ", ") + s.value.id.str();
  }
  if (live > 0 || cur.value.session_count > 0) {
    return failedPrecondition("agent " + id.str() + " still holds " +
                              std::to_string(std::max(live, cur.value.session_count)) + " session(s)" +
                              (holding.empty() ? "" : " (" + holding + ")") + "; drain it and wait for them to end");
  }
  KASM_RETURN_IF_ERROR(im.repo.remove<Agent>(id.str(), cur.version));
  {
    std::lock_guard lock(im.mu);
    im.scheduler.removeAgent(id);
    im.links.erase(id);
  }
  return {};
}

namespace {
// What one agent may report. An agent is trusted to run containers, not to size the installation:
// a host claiming a thousand terabytes would draw every session to itself (and overflow sums over
// agents), and an unbounded image list would grow every copy of its record.
constexpr std::int64_t kMaxReportedMillicores = 4096 * 1000;         // 4096 cores.
constexpr std::int64_t kMaxReportedMemory = std::int64_t{64} << 40;  // 64 TiB.
constexpr std::int32_t kMaxReportedGpus = 64;
constexpr std::size_t kMaxReportedImages = 4096;
constexpr std::size_t kMaxImageReference = 512;
constexpr std::size_t kMaxAgentVersion = 128;

Result<void> checkReportBounds(const AgentCheckIn& report) {
  const auto& r = report.reported;
  if (r.millicores > kMaxReportedMillicores || r.memory_bytes > kMaxReportedMemory || r.gpus > kMaxReportedGpus) {
    return invalidArgument(
        "checkin.reported is beyond what one host can have (at most " + std::to_string(kMaxReportedMillicores / 1000) +
        " cores, " + std::to_string(kMaxReportedMemory >> 40) + " TiB, " + std::to_string(kMaxReportedGpus) + " GPUs)");
  }
  if (report.memory_used_bytes > kMaxReportedMemory) return invalidArgument("checkin.memory_used_bytes is too large");
  if (report.images.size() > kMaxReportedImages) {
    return invalidArgument("checkin.images lists more than " + std::to_string(kMaxReportedImages) + " images");
  }
  for (const auto& i : report.images) {
    if (i.empty() || i.size() > kMaxImageReference) {
      return invalidArgument("checkin.images holds an empty or over-long reference");
    }
  }
  if (report.agent_version.size() > kMaxAgentVersion) return invalidArgument("checkin.agent_version is too long");
  return {};
}
}  // namespace

Result<Agent> Manager::checkIn(const AgentCheckIn& report, std::string* issued_token) {
  auto& im = *impl_;
  KASM_RETURN_IF_ERROR(report.reported.validate("checkin.reported"));
  KASM_RETURN_IF_ERROR(checkReportBounds(report));
  if (report.cpu_utilization < 0 || report.cpu_utilization > 1.0) {
    return invalidArgument("checkin.cpu_utilization must be between 0 and 1");
  }
  if (report.memory_used_bytes < 0) return invalidArgument("checkin.memory_used_bytes must not be negative");
  bool came_back = false;
  std::string fresh_token;
  KASM_ASSIGN_OR_RETURN(
      Agent a,
      updateAgent(
          im, report.agent_id,
          [&](Agent& x) -> Result<void> {
            fresh_token.clear();
            if (report.token.empty() || !auth::verifySecret(report.token, x.token_hash)) {
              return unauthenticated("check-in of agent " + x.id.str() + " refused: missing or wrong token");
            }
            if (x.token_expires_at) {
              // A registration token: once, before it expires, and only where the new one can go.
              if (im.clock.now() >= *x.token_expires_at) {
                return unauthenticated("check-in of agent " + x.id.str() + " refused: its registration token expired");
              }
              if (!issued_token) {
                return failedPrecondition("agent " + x.id.str() +
                                          " presents a registration token, and this caller cannot hand it its new one");
              }
              fresh_token = auth::generateToken();
              x.token_hash = auth::hashSecret(fresh_token);
              x.token_expires_at.reset();
            }
            came_back = x.status == AgentStatus::kMissing || x.status == AgentStatus::kDead;
            x.reported = report.reported;
            x.cpu_utilization = report.cpu_utilization;
            x.memory_used_bytes = report.memory_used_bytes;
            x.images = report.images;
            std::sort(x.images.begin(), x.images.end());
            if (!report.agent_version.empty()) x.agent_version = report.agent_version;
            x.status = AgentStatus::kOk;
            x.last_checkin = im.clock.now();
            return {};
          },
          [&](const Agent& before, const Agent& after) {
            // A report that changes nothing placement or the installation acts on (capacity, images,
            // version, status, token) of an agent whose stored check-in is recent is not written: the
            // stored time stays within checkin_write_interval of the truth, and utilisation figures
            // (shown, never acted on) as fresh. One write in three for agents at a 5 s period.
            const bool material = before.status != after.status || before.reported != after.reported ||
                                  before.images != after.images || before.agent_version != after.agent_version ||
                                  before.token_hash != after.token_hash;
            const bool recent = before.last_checkin && after.last_checkin &&
                                *after.last_checkin - *before.last_checkin < im.options.checkin_write_interval;
            return material || !recent;
          }));
  if (!fresh_token.empty() && issued_token) *issued_token = std::move(fresh_token);
  if (came_back) {
    // Best effort: a failed reconciliation is retried by the next one.
    (void)reconcileAgent(a.id);
  }
  return a;
}

Result<Agent> Manager::setAgentAvailability(const AgentId& id, bool enabled, bool draining) {
  return updateAgent(*impl_, id, [&](Agent& a) -> Result<void> {
    a.enabled = enabled;
    a.draining = draining;
    return {};
  });
}

Result<void> Manager::setAgentTunnel(const AgentId& id, std::string gateway, std::optional<std::string> only_if) {
  bool unchanged = false;
  auto r = updateAgent(*impl_, id, [&](Agent& a) -> Result<void> {
    if ((only_if && a.tunnel_gateway != *only_if) || a.tunnel_gateway == gateway) {
      unchanged = true;
      return aborted("");
    }
    a.tunnel_gateway = gateway;
    return {};
  });
  if (!r.ok() && unchanged) return {};
  if (!r.ok()) return r.error();
  return {};
}

Result<Agent> Manager::setAgentOverrides(const AgentId& id, const ResourceOverrides& overrides) {
  return updateAgent(*impl_, id, [&](Agent& a) -> Result<void> {
    a.overrides = overrides;
    return a.validate();
  });
}

Result<std::vector<std::string>> Manager::desiredImages(const AgentId& id) {
  auto& im = *impl_;
  KASM_ASSIGN_OR_RETURN(auto agent, im.repo.get<Agent>(id.str()));
  KASM_ASSIGN_OR_RETURN(auto workspaces, im.repo.list<Workspace>());
  std::set<std::string> images;
  for (const auto& w : workspaces) {
    const Workspace& ws = w.value;
    if (!ws.enabled || ws.type != WorkspaceType::kContainer || ws.image.empty()) continue;
    if (ws.restrict_to_agent && *ws.restrict_to_agent != id) continue;
    if (ws.restrict_to_zone && *ws.restrict_to_zone != agent.value.zone_id) continue;
    images.insert(ws.image);
  }
  return std::vector<std::string>(images.begin(), images.end());
}

void Manager::attachAgentLink(const AgentId& id, std::shared_ptr<spi::AgentLink> link) {
  std::lock_guard lock(impl_->mu);
  impl_->links[id] = std::move(link);
}

void Manager::detachAgentLink(const AgentId& id) {
  std::lock_guard lock(impl_->mu);
  impl_->links.erase(id);
}

Result<Manager::AgentReconciliation> Manager::reconcileAgent(const AgentId& id) {
  auto& im = *impl_;
  auto link = im.linkFor(id);
  if (!link) return unavailable("agent " + id.str() + " is not connected");
  KASM_ASSIGN_OR_RETURN(auto held, link->sessions());
  KASM_ASSIGN_OR_RETURN(auto stored, im.repo.list<Session>(spi::Query().where("agent_id", id.str())));
  std::map<std::string, spi::ContainerStatus> held_status;
  for (const auto& h : held) held_status[h.session_id.str()] = h.status;
  AgentReconciliation report;
  // Running sessions whose container stopped get a new address when they start again, and their
  // old one may already belong to another session's container (all of them started at once):
  // forget every such address before starting any, so the proxy sends no one there meanwhile.
  for (auto& s : stored) {
    auto it = held_status.find(s.value.id.str());
    if (s.value.state != SessionState::kRunning || it == held_status.end() || isUp(it->second)) continue;
    auto cleared = im.transition(s.value.id, SessionState::kRunning, "", [](Session& x) {
      x.upstream.clear();
      x.operational_message = "restarting: its container stopped";
    });
    if (cleared.ok()) s = std::move(*cleared);
  }
  std::set<std::string> live_ids;
  for (auto& s : stored) {
    const auto state = s.value.state;
    if (state != SessionState::kRunning && state != SessionState::kPaused && state != SessionState::kProvisioning &&
        state != SessionState::kStopped) {
      continue;
    }
    live_ids.insert(s.value.id.str());
    auto it = held_status.find(s.value.id.str());
    if (it == held_status.end()) {
      if (state != SessionState::kProvisioning &&
          im.failSession(std::move(s), "its container vanished from agent " + id.str()).ok()) {
        ++report.sessions_failed;
      }
      continue;
    }
    const auto status = it->second;
    if (state == SessionState::kRunning && !isUp(status)) {
      // Its engine restarted (or the host rebooted, or something stopped it): start it again.
      auto restarted = im.restartSession(std::move(s), *link);
      if (restarted.ok() && *restarted) ++report.sessions_restarted;
      if (restarted.ok() && !*restarted) ++report.sessions_failed;
    } else if (state == SessionState::kPaused && status != spi::ContainerStatus::kPaused) {
      // A paused container that the engine stopped: resuming it is a new start with a new port,
      // which only the stopped path does.
      if (im.teardownAs(s.value.id, ExpirationAction::kStop, "its container stopped while the session was paused")
              .ok()) {
        ++report.sessions_stopped;
      }
    }
  }
  for (const auto& h : held) {
    if (!live_ids.count(h.session_id.str()) && link->destroy(h.session_id).ok()) ++report.orphans_removed;
  }
  return report;
}

Result<bool> Manager::Impl::restartSession(Versioned<Session> s, spi::AgentLink& link) {
  const SessionId id = s.value.id;
  auto claim = claimLaunch(id);
  if (!claim) return unavailable("session " + id.str() + " is being started by another call");
  // Still running? A teardown may have begun since the agent was listed: never start it again then.
  KASM_ASSIGN_OR_RETURN(auto now_stored, repo.get<Session>(id.str()));
  if (now_stored.value.state != SessionState::kRunning) return aborted("session " + id.str() + " is no longer running");
  s = std::move(now_stored);
  const auto now = clock.now();
  bool exhausted = false;
  {
    std::lock_guard lock(mu);
    if (restarts.size() > 1000) {
      std::erase_if(restarts,
                    [&](const auto& e) { return e.second.empty() || now - e.second.back() >= kRestartWindow; });
    }
    auto& times = restarts[id];
    std::erase_if(times, [&](TimePoint t) { return now - t >= kRestartWindow; });
    exhausted = static_cast<int>(times.size()) >= kMaxRestartsPerWindow;
    if (exhausted) restarts.erase(id);
  }
  if (exhausted) {
    KASM_RETURN_IF_ERROR(
        failSession(std::move(s),
                    "its container stopped " + std::to_string(kMaxRestartsPerWindow + 1) + " times within 10 minutes"));
    return false;
  }
  KASM_ASSIGN_OR_RETURN(auto ws, repo.get<Workspace>(s.value.workspace_id.str()));
  // Provision is idempotent per session: it starts the container that is there (its disk kept)
  // and answers with its new published address, which the engine chose again at this start.
  auto r = link.provision(provisionRequestFor(s.value, ws.value, s.value.launch_environment));
  if (!r.ok()) {
    // An engine still starting answers Unavailable: the next reconciliation tries again.
    if (r.error().code() == ErrorCode::kUnavailable) return r.error();
    KASM_ASSIGN_OR_RETURN(auto cur, repo.get<Session>(id.str()));
    KASM_RETURN_IF_ERROR(
        failSession(std::move(cur), "its container stopped and could not be restarted: " + r.error().message()));
    return false;
  }
  auto written = transition(id, SessionState::kRunning, "restarted: its container had stopped", [&](Session& x) {
    x.container_id = r->container_id;
    x.container_name = r->container_name;
    x.upstream = r->upstream;
    x.operational_message = "running";
    x.state_reason = "restarted: its container had stopped";  // Same state: transition() keeps the old reason.
  });
  {
    std::lock_guard lock(mu);
    restarts[id].push_back(now);
  }
  if (!written.ok()) {
    // Torn down meanwhile: what this call started must not outlive it (a teardown in progress
    // may have removed the container before this call started it again).
    auto cur = repo.get<Session>(id.str());
    if (cur.ok() && cur->value.state != SessionState::kRunning && cur->value.state != SessionState::kPaused) {
      (void)link.destroy(id);
    }
    return written.error();
  }
  return true;
}

}  // namespace kasm
