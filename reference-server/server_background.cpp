// kasm-server's background work: the cluster loop (heartbeat, leases, the relayed commands'
// upkeep), the tick of the zones this server leads, and draining.

#include <algorithm>
#include <chrono>
#include <thread>

#include "kasm/agent/remote_link.hpp"
#include "server_app.hpp"

namespace kasm::server {

void ServerApp::drain() {
  if (draining_.exchange(true)) return;
  if (membership_) membership_->stepDown();
  logLine("draining", std::to_string(config_.drain_seconds) + " s; the zones it led are handed over");
  for (int i = 0; i < config_.drain_seconds * 10; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

// Heartbeat and leases every 2 s; the relayed agent commands' upkeep every second.
void ServerApp::clusterLoop() {
  for (int second = 1; !stopping_.load(); ++second) {
    for (int i = 0; i < 10 && !stopping_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (stopping_.load()) break;
    if (agent_commands_) {
      if (auto s = agent_commands_->sweep(); !s.ok()) logLine("agent_commands_sweep_failed", s.error().toString());
    }
    if (second % 2 != 0) continue;
    if (auto beat = membership_->beat(); !beat.ok()) logLine("cluster_beat_failed", beat.error().toString());
  }
}

std::set<ZoneId> ServerApp::leadingZones() const {
  return membership_ ? membership_->leading() : std::set<ZoneId>{};
}

void ServerApp::backgroundLoop() {
  int ticks = 0;
  while (!stopping_.load()) {
    if (local_agent_) {
      checkInLocalAgent();
      if (ticks % 12 == 0) reconcileAgent(local_agent_id_);
    }
    // Background work of the zones this server leads (their primary); the others' are theirs.
    const std::set<ZoneId> leading = leadingZones();
    if (ticks % 12 == 6) {
      std::vector<AgentId> remote;
      if (agent_commands_) {
        // Any server reaches any agent: the primary of each zone reconciles the zone's agents.
        if (auto agents = repo_->list<Agent>(); agents.ok()) {
          for (const auto& a : *agents) {
            if (leading.contains(a.value.zone_id) && a.value.id != local_agent_id_ &&
                a.value.status == AgentStatus::kOk) {
              remote.push_back(a.value.id);
            }
          }
        }
      } else {
        std::lock_guard lock(remote_mutex_);
        for (const auto& [id, link] : remote_links_) remote.push_back(id);
      }
      for (const auto& id : remote) reconcileAgentSoon(id);
    }
    auto t = manager_->tick(leading);
    if (!t.ok()) logLine("tick_failed", t.error().toString());
    if (t.ok() && t->teardowns_pending > 0) {
      // Said when it changes, and once a minute while it lasts.
      std::string said =
          std::to_string(t->teardowns_pending) + " left stopping; the last failure: " + t->teardown_error;
      if (said != last_teardown_log_ || ticks - last_teardown_tick_ >= 60 / std::max(1, config_.tick_seconds)) {
        logLine("teardowns_pending", said);
        last_teardown_log_ = std::move(said);
        last_teardown_tick_ = ticks;
      }
    }
    // Session history past its retention, hourly, by the primary of each zone.
    if (config_.session_history_days > 0 && ticks % 720 == 360 && !leading.empty()) {
      auto purged = manager_->purgeEndedSessions(std::chrono::hours(24) * config_.session_history_days, &leading);
      if (!purged.ok()) {
        logLine("session_purge_failed", purged.error().toString());
      } else if (*purged > 0) {
        logLine("sessions_purged", std::to_string(*purged) + " ended more than " +
                                       std::to_string(config_.session_history_days) + " days ago");
      }
    }
    if (ticks % 2 == 1) tickAutoscaler(leading);
    // Fixed servers: running, missing or dead, from a connect every other tick.
    if (ticks % 2 == 0) {
      if (auto c = manager_->checkServers(std::chrono::seconds(2)); !c.ok()) {
        logLine("server_checks_failed", c.error().toString());
      }
    }
    // Sessions that ended: their proxy connections were closed when they ended (here, or on the
    // server that ended them, through the events); this catches a lost event, and ends their
    // sharing. Each tick, for those that ended since the last pass (all of them at the first).
    {
      const TimePoint pass_began = clock_.now();
      auto ended = manager_->listSessions(spi::Query().whereIn("state", {"destroyed", "failed", "stopped", "paused"}));
      if (ended.ok()) {
        std::erase_if(*ended, [&](const Session& s) {
          return last_ended_pass_ && s.state_changed_at < *last_ended_pass_ - std::chrono::minutes(1);
        });
        {
          std::lock_guard lock(proxy_cache_mutex_);
          for (const auto& s : *ended) {
            proxy_cache_.erase(s.id);
            proxy_->closeSession(s.id);
          }
        }
        // When a session ends, so do its share, the permissions given on it and its chat.
        for (const auto& s : *ended) endSharing(s);
        last_ended_pass_ = pass_began;
      }
    }
    ++ticks;
    for (int i = 0; i < config_.tick_seconds * 10 && !stopping_.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

// A remote agent answers through its polls, maybe slowly (a busy engine), maybe not at all for a
// while (a lost command waits for its next poll): its reconciliation runs on the agent pool, one
// at a time per agent, so that the tick of every zone goes on meanwhile.
void ServerApp::reconcileAgentSoon(const AgentId& id) {
  {
    std::lock_guard lock(reconciling_mutex_);
    if (!reconciling_.insert(id).second) return;  // The last one still runs.
  }
  auto posted = agent_pool_->post([this, id] {
    reconcileAgent(id);
    std::lock_guard lock(reconciling_mutex_);
    reconciling_.erase(id);
  });
  if (!posted.ok()) {
    std::lock_guard lock(reconciling_mutex_);
    reconciling_.erase(id);
  }
}

}  // namespace kasm::server
