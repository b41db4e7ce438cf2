#pragma once

// Private state of kasm::Manager, shared by the files that implement it.

#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kasm/manager/manager.hpp"
#include "kasm/store/repository.hpp"
#include "license/licensing_impl.hpp"

namespace kasm {

// The VNC password of a session under `key` (see ManagerOptions::session_secret_key).
std::string vncPasswordFor(std::string_view key, const SessionId& session);

struct Manager::Impl {
  Impl(spi::Store& s, Clock& c, Random& r, ManagerOptions o)
      : store(s), repo(s), clock(c), random(r), options(o), licensing(s, c, o.license), scheduler(r) {}

  spi::Store& store;
  Repository repo;
  Clock& clock;
  Random& random;
  ManagerOptions options;
  license::Licensing licensing;  // Thread-safe on its own.

  mutable std::mutex mu;  // Guards everything below; never held across store or agent calls.
  sched::Scheduler scheduler;
  std::unordered_map<AgentId, std::shared_ptr<spi::AgentLink>> links;
  std::set<SessionId> in_flight;  // Sessions a call of this process is provisioning right now.

  // A launch owned by one call of this process, from before its session is stored until it has
  // its answer: a tick that finds the session provisioning leaves it alone meanwhile.
  class LaunchClaim {
   public:
    LaunchClaim(Impl& im, SessionId id) : im_(&im), id_(std::move(id)) {}
    LaunchClaim(LaunchClaim&& other) noexcept : im_(std::exchange(other.im_, nullptr)), id_(std::move(other.id_)) {}
    LaunchClaim(const LaunchClaim&) = delete;
    LaunchClaim& operator=(const LaunchClaim&) = delete;
    LaunchClaim& operator=(LaunchClaim&&) = delete;
    ~LaunchClaim();

   private:
    Impl* im_;
    SessionId id_;
  };
  // Empty when a call of this process already owns the launch of `id`.
  std::optional<LaunchClaim> claimLaunch(const SessionId& id);
  struct Backoff {
    TimePoint retry_at;
    Duration delay{0};
  };
  std::unordered_map<StagingConfigId, Backoff> staging_backoff;
  // Launches the scheduler refused for want of capacity, newest last (Manager::unplacedDemand).
  struct Unplaced {
    TimePoint at;
    ZoneId zone;
    Resources resources;
  };
  std::deque<Unplaced> unplaced;
  void noteUnplaced(const ZoneId& zone, const Resources& r);  // With mu held.
  // ManagerOptions::on_session_closed for a session just stored in a state without viewers.
  void noteClosed(const Session& s);

  // Reads every zone and agent from the store into the scheduler: another manager of the
  // installation may have made a zone or taken an agent's check-in (scale-out).
  // Returns the agents it read.
  Result<std::vector<Versioned<Agent>>> refreshPlacementView();

  std::shared_ptr<spi::AgentLink> linkFor(const AgentId& id) {
    std::lock_guard lock(mu);
    auto it = links.find(id);
    if (it != links.end()) return it->second;
    if (!options.remote_link) return nullptr;
    auto link = options.remote_link(id);
    if (link) links.emplace(id, link);
    return link;
  }

  void syncAgent(const Agent& agent) {
    std::lock_guard lock(mu);
    (void)scheduler.upsertAgent(sched::AgentEntry::fromAgent(agent));
  }

  // Writes `session` (insert when `session_version` is empty, else compare-and-set update) in one
  // batch with a change of the agent's reservation by `delta` and its session count by `count`, and
  // the licence usage rows (a session counts against the licence exactly while it holds a
  // reservation), retrying lost races on the agent and the usage rows. With `check_fit`, refuses
  // when the agent as stored no longer has room (another manager took it). With count > 0, `grant`
  // is required and the licence limit is checked on the usage row read in the same attempt, so the
  // check and the reservation are one compare-and-set; a licence refusal sets `*license_refused`.
  // Returns the session's new version.
  Result<std::int64_t> commitWithReservation(const Session& session, std::optional<std::int64_t> session_version,
                                             const AgentId& agent_id, const Resources& delta, int count, bool check_fit,
                                             const license::Grant* grant = nullptr, bool* license_refused = nullptr);

  // What the agent is asked to start for `s`, with the session's own VNC password.
  spi::ProvisionRequest provisionRequestFor(const Session& s, const Workspace& ws,
                                            std::map<std::string, std::string> env) const;

  // Finishes an acknowledged launch (stored as provisioning) that no call of this process is
  // provisioning: provision() is idempotent per session id, so the agent returns the container a
  // lost answer created, or creates it now. False when it cannot be tried yet (its agent is not
  // connected here or did not answer); a later tick tries again, and a dead agent fails it.
  Result<bool> completeLaunch(Versioned<Session> s, std::string_view why);
  // Starts again the container of a running session that stopped (reconcileAgent): true when it
  // runs again, with its new upstream stored; false when the session failed instead (it cannot
  // start, or it stopped kMaxRestartsPerWindow times within kRestartWindow). Unavailable when its
  // agent (or the agent's engine) cannot do it yet; Aborted when it is no longer running.
  Result<bool> restartSession(Versioned<Session> s, spi::AgentLink& link);
  static constexpr int kMaxRestartsPerWindow = 3;
  static constexpr Duration kRestartWindow = std::chrono::minutes(10);
  std::unordered_map<SessionId, std::vector<TimePoint>> restarts;  // Guarded by mu.
  // The settings of the user's group with the lowest priority number (Manager::effectiveSettings).
  // With `groups` (every group, read once by a caller that asks for many users), no group is read.
  Result<GroupSettings> settingsOf(const UserId& user, const std::unordered_map<GroupId, Group>* groups = nullptr);

  // Moves a session to a new state with compare-and-set, re-reading on a lost race as long as the
  // transition is still allowed. `mutate` may change other fields.
  Result<Versioned<Session>> transition(const SessionId& id, SessionState next, std::string reason,
                                        const std::function<void(Session&)>& mutate = {});

  // Fails a session and releases its reservation.
  Result<Session> failSession(Versioned<Session> s, std::string reason);
  // Runs the teardown of a session in `stopping` and records the end state.
  Result<Session> finishTeardown(Versioned<Session> s);

  // `on_running` (optional) edits the session in the write that makes it running.
  // `before_provision` (optional) runs once, on the session's agent, after the session is stored
  // and before its container is first provisioned (a profile reset); when it fails, the session
  // fails with its message. Recovery and tick() (completeLaunch) never run it.
  Result<Versioned<Session>> placeAndProvision(
      Session session, const Workspace& ws, const ZoneId& zone, const std::map<std::string, std::string>& env,
      const license::Grant& grant, const std::function<void(Session&)>& on_running = {},
      const std::function<void(const Session&)>& on_committed = {},
      const std::function<Result<void>(spi::AgentLink&, const Session&)>& before_provision = {});
  // Claims a staged session for `req`'s user, with `launch_key` in the claim's write. When another
  // launch stored a session with that key first, AlreadyExists (the staged session is left as it was).
  Result<std::optional<Versioned<Session>>> claimStaged(const SessionRequest& req, const Workspace& ws,
                                                        const ZoneId& zone, const GroupSettings& settings,
                                                        const license::Grant& grant, const std::string& launch_key);
  void applyLifetimes(Session& s, const Workspace& ws, const GroupSettings& settings);

  Result<Session> teardownAs(const SessionId& id, ExpirationAction action, std::string reason);

  // Persistent profiles (manager_profiles.cpp). The profile a launch mounts ("" for none), after
  // checking the request's mode and the group's allow_persistent_profile.
  Result<std::string> profileFor(const SessionRequest& req, const User& user, const Workspace& ws,
                                 const GroupSettings& settings);
  // The store's lock of a profile (a settings row naming the session), so that no two launches,
  // in this process or in managers sharing the store, mount one profile: taken before the launch,
  // released when the session ends (FailedPrecondition naming the session that holds it). A lock
  // whose session ended, or was never stored and is older than kProfileLaunchGrace (a crash
  // between lock and launch), is taken over.
  // A refusal because another launch holds the lock and has not stored its session yet sets
  // `*held_by_launch`.
  Result<void> lockProfile(const std::string& profile, const SessionId& session, const std::string& workspace_name,
                           bool* held_by_launch = nullptr);
  void unlockProfile(const Session& session);

  // Fixed servers (manager_servers.cpp). A session on a server starts running at once: the server
  // is up already. The session's insert, the server's slot and the licence usage are one batch,
  // compare-and-set on the server row, so limits hold across managers.
  // `launch_key` goes into the session's insert; AlreadyExists when another launch stored a session
  // with it first.
  Result<Session> startServerSession(const SessionRequest& req, const User& user, const Workspace& ws,
                                     const GroupSettings& settings, const license::Grant& grant,
                                     const std::string& launch_key);
  // Writes the end of a server session (`session` at `version`) with its slot freed and the licence
  // usage released, in one batch. Returns the session's new version.
  Result<std::int64_t> commitServerEnd(const Session& session, std::int64_t version);
  // Sealed under session_secret_key for one purpose: a server's stored credentials (the default)
  // or what a user typed at launch, so that neither can be passed off as the other.
  Result<std::string> sealSecret(std::string_view plain, std::string_view purpose = kServerSecretPurpose) const;
  Result<std::string> unsealSecret(std::string_view sealed, std::string_view purpose = kServerSecretPurpose) const;
  static constexpr std::string_view kServerSecretPurpose = "server-credentials";
  static constexpr std::string_view kPromptSecretPurpose = "session-credentials";
  Result<ZoneId> resolveZone(const std::optional<ZoneId>& requested);

  // Idempotent launches (manager_launch_keys.cpp). What one launch attempt did, for requestSession
  // to tell its own session from another launch's with the same key.
  struct LaunchAttempt {
    SessionId session_id;                 // The session this attempt made (empty before it made one).
    bool profile_held_by_launch = false;  // Refused: a launch that has not stored its session holds the profile.
  };
  // Licence -> limits -> a staged session if one fits -> placement -> provision (requestSession
  // without its idempotency): `launch_key` goes into the write that makes or claims the session.
  Result<Session> launchSession(const SessionRequest& req, const User& user, const std::string& launch_key,
                                LaunchAttempt& attempt);
  // The session stored with `launch_key` (Session::launch_key), if any.
  Result<std::optional<Session>> sessionWithLaunchKey(const std::string& launch_key);
  // The answer to a launch whose key names `earlier`: it, unless it is of another workspace.
  Result<Session> replayLaunch(const SessionRequest& req, Session earlier);
};

// The stored form of an idempotency key of `user`: hex SHA-256 of the user id, a newline and the key.
std::string launchKeyFor(const UserId& user, std::string_view idempotency_key);

// States that count against a user's session limit and a license.
bool isLive(SessionState state);
// The names of the states isLive() holds for (a store query's filter).
std::vector<std::string> liveStateNames();

}  // namespace kasm
