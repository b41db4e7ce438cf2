// Manager: agent liveness, expiry, staging pools and crash recovery.

#include <algorithm>
#include <type_traits>

#include "kasm/manager/manager.hpp"
#include "manager/manager_impl.hpp"

namespace kasm {

Result<std::optional<Versioned<Session>>> Manager::Impl::claimStaged(const SessionRequest& req, const Workspace& ws,
                                                                     const ZoneId& zone, const GroupSettings& settings,
                                                                     const license::Grant& grant,
                                                                     const std::string& launch_key) {
  // Only the pools' own sessions (the indexed staging_config_id), not every running session of the
  // workspace: a claim's cost does not grow with the users' sessions.
  KASM_ASSIGN_OR_RETURN(auto pools, repo.list<StagingConfig>(spi::Query().where("workspace_id", ws.id.str())));
  if (pools.empty()) return std::optional<Versioned<Session>>();
  std::vector<std::string> pool_ids;
  for (const auto& p : pools) pool_ids.push_back(p.value.id.str());
  KASM_ASSIGN_OR_RETURN(
      auto candidates,
      repo.list<Session>(spi::Query().where("state", "running").whereIn("staging_config_id", pool_ids)));
  // Same zone first, then the others.
  std::stable_partition(candidates.begin(), candidates.end(),
                        [&](const auto& s) { return s.value.zone_id && *s.value.zone_id == zone; });
  for (auto& c : candidates) {
    if (!c.value.isStaged()) continue;
    Session s = c.value;
    s.user_id = req.user_id;
    s.staging_config_id.reset();
    s.created_at = clock.now();
    s.state_reason = "claimed from staging pool";
    s.launch_key = launch_key;  // In the claim's own write: a second claim with the key fails.
    applyLifetimes(s, ws, settings);
    // The staged session already counts as a live session; a named-user licence counts its user now,
    // in the same batch as the claim.
    KASM_ASSIGN_OR_RETURN(auto usage, licensing.impl().usageMutations(&grant, s, 0, /*count_user=*/true));
    KASM_ASSIGN_OR_RETURN(spi::Mutation claim, Repository::updateOp(s, c.version));
    std::vector<spi::Mutation> batch{std::move(claim)};
    for (auto& m : usage) batch.push_back(std::move(m));
    auto applied = store.apply(batch);
    if (!applied.ok()) {
      // Another launch with this idempotency key stored its session: requestSession answers that
      // one, and this staged session stays unclaimed.
      if (applied.error().code() == ErrorCode::kAlreadyExists && !launch_key.empty()) {
        KASM_ASSIGN_OR_RETURN(auto earlier, sessionWithLaunchKey(launch_key));
        if (earlier) return applied.error();
      }
      // Someone else claimed it, or a usage row moved: try the next one (a new launch checks again).
      if (applied.error().code() == ErrorCode::kAborted || applied.error().code() == ErrorCode::kAlreadyExists) {
        continue;
      }
      return applied.error();
    }
    const std::int64_t new_version = applied->front();
    if (!ws.exec_config.assign.cmd.empty() && s.agent_id) {
      if (auto link = linkFor(*s.agent_id)) {
        spi::ExecRequest e{{"sh", "-c", ws.exec_config.assign.cmd},
                           ws.exec_config.assign.user,
                           ws.exec_config.assign.workdir,
                           ws.exec_config.assign.environment,
                           ws.exec_config.assign.privileged};
        (void)link->exec(s.id, e);  // The session is the user's either way; a failed hook is logged by the agent.
      }
    }
    return std::optional<Versioned<Session>>(Versioned<Session>{s, new_version});
  }
  return std::optional<Versioned<Session>>();
}

Result<Manager::TickReport> Manager::tick() {
  return tickZones(nullptr);
}

Result<Manager::TickReport> Manager::tick(const std::set<ZoneId>& zones) {
  return tickZones(&zones);
}

namespace {
// A failed agent call that took this long ran into its timeout (see tickZones).
constexpr Duration kSilentAgentCall = std::chrono::seconds(10);
}  // namespace

Result<Manager::TickReport> Manager::tickZones(const std::set<ZoneId>* zones) {
  auto& im = *impl_;
  TickReport report;
  const auto now = im.clock.now();
  auto mine = [&](const ZoneId& z) { return !zones || zones->count(z) > 0; };
  // A session without a zone (never placed) is left to a manager that leads every zone.
  auto mineOpt = [&](const std::optional<ZoneId>& z) { return !zones || (z && zones->count(*z) > 0); };

  // Every manager keeps its scheduler in step with the store, whatever zones it leads: agents
  // check in on any server of the installation, and zones may be made on any.
  // Agent liveness, on the agents that read.
  KASM_ASSIGN_OR_RETURN(auto agents, im.refreshPlacementView());
  for (auto& a : agents) {
    if (!mine(a.value.zone_id)) continue;
    if (a.value.status == AgentStatus::kPending || !a.value.last_checkin) continue;
    const auto silence = now - *a.value.last_checkin;
    AgentStatus next = a.value.status;
    if (silence >= im.options.agent_dead_after)
      next = AgentStatus::kDead;
    else if (silence >= im.options.agent_missing_after)
      next = AgentStatus::kMissing;
    if (next == a.value.status) continue;
    a.value.status = next;
    auto w = im.repo.update(a.value, a.version);
    if (!w.ok()) continue;  // A check-in won the race: the agent is alive.
    im.syncAgent(a.value);
    if (next == AgentStatus::kMissing) {
      ++report.agents_missing;
      // Sessions are suspect but kept: the agent may come back and reconcile.
      KASM_ASSIGN_OR_RETURN(auto sessions, im.repo.list<Session>(spi::Query().where("agent_id", a.value.id.str())));
      for (auto& s : sessions) {
        if (!holdsReservation(s.value.state)) continue;
        s.value.operational_message =
            "agent " + a.value.hostname + " is missing since " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(silence).count()) + " s";
        (void)im.repo.update(s.value, s.version);
      }
    } else if (next == AgentStatus::kDead) {
      ++report.agents_dead;
      KASM_ASSIGN_OR_RETURN(auto sessions, im.repo.list<Session>(spi::Query().where("agent_id", a.value.id.str())));
      for (auto& s : sessions) {
        if (!isLive(s.value.state)) continue;
        if (im.failSession(std::move(s),
                           "agent " + a.value.hostname + " is dead (no check-in for " +
                               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(silence).count()) +
                               " s)")
                .ok()) {
          ++report.sessions_failed;
        }
      }
    }
  }

  // An agent that let a call fail after kSilentAgentCall (it ran into its timeout: the agent took
  // the command and never answered) is not called again in this tick. One hung agent then costs
  // the tick one timeout rather than one per session it holds, and the other agents' sessions are
  // expired, finished and torn down meanwhile; its own are tried again at the next tick.
  // A Result<bool> that is ok but false is a launch kept for a retry: a failure too.
  std::set<AgentId> silent;
  auto onSilentAgent = [&](const Session& s) { return s.agent_id && silent.count(*s.agent_id) > 0; };
  auto timed = [&](std::optional<AgentId> agent, auto&& call) {
    const auto began = im.clock.now();
    auto r = call();
    bool failed = !r.ok();
    if constexpr (std::is_same_v<decltype(r), Result<bool>>) failed = failed || !*r;
    if (failed && agent && im.clock.now() - began >= kSilentAgentCall) silent.insert(std::move(*agent));
    return r;
  };

  // Expiry: the keepalive expiry applies the group's action; the hard limit always deletes.
  KASM_ASSIGN_OR_RETURN(auto running, im.repo.list<Session>(spi::Query().whereIn("state", {"running", "paused"})));
  for (const auto& s : running) {
    if (s.value.isStaged() || !mineOpt(s.value.zone_id) || onSilentAgent(s.value)) continue;
    if (s.value.hard_expires_at && now >= *s.value.hard_expires_at) {
      if (timed(s.value.agent_id, [&] { return destroySession(s.value.id, "session time limit reached"); }).ok())
        ++report.sessions_expired;
      continue;
    }
    if (s.value.state == SessionState::kRunning && s.value.expires_at && now >= *s.value.expires_at) {
      auto settings = effectiveSettings(s.value.user_id);
      const auto action = settings.ok() ? settings->keepalive_expiration_action : ExpirationAction::kDelete;
      Result<Session> r = timed(s.value.agent_id, [&] {
        return action == ExpirationAction::kPause  ? pauseSession(s.value.id)
               : action == ExpirationAction::kStop ? stopSession(s.value.id, "keepalive expired")
                                                   : destroySession(s.value.id, "keepalive expired");
      });
      if (r.ok()) ++report.sessions_expired;
    }
  }

  KASM_ASSIGN_OR_RETURN(auto idle, idleSessions());
  report.sessions_idle = static_cast<int>(idle.size());

  // Acknowledged launches that no call of this process is provisioning (a crash interrupted them,
  // or their agent connected after recovery) are finished.
  KASM_ASSIGN_OR_RETURN(auto provisioning, im.repo.list<Session>(spi::Query().where("state", "provisioning")));
  for (auto& s : provisioning) {
    if (!mineOpt(s.value.zone_id) || onSilentAgent(s.value)) continue;
    const auto agent = s.value.agent_id;
    auto done = timed(agent, [&] { return im.completeLaunch(std::move(s), "completed after an interruption"); });
    if (done.ok() && *done) ++report.launches_completed;
  }

  // Teardowns that an unreachable agent left in `stopping` are retried.
  KASM_ASSIGN_OR_RETURN(auto stopping, im.repo.list<Session>(spi::Query().where("state", "stopping")));
  for (auto& s : stopping) {
    if (!mineOpt(s.value.zone_id)) continue;
    if (onSilentAgent(s.value)) {
      ++report.teardowns_pending;
      report.teardown_error = "session " + s.value.id.str() + ": agent " + s.value.agent_id->str() +
                              " did not answer a call of this tick; tried again at the next";
      continue;
    }
    const auto agent = s.value.agent_id;
    if (auto r = timed(agent, [&] { return im.finishTeardown(std::move(s)); }); !r.ok()) {
      ++report.teardowns_pending;
      report.teardown_error = r.error().toString();
    }
  }

  // Staging pools. Launching needs the `staging` feature and a licence that allows new sessions;
  // staged sessions already running are served and expired either way.
  KASM_ASSIGN_OR_RETURN(auto configs, im.repo.list<StagingConfig>());
  std::optional<license::Grant> grant;
  if (!configs.empty()) {
    KASM_ASSIGN_OR_RETURN(grant, im.licensing.impl().grant());
  }
  const bool may_stage = grant && grant->allowsNewSessions() && grant->hasFeature(license::features::kStaging);
  for (const auto& c : configs) {
    const auto& cfg = c.value;
    if (!mine(cfg.zone_id)) continue;
    KASM_ASSIGN_OR_RETURN(auto staged, im.repo.list<Session>(spi::Query().where("staging_config_id", cfg.id.str())));
    int live = 0;
    for (const auto& s : staged) {
      if (!isLive(s.value.state)) continue;
      if (s.value.state == SessionState::kRunning && now - s.value.created_at >= cfg.expiration) {
        if (destroySession(s.value.id, "staged session expired unclaimed").ok()) ++report.staged_expired;
        continue;
      }
      ++live;
    }
    if (!cfg.enabled || !may_stage) continue;
    {
      std::lock_guard lock(im.mu);
      auto it = im.staging_backoff.find(cfg.id);
      if (it != im.staging_backoff.end() && now < it->second.retry_at) continue;
    }
    auto ws = im.repo.get<Workspace>(cfg.workspace_id.str());
    if (!ws.ok() || !ws->value.enabled || ws->value.type != WorkspaceType::kContainer) continue;
    for (int i = live; i < cfg.desired; ++i) {
      Session s;
      s.id = SessionId::generate();
      s.workspace_id = cfg.workspace_id;
      s.staging_config_id = cfg.id;
      s.resources = ws->value.resources;
      s.created_at = im.clock.now();
      s.state_changed_at = s.created_at;
      auto launched = im.placeAndProvision(std::move(s), ws->value, cfg.zone_id, {}, *grant);
      std::lock_guard lock(im.mu);
      auto& b = im.staging_backoff[cfg.id];
      if (launched.ok()) {
        ++report.staged_launched;
        b = {};
      } else {
        b.delay =
            b.delay.count() == 0 ? im.options.staging_backoff : std::min(b.delay * 2, im.options.staging_backoff_max);
        b.retry_at = now + b.delay;
        break;
      }
    }
  }
  return report;
}

Result<int> Manager::completeLaunches(const AgentId& agent) {
  auto& im = *impl_;
  KASM_ASSIGN_OR_RETURN(
      auto provisioning,
      im.repo.list<Session>(spi::Query().where("state", "provisioning").where("agent_id", agent.str())));
  int completed = 0;
  for (auto& s : provisioning) {
    auto done = im.completeLaunch(std::move(s), "completed after an interruption");
    if (done.ok() && *done) ++completed;
  }
  return completed;
}

Result<int> Manager::purgeEndedSessions(Duration older_than, const std::set<ZoneId>* zones, std::size_t max_rows) {
  auto& im = *impl_;
  const TimePoint cutoff = im.clock.now() - older_than;
  KASM_ASSIGN_OR_RETURN(
      auto ended, im.repo.list<Session>(spi::Query().whereIn("state", {std::string(enumName(SessionState::kDestroyed)),
                                                                       std::string(enumName(SessionState::kFailed))})));
  int purged = 0;
  for (const auto& s : ended) {
    if (static_cast<std::size_t>(purged) >= max_rows) break;
    if (s.value.state_changed_at >= cutoff) continue;
    // A session never placed has no zone: any manager may delete it (a race is harmless).
    if (zones && s.value.zone_id && !zones->contains(*s.value.zone_id)) continue;
    auto gone = im.repo.remove<Session>(s.value.id.str(), s.version);
    if (gone.ok()) {
      ++purged;
    } else if (gone.error().code() != ErrorCode::kAborted && gone.error().code() != ErrorCode::kNotFound) {
      return gone.error();
    }
  }
  return purged;
}

Result<std::vector<SessionId>> Manager::idleSessions() {
  auto& im = *impl_;
  const auto now = im.clock.now();
  KASM_ASSIGN_OR_RETURN(auto running, im.repo.list<Session>(spi::Query().where("state", "running")));
  std::vector<SessionId> out;
  // Groups read once per call and a user's settings once, not a user and a group per session.
  std::unordered_map<GroupId, Group> groups;
  if (!running.empty()) {
    KASM_ASSIGN_OR_RETURN(auto all, im.repo.list<Group>());
    for (auto& g : all) groups.emplace(g.value.id, std::move(g.value));
  }
  std::unordered_map<UserId, Result<GroupSettings>> by_user;
  for (const auto& s : running) {
    if (s.value.isStaged() || s.value.user_id.empty()) continue;
    auto it = by_user.find(s.value.user_id);
    if (it == by_user.end()) it = by_user.emplace(s.value.user_id, im.settingsOf(s.value.user_id, &groups)).first;
    const auto& settings = it->second;
    if (!settings.ok() || !settings->idle_disconnect) continue;
    const TimePoint last = s.value.last_activity_at.value_or(s.value.started_at.value_or(s.value.created_at));
    if (now - last >= *settings->idle_disconnect) out.push_back(s.value.id);
  }
  return out;
}

Result<bool> Manager::Impl::completeLaunch(Versioned<Session> s, std::string_view why) {
  auto link = s.value.agent_id ? linkFor(*s.value.agent_id) : nullptr;
  if (!link) return false;
  auto claim = claimLaunch(s.value.id);
  if (!claim) return false;  // A call of this process is starting it now.
  // Still provisioning? Another manager of the installation may have finished it meanwhile.
  KASM_ASSIGN_OR_RETURN(auto cur, repo.get<Session>(s.value.id.str()));
  if (cur.value.state != SessionState::kProvisioning) return false;
  auto ws = repo.get<Workspace>(cur.value.workspace_id.str());
  if (!ws.ok()) {
    if (ws.error().code() != ErrorCode::kNotFound) return ws.error();
    KASM_RETURN_IF_ERROR(failSession(std::move(cur), "its workspace was deleted while it was starting"));
    return true;
  }
  auto r = link->provision(provisionRequestFor(cur.value, ws->value, cur.value.launch_environment));
  if (!r.ok()) {
    // An agent that does not answer may come back; if it never does, it is declared dead and the
    // session fails with that reason.
    const bool may_retry = r.error().code() == ErrorCode::kUnavailable &&
                           clock.now() - cur.value.state_changed_at < options.launch_retry_limit;
    if (may_retry) return false;
    KASM_ASSIGN_OR_RETURN(auto now_cur, repo.get<Session>(cur.value.id.str()));
    KASM_RETURN_IF_ERROR(failSession(std::move(now_cur), "provisioning failed: " + r.error().message()));
    return true;
  }
  std::optional<GroupSettings> settings;
  if (!cur.value.user_id.empty()) {
    auto got = settingsOf(cur.value.user_id);
    if (got.ok()) settings = *got;
  }
  KASM_RETURN_IF_ERROR(transition(cur.value.id, SessionState::kRunning, std::string(why), [&](Session& x) {
    x.container_id = r->container_id;
    x.container_name = r->container_name;
    x.upstream = r->upstream;
    x.progress = 100;
    x.operational_message = "running";
    if (settings) applyLifetimes(x, ws->value, *settings);
  }));
  return true;
}

Result<int> Manager::recover() {
  auto& im = *impl_;
  int recovered = 0;
  KASM_ASSIGN_OR_RETURN(
      auto stuck, im.repo.list<Session>(spi::Query().whereIn("state", {"requested", "provisioning", "stopping"})));
  for (auto& s : stuck) {
    switch (s.value.state) {
      case SessionState::kRequested:
        if (im.transition(s.value.id, SessionState::kFailed, "the manager restarted before the session was placed")
                .ok())
          ++recovered;
        break;
      case SessionState::kProvisioning: {
        // An acknowledged launch: finish it now if its agent is connected, else when it connects
        // (tick()); only a launch that truly cannot finish fails, with its reason.
        auto done = im.completeLaunch(std::move(s), "completed after a manager restart");
        if (done.ok() && *done) ++recovered;
        break;
      }
      case SessionState::kStopping:
        if (im.finishTeardown(std::move(s)).ok()) ++recovered;
        break;
      default: break;
    }
  }
  return recovered;
}

}  // namespace kasm
