// Manager: construction, zones, workspaces and launches (the rest of the session life cycle:
// manager_lifecycle.cpp).

#include "kasm/manager/manager.hpp"

#include <algorithm>
#include <thread>

#include "kasm/auth/secret.hpp"
#include "manager/manager_impl.hpp"

namespace kasm {

bool isLive(SessionState state) {
  return state == SessionState::kRequested || state == SessionState::kProvisioning || state == SessionState::kRunning ||
         state == SessionState::kPaused || state == SessionState::kStopping;
}

std::vector<std::string> liveStateNames() {
  std::vector<std::string> out;
  for (int i = 0; i <= static_cast<int>(SessionState::kFailed); ++i) {
    const auto st = static_cast<SessionState>(i);
    if (isLive(st)) out.emplace_back(enumName(st));
  }
  return out;
}

namespace {

// The scheduler's rules of a zone, with the embedder's custom policy when it has one.
sched::ZoneRules zoneRules(const ManagerOptions& options, const Zone& zone) {
  auto rules = sched::ZoneRules::fromZone(zone);
  if (options.placement_policy_for) rules.custom_policy = options.placement_policy_for(zone);
  return rules;
}

}  // namespace

Manager::Manager(spi::Store& store, Clock& clock, Random& random, ManagerOptions options)
    : impl_(std::make_unique<Impl>(store, clock, random, options)) {}
Manager::~Manager() = default;

Result<void> Manager::start() {
  KASM_ASSIGN_OR_RETURN(auto zones, impl_->repo.list<Zone>());
  KASM_ASSIGN_OR_RETURN(auto agents, impl_->repo.list<Agent>());
  {
    std::lock_guard lock(impl_->mu);
    for (const auto& z : zones) impl_->scheduler.upsertZone(zoneRules(impl_->options, z.value));
    for (const auto& a : agents) (void)impl_->scheduler.upsertAgent(sched::AgentEntry::fromAgent(a.value));
  }
  KASM_RETURN_IF_ERROR(impl_->licensing.impl().initCounters());
  KASM_ASSIGN_OR_RETURN(int recovered, recover());
  (void)recovered;
  return {};
}

license::Licensing& Manager::licensing() {
  return impl_->licensing;
}

Result<Zone> Manager::upsertZone(Zone zone) {
  if (zone.id.empty()) zone.id = ZoneId::generate();
  if (zone.created_at == TimePoint{}) zone.created_at = impl_->clock.now();
  auto existing = impl_->repo.get<Zone>(zone.id.str());
  if (existing.ok()) {
    KASM_RETURN_IF_ERROR(impl_->repo.update(zone, existing->version));
  } else if (existing.error().code() == ErrorCode::kNotFound) {
    KASM_RETURN_IF_ERROR(impl_->repo.insert(zone));
  } else {
    return existing.error();
  }
  std::lock_guard lock(impl_->mu);
  impl_->scheduler.upsertZone(zoneRules(impl_->options, zone));
  return zone;
}

Result<Workspace> Manager::upsertWorkspace(Workspace ws) {
  if (ws.id.empty()) ws.id = WorkspaceId::generate();
  const auto now = impl_->clock.now();
  if (ws.created_at == TimePoint{}) ws.created_at = now;
  ws.updated_at = now;
  auto existing = impl_->repo.get<Workspace>(ws.id.str());
  if (existing.ok()) {
    KASM_RETURN_IF_ERROR(impl_->repo.update(ws, existing->version));
  } else if (existing.error().code() == ErrorCode::kNotFound) {
    KASM_RETURN_IF_ERROR(impl_->repo.insert(ws));
  } else {
    return existing.error();
  }
  return ws;
}

std::string vncPasswordFor(std::string_view key, const SessionId& session) {
  // VNC authentication uses the first 8 characters of a password.
  return auth::hmacSha256(key, "vnc-password~" + session.str()).substr(0, 8);
}

std::optional<std::string> Manager::vncPassword(const SessionId& session) const {
  if (impl_->options.session_secret_key.empty()) return std::nullopt;
  return vncPasswordFor(impl_->options.session_secret_key, session);
}

Result<GroupSettings> Manager::effectiveSettings(const UserId& user_id) {
  return impl_->settingsOf(user_id);
}

Result<GroupSettings> Manager::Impl::settingsOf(const UserId& user_id,
                                                const std::unordered_map<GroupId, Group>* groups) {
  KASM_ASSIGN_OR_RETURN(auto user, repo.get<User>(user_id.str()));
  std::optional<Group> best;
  for (const auto& gid : user.value.group_ids) {
    if (groups) {
      auto it = groups->find(gid);
      if (it != groups->end() && (!best || it->second.priority < best->priority)) best = it->second;
      continue;
    }
    auto g = repo.get<Group>(gid.str());
    if (!g.ok()) {
      if (g.error().code() == ErrorCode::kNotFound) continue;  // A deleted group grants nothing.
      return g.error();
    }
    if (!best || g->value.priority < best->priority) best = g->value;
  }
  return best ? best->settings : GroupSettings{};
}

Result<std::vector<Versioned<Agent>>> Manager::Impl::refreshPlacementView() {
  KASM_ASSIGN_OR_RETURN(auto zones, repo.list<Zone>());
  KASM_ASSIGN_OR_RETURN(auto agents, repo.list<Agent>());
  std::lock_guard lock(mu);
  for (const auto& z : zones) scheduler.upsertZone(zoneRules(options, z.value));
  for (const auto& a : agents) (void)scheduler.upsertAgent(sched::AgentEntry::fromAgent(a.value));
  return agents;
}

Result<ZoneId> Manager::Impl::resolveZone(const std::optional<ZoneId>& requested) {
  if (requested && !requested->empty()) {
    auto z = repo.get<Zone>(requested->str());
    if (!z.ok()) {
      if (z.error().code() == ErrorCode::kNotFound) return notFound("zone '" + requested->str() + "' does not exist");
      return z.error();
    }
    return *requested;
  }
  auto setting = repo.get<Setting>(std::string(settings::kDefaultZone));
  if (setting.ok() && !setting->value.value.empty()) return ZoneId(setting->value.value);
  KASM_ASSIGN_OR_RETURN(auto zones, repo.list<Zone>(spi::Query{.limit = 2}));
  if (zones.size() == 1) return zones.front().value.id;
  if (zones.empty()) return failedPrecondition("no deployment zone exists; create one first");
  return invalidArgument("zone_id is required: there are several zones and no default_zone setting");
}

void Manager::Impl::applyLifetimes(Session& s, const Workspace& ws, const GroupSettings& settings) {
  const auto now = clock.now();
  s.keepalive_at = now;
  s.expires_at = now + settings.keepalive_expiration;
  std::optional<Duration> limit = ws.session_time_limit ? ws.session_time_limit : settings.session_time_limit;
  if (limit) s.hard_expires_at = s.created_at + *limit;
  if (s.hard_expires_at && s.expires_at && *s.expires_at > *s.hard_expires_at) s.expires_at = s.hard_expires_at;
}

Result<Session> Manager::Impl::launchSession(const SessionRequest& req, const User& user, const std::string& launch_key,
                                             LaunchAttempt& attempt) {
  auto& im = *this;
  auto ws = im.repo.get<Workspace>(req.workspace_id.str());
  if (!ws.ok()) {
    if (ws.error().code() == ErrorCode::kNotFound)
      return notFound("workspace '" + req.workspace_id.str() + "' does not exist");
    return ws.error();
  }
  if (!ws->value.enabled) return failedPrecondition("workspace '" + ws->value.friendly_name + "' is disabled");
  if (ws->value.type == WorkspaceType::kLink) {
    return failedPrecondition("workspace '" + ws->value.friendly_name +
                              "' is a link: it opens its URL and starts no session");
  }
  const bool on_server = ws->value.type == WorkspaceType::kServer || ws->value.type == WorkspaceType::kServerPool;
  std::optional<ZoneId> zone_or;
  if (!on_server) {
    KASM_ASSIGN_OR_RETURN(zone_or,
                          im.resolveZone(ws->value.restrict_to_zone ? ws->value.restrict_to_zone : req.zone_id));
  }
  const ZoneId zone = zone_or.value_or(ZoneId());
  KASM_ASSIGN_OR_RETURN(GroupSettings settings, im.settingsOf(req.user_id));
  if (settings.max_sessions_per_user > 0) {
    // Only live ones (the user's history of ended sessions is not read).
    KASM_ASSIGN_OR_RETURN(
        auto mine,
        im.repo.list<Session>(spi::Query().where("user_id", req.user_id.str()).whereIn("state", liveStateNames())));
    const auto live = static_cast<std::int64_t>(mine.size());
    if (live >= settings.max_sessions_per_user) {
      return resourceExhausted("user '" + user.username + "' already has " + std::to_string(live) +
                               " session(s); the group limit is " + std::to_string(settings.max_sessions_per_user));
    }
  }

  // Expired licence or clock set back: refuse before touching anything. The limit itself is checked
  // again atomically with the session's insert (commitWithReservation).
  KASM_ASSIGN_OR_RETURN(license::Grant grant, im.licensing.impl().grant());
  if (!grant.allowsNewSessions()) return *grant.refusal;

  if (on_server) return im.startServerSession(req, user, ws->value, settings, grant, launch_key);

  KASM_ASSIGN_OR_RETURN(std::string profile, im.profileFor(req, user, ws->value, settings));
  if (profile.empty()) {
    // A staged session was started before its user was known: it has no profile of theirs.
    KASM_ASSIGN_OR_RETURN(auto staged, im.claimStaged(req, ws->value, zone, settings, grant, launch_key));
    if (staged) return staged->value;
  }

  Session s;
  s.id = SessionId::generate();
  s.user_id = req.user_id;
  s.workspace_id = ws->value.id;
  s.resources = ws->value.resources;
  s.launch_environment = req.environment;  // Kept so that a launch a crash interrupted can finish.
  s.profile = profile;
  s.launch_key = launch_key;  // Unique: the insert of a second session with this key fails.
  attempt.session_id = s.id;
  if (!profile.empty()) {
    KASM_RETURN_IF_ERROR(im.lockProfile(profile, s.id, ws->value.friendly_name, &attempt.profile_held_by_launch));
  }
  s.created_at = im.clock.now();
  s.state_changed_at = s.created_at;
  const Session launched = s;
  // Reset: the profile is removed once, by this call, on the agent the session was placed on,
  // after the session is stored and before its container first starts. Recovery and retries
  // (completeLaunch) only provision: a crash after the wipe never wipes what the session wrote
  // since (a crash before it leaves the profile as it was).
  std::function<Result<void>(spi::AgentLink&, const Session&)> reset;
  if (!profile.empty() && req.persistent_profile_mode == "Reset") {
    reset = [&](spi::AgentLink& link, const Session& x) -> Result<void> {
      auto wiped = link.removeProfile(x.profile);
      if (wiped.ok()) return {};
      return Error(wiped.error().code(), "resetting the persistent profile of workspace '" + ws->value.friendly_name +
                                             "' on agent " + (x.agent_id ? x.agent_id->str() : std::string("?")) +
                                             " failed: " + wiped.error().message());
    };
  }
  // Lifetimes start when the user gets the session: set in the same write that makes it running.
  auto done = im.placeAndProvision(
      std::move(s), ws->value, zone, req.environment, grant,
      [&](Session& x) { im.applyLifetimes(x, ws->value, settings); }, req.on_stored, reset);
  if (!done.ok()) {
    // Refused before its session was stored (nothing fits, the licence): the profile is free again.
    // A stored session that failed released it itself (failSession).
    if (!profile.empty()) {
      auto stored = im.repo.get<Session>(launched.id.str());
      if (!stored.ok() && stored.error().code() == ErrorCode::kNotFound) im.unlockProfile(launched);
    }
    return done.error();
  }
  return done->value;
}

Result<Versioned<Session>> Manager::Impl::placeAndProvision(
    Session s, const Workspace& ws, const ZoneId& zone, const std::map<std::string, std::string>& env,
    const license::Grant& grant, const std::function<void(Session&)>& on_running,
    const std::function<void(const Session&)>& on_committed,
    const std::function<Result<void>(spi::AgentLink&, const Session&)>& before_provision) {
  auto claim = claimLaunch(s.id);  // A fresh id: nobody else can own it.
  sched::PlacementRequest pr;
  pr.resources = ws.resources;
  pr.zone = zone;
  pr.restrict_to_zone = ws.restrict_to_zone;
  pr.restrict_to_agent = ws.restrict_to_agent;
  pr.include_labels = ws.include_labels;
  pr.exclude_labels = ws.exclude_labels;
  pr.image = ws.image;
  if (!ws.restrict_to_network.empty()) pr.include_labels["network." + ws.restrict_to_network] = "*";

  sched::Placement placement;
  bool refreshed = false;
  for (int attempt = 0;; ++attempt) {
    {
      std::unique_lock lock(mu);
      auto placed = scheduler.place(pr);
      const bool may_be_stale = !placed.ok() && (placed.error().code() == ErrorCode::kResourceExhausted ||
                                                 placed.error().code() == ErrorCode::kNotFound);
      if (may_be_stale && !refreshed) {
        // With several servers this one's view may be behind the store (an agent checked in
        // elsewhere, a zone was made elsewhere): read the store once, then decide.
        lock.unlock();
        refreshed = true;
        KASM_RETURN_IF_ERROR(refreshPlacementView());
        lock.lock();
        placed = scheduler.place(pr);
      }
      if (!placed.ok()) {
        if (placed.error().code() == ErrorCode::kResourceExhausted) noteUnplaced(zone, ws.resources);
        return placed.error();
      }
      placement = std::move(placed).value();
    }
    s.agent_id = placement.agent;
    s.zone_id = placement.zone;
    s.state = SessionState::kRequested;
    KASM_RETURN_IF_ERROR(
        s.transitionTo(SessionState::kProvisioning, "placed on agent " + placement.agent.str(), clock.now()));
    s.operational_message = placement.needs_pull ? "pulling image " + ws.image : "starting container";
    s.progress = 10;
    bool license_refused = false;
    auto committed = commitWithReservation(s, std::nullopt, placement.agent, ws.resources, 1, /*check_fit=*/true,
                                           &grant, &license_refused);
    if (committed.ok()) break;
    {
      std::lock_guard lock(mu);
      (void)scheduler.release(placement.agent, ws.resources);
    }
    // Another manager filled the agent first: the scheduler now holds the stored view; try again.
    if (license_refused || committed.error().code() != ErrorCode::kResourceExhausted ||
        attempt + 1 >= options.max_cas_retries) {
      return committed.error();
    }
  }

  if (on_committed) on_committed(s);
  auto link = linkFor(placement.agent);
  if (!link) {
    KASM_ASSIGN_OR_RETURN(auto cur, repo.get<Session>(s.id.str()));
    auto failed = failSession(std::move(cur), "agent " + placement.agent.str() + " is not connected to this manager");
    return unavailable("agent " + placement.agent.str() + " is not connected to this manager");
  }
  if (before_provision) {
    // Only here, on the first launch: the claim above keeps this process's tick() away meanwhile.
    auto prepared = before_provision(*link, s);
    if (!prepared.ok()) {
      KASM_ASSIGN_OR_RETURN(auto cur, repo.get<Session>(s.id.str()));
      (void)failSession(std::move(cur), prepared.error().message());
      return prepared.error();
    }
  }
  auto result = link->provision(provisionRequestFor(s, ws, env));
  if (!result.ok() && result.error().code() == ErrorCode::kUnavailable && on_committed) {
    // The launch was acknowledged and the agent did not answer (it restarted, or is away): the
    // session stays provisioning and tick() finishes it when the agent is back, or fails it once
    // launch_retry_limit has passed (provision is idempotent).
    return result.error().withContext("session " + s.id.str() + " waits for agent " + placement.agent.str());
  }
  if (!result.ok()) {
    KASM_ASSIGN_OR_RETURN(auto cur, repo.get<Session>(s.id.str()));
    (void)failSession(std::move(cur), "provisioning failed: " + result.error().message());
    return result.error().withContext("starting session " + s.id.str() + " on agent " + placement.agent.str());
  }
  return transition(s.id, SessionState::kRunning, "container ready", [&](Session& x) {
    x.container_id = result->container_id;
    x.container_name = result->container_name;
    x.upstream = result->upstream;
    x.operational_message = "running";
    x.progress = 100;
    if (on_running) on_running(x);
  });
}

std::optional<Manager::Impl::LaunchClaim> Manager::Impl::claimLaunch(const SessionId& id) {
  std::lock_guard lock(mu);
  if (!in_flight.insert(id).second) return std::nullopt;
  return std::optional<LaunchClaim>(std::in_place, *this, id);
}

Manager::Impl::LaunchClaim::~LaunchClaim() {
  if (!im_) return;
  std::lock_guard lock(im_->mu);
  im_->in_flight.erase(id_);
}

spi::ProvisionRequest Manager::Impl::provisionRequestFor(const Session& s, const Workspace& ws,
                                                         std::map<std::string, std::string> env) const {
  spi::ProvisionRequest preq{s.id, s.user_id, ws, s.resources, std::move(env)};
  if (!s.profile.empty()) {
    // The user's home between sessions: a host directory the agent creates for the image's user
    // (images/CONTRACT.md: uid 1000) or a Docker volume.
    VolumeMapping home;
    home.source = s.profile;
    home.target = ws.persistent_profile_target;
    home.uid = 1000;
    home.gid = 1000;
    preq.workspace.volumes.push_back(std::move(home));
  }
  if (ws.protocol == SessionProtocol::kVnc && !options.session_secret_key.empty()) {
    // Each desktop gets its own VNC password (images/CONTRACT.md), derived so that no store
    // column holds it and any manager of the installation can hand it to the session's owner.
    // Every path that may create the container (launch, recovery, resume) sets it.
    preq.environment["KASM_VNC_PASSWORD"] = vncPasswordFor(options.session_secret_key, s.id);
  }
  return preq;
}

Result<std::int64_t> Manager::Impl::commitWithReservation(const Session& session,
                                                          std::optional<std::int64_t> session_version,
                                                          const AgentId& agent_id, const Resources& delta, int count,
                                                          bool check_fit, const license::Grant* grant,
                                                          bool* license_refused) {
  std::string last_loss;
  for (int attempt = 0; attempt < options.max_cas_retries; ++attempt) {
    auto agent = repo.get<Agent>(agent_id.str());
    if (!agent.ok()) return agent.error();
    Agent a = agent->value;
    if (check_fit && !(a.capacity() - a.reserved).fits(delta)) {
      syncAgent(a);
      return resourceExhausted("agent " + agent_id.str() + " no longer has " + delta.toString() + " free");
    }
    a.reserved = count < 0 ? (a.reserved - delta).clampedAtZero() : a.reserved + delta;
    a.session_count = std::max(0, a.session_count + count);
    KASM_ASSIGN_OR_RETURN(spi::Mutation sm, session_version ? Repository::updateOp(session, *session_version)
                                                            : Repository::insertOp(session));
    KASM_ASSIGN_OR_RETURN(spi::Mutation am, Repository::updateOp(a, agent->version));
    auto usage = licensing.impl().usageMutations(grant, session, count, /*count_user=*/count > 0);
    if (!usage.ok()) {
      if (license_refused && count > 0) *license_refused = true;
      return usage.error();
    }
    std::vector<spi::Mutation> batch{std::move(sm), std::move(am)};
    for (auto& m : *usage) batch.push_back(std::move(m));
    auto applied = store.apply(batch);
    if (applied.ok()) {
      syncAgent(a);
      noteClosed(session);
      return applied->front();
    }
    // AlreadyExists: another manager created a usage row first (the session id is fresh), or
    // another launch stored a session with this launch's idempotency key, which no retry changes.
    if (applied.error().code() != ErrorCode::kAborted && applied.error().code() != ErrorCode::kAlreadyExists) {
      return applied.error();
    }
    if (applied.error().code() == ErrorCode::kAlreadyExists && !session_version && !session.launch_key.empty()) {
      KASM_ASSIGN_OR_RETURN(auto earlier, sessionWithLaunchKey(session.launch_key));
      if (earlier) return applied.error();
    }
    last_loss = applied.error().message();
    if (session_version) {
      auto cur = repo.get<Session>(session.id.str());
      if (!cur.ok() || cur->version != *session_version) return applied.error();  // The session moved on.
    }
    // Lost a race on the agent or the licence's usage rows, which every launch and teardown of
    // the installation writes: with several managers, retrying at once mostly meets the same
    // crowd. A random pause that grows with each loss (up to 64 ms) spreads them out.
    if (attempt > 0) {
      const std::uint64_t cap_us = std::uint64_t{1000} << std::min(attempt, 6);
      std::this_thread::sleep_for(std::chrono::microseconds(random.uniform(cap_us)));
    }
  }
  // Name the row that kept moving (the agent's, or the licence's usage counter).
  return aborted("gave up after " + std::to_string(options.max_cas_retries) + " attempts to reserve on agent " +
                 agent_id.str() + "; the last lost race: " + last_loss);
}

std::optional<sched::AgentEntry> Manager::schedulerView(const AgentId& id) const {
  std::lock_guard lock(impl_->mu);
  return impl_->scheduler.agent(id);
}

}  // namespace kasm
