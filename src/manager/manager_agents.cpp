// Manager: the agent registry, check-ins and reconciliation with what agents hold.

#include <algorithm>
#include <set>

#include "kasm/auth/secret.hpp"
#include "kasm/manager/manager.hpp"
#include "manager/manager_impl.hpp"

namespace kasm {

namespace {
// Read-modify-write of an agent with compare-and-set retries.
Result<Agent> updateAgent(Manager::Impl& im, const AgentId& id, const std::function<Result<void>(Agent&)>& mutate) {
  for (int attempt = 0; attempt < im.options.max_cas_retries; ++attempt) {
    auto cur = im.repo.get<Agent>(id.str());
    if (!cur.ok()) {
      if (cur.error().code() == ErrorCode::kNotFound) return notFound("agent '" + id.str() + "' is not registered");
      return cur.error();
    }
    Agent a = cur->value;
    KASM_RETURN_IF_ERROR(mutate(a));
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

Result<Manager::AgentRegistration> Manager::registerAgent(Agent agent) {
  auto& im = *impl_;
  std::string token = auth::generateToken();
  agent.token_hash = auth::hashSecret(token);
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
    return {};
  }));
  return token;
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

Result<Agent> Manager::checkIn(const AgentCheckIn& report) {
  auto& im = *impl_;
  KASM_RETURN_IF_ERROR(report.reported.validate("checkin.reported"));
  KASM_RETURN_IF_ERROR(checkReportBounds(report));
  if (report.cpu_utilization < 0 || report.cpu_utilization > 1.0) {
    return invalidArgument("checkin.cpu_utilization must be between 0 and 1");
  }
  if (report.memory_used_bytes < 0) return invalidArgument("checkin.memory_used_bytes must not be negative");
  bool came_back = false;
  KASM_ASSIGN_OR_RETURN(
      Agent a, updateAgent(im, report.agent_id, [&](Agent& x) -> Result<void> {
        if (report.token.empty() || !auth::verifySecret(report.token, x.token_hash)) {
          return unauthenticated("check-in of agent " + x.id.str() + " refused: missing or wrong token");
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
      }));
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

Result<Agent> Manager::setAgentOverrides(const AgentId& id, const ResourceOverrides& overrides) {
  return updateAgent(*impl_, id, [&](Agent& a) -> Result<void> {
    a.overrides = overrides;
    return a.validate();
  });
}

void Manager::attachAgentLink(const AgentId& id, std::shared_ptr<spi::AgentLink> link) {
  std::lock_guard lock(impl_->mu);
  impl_->links[id] = std::move(link);
}

void Manager::detachAgentLink(const AgentId& id) {
  std::lock_guard lock(impl_->mu);
  impl_->links.erase(id);
}

Result<void> Manager::reconcileAgent(const AgentId& id) {
  auto& im = *impl_;
  auto link = im.linkFor(id);
  if (!link) return unavailable("agent " + id.str() + " is not connected");
  KASM_ASSIGN_OR_RETURN(auto held, link->sessions());
  KASM_ASSIGN_OR_RETURN(auto stored, im.repo.list<Session>(spi::Query().where("agent_id", id.str())));
  std::set<std::string> held_ids;
  for (const auto& h : held) held_ids.insert(h.session_id.str());
  std::set<std::string> live_ids;
  for (auto& s : stored) {
    const auto state = s.value.state;
    if (state == SessionState::kRunning || state == SessionState::kPaused || state == SessionState::kProvisioning ||
        state == SessionState::kStopped) {
      live_ids.insert(s.value.id.str());
      if (!held_ids.count(s.value.id.str()) && state != SessionState::kProvisioning) {
        (void)im.failSession(std::move(s), "its container vanished from agent " + id.str());
      }
    }
  }
  for (const auto& h : held) {
    if (!live_ids.count(h.session_id.str())) (void)link->destroy(h.session_id);  // An orphan.
  }
  return {};
}

}  // namespace kasm
