#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/random.hpp"
#include "kasm/core/result.hpp"
#include "kasm/license/licensing.hpp"
#include "kasm/model/model.hpp"
#include "kasm/sched/scheduler.hpp"
#include "kasm/spi/agent_link.hpp"
#include "kasm/spi/store.hpp"

namespace kasm {

struct ManagerOptions {
  // Agents check in every few seconds; silence turns them missing, then dead (Kasm's spirit).
  Duration agent_missing_after = std::chrono::seconds(30);
  Duration agent_dead_after = std::chrono::minutes(3);
  // A check-in that changes nothing but the time and the utilisation figures is stored only when
  // the stored one is at least this old (checkIn): silence is then noticed within
  // agent_missing_after plus this, and the check-ins in between cost one read instead of a read and
  // a write (agents at a 5 s period: one write in three). Zero: every check-in is written.
  Duration checkin_write_interval = std::chrono::seconds(15);
  // An interrupted launch whose agent keeps answering Unavailable is retried by tick() until it has
  // been starting this long, then fails with the agent's last error.
  Duration launch_retry_limit = std::chrono::minutes(10);
  // Retries of a lost compare-and-set race before giving up with Aborted.
  // (32: with several managers every launch and teardown of the installation updates the licence's
  // usage counter; a lost race waits a random pause that grows to 64 ms.)
  int max_cas_retries = 32;
  // Backoff of a staging pool after a failed launch, doubled per failure up to the max.
  Duration staging_backoff = std::chrono::seconds(5);
  Duration staging_backoff_max = std::chrono::minutes(5);
  // Licensing: limits without a licence, the keys licences must verify with, expiry warning. The
  // default is the community edition (5 concurrent sessions, no licensed feature such as staging
  // pools, no verifying key); see LicensePolicy and docs/licensing.md.
  license::LicensePolicy license;
  // When set (32 bytes or more, shared by the installation's managers), every session of a VNC
  // workspace gets its own VNC password, passed to the container as KASM_VNC_PASSWORD and
  // derived from this key and the session id (see vncPassword()).
  std::string session_secret_key;
  // A custom placement policy per zone (e.g. one made by a sched::PolicyRegistry). When set and it
  // returns a policy for a zone, that policy ranks the zone's agents instead of its load_strategy;
  // nullptr keeps the built-in one. Called with the manager's lock held: it must not call back.
  std::function<std::shared_ptr<const sched::PlacementPolicy>(const Zone&)> placement_policy_for;
  // A fixed server that has not answered a connection check for this long is dead (until then,
  // missing); neither takes new sessions.
  Duration server_dead_after = std::chrono::minutes(3);
  // Called after a session stopped serving viewers (it is stopping, stopped, paused, destroyed or
  // failed), once its new state is stored: a server closes the session's connections and tells
  // the installation's other servers (scale-out). Runs on the calling thread; must not block long.
  std::function<void(const SessionId&, SessionState)> on_session_closed;
  // Scale-out: a link to an agent no link was attached to in this process (it polls another server
  // of the installation), e.g. AgentCommands::link (kasm/cluster/agent_commands.hpp); made at
  // first use and kept. Empty: such an agent is "not connected to this manager". Called with the
  // manager's lock held: it must not call back.
  std::function<std::shared_ptr<spi::AgentLink>(const AgentId&)> remote_link;
};

// What an agent reports at check-in.
struct AgentCheckIn {
  AgentId agent_id;
  std::string token;             // The token registerAgent() returned.
  Resources reported;            // Host capacity.
  double cpu_utilization = 0.0;  // 0..1.
  std::int64_t memory_used_bytes = 0;
  std::vector<std::string> images;
  std::string agent_version;
};

struct SessionRequest {
  UserId user_id;
  WorkspaceId workspace_id;
  std::optional<ZoneId> zone_id;  // Default: the installation's default zone setting, else the only zone.
  std::map<std::string, std::string> environment;
  // For a fixed server that asks its users for credentials (blank user name and password): what
  // the user typed at launch. Kept sealed on the session, never returned.
  std::string connection_username;
  std::string connection_password;
  // Kasm's persistent_profile_mode: "" or "Enabled" (the workspace's persistent profile when the
  // user's group allows it; "Enabled" refuses when it does not), "Disabled" (a fresh home), or
  // "Reset" (as "Enabled", but the profile is removed on the session's agent before its container
  // first starts; only a per-user profile, never again on recovery or retries).
  std::string persistent_profile_mode;
  // Called once the new session is stored and placed (state provisioning, with its id), before
  // its container starts; requestSession() goes on until the session runs or fails. A server
  // answers the client from here and lets the start finish in the background (clients then
  // poll getSession() for progress). Not called for a session served from a staging pool.
  std::function<void(const Session&)> on_stored;
  // Makes the launch idempotent (HTTP's Idempotency-Key): requests of one user with the same key
  // make one session, even when they run at once on managers sharing a store; every other one
  // answers that session in whatever state it is now (provisioning, running, failed, ...) and
  // starts nothing. Empty: none. At most 255 bytes of printable ASCII (InvalidArgument otherwise).
  // Scoped per user; the same key with another workspace is refused (FailedPrecondition). Stored
  // only hashed with the user id (Session::launch_key), for as long as the session's row is kept
  // (purgeEndedSessions() frees it).
  std::string idempotency_key;
  // Called, instead of on_stored, when idempotency_key names an existing session: the answer is a
  // replay of an earlier launch.
  std::function<void(const Session&)> on_replayed;
};

// The longest SessionRequest::idempotency_key, in bytes.
inline constexpr std::size_t kMaxIdempotencyKeyBytes = 255;

// A fixed server's secrets as an administrator writes them. nullopt keeps what is stored; an empty
// value clears it. Sealed before they are stored (Manager::upsertServer).
struct ServerSecrets {
  std::optional<std::string> password;
  std::optional<std::string> private_key;  // SSH.
};

// Everything needed to connect a session to its fixed server, secrets unsealed and placeholders
// resolved: for the proxy and the desktop gateway only, never for an API.
struct ServerConnection {
  ServerId server_id;
  std::string server_name;
  ServerConnectionType type = ServerConnectionType::kRdp;
  std::string host;
  std::uint16_t port = 0;
  std::string username;
  std::string password;
  std::string domain;
  std::string private_key;
  RdpSecurity security = RdpSecurity::kAny;
  CertificatePolicy certificate_policy = CertificatePolicy::kPin;
  std::string keyboard_layout;
  std::string zone_gateway;  // The server's zone's desktop gateway, if it names one (Zone::gateway).
};

// The manager: agent registry, placement, session life cycle, keepalive and expiry, staging pools and
// crash recovery, over a Store (the source of truth) and AgentLinks (the agents).
//
// Threading: every public method is thread-safe. In-memory state (the scheduler's capacity index,
// agent links, staging backoff) is guarded by one mutex that is never held across store or agent
// calls. Calls that talk to an agent (requestSession, destroySession, ...) block until it answers;
// a server runs them on a worker pool while clients poll getSession().
//
// Consistency: every reservation is written to the store in the same atomic batch as the session it
// belongs to, with compare-and-set on the agent, so two managers sharing a store never over-book an
// agent and never both claim a staged session.
// What a user may transfer in and out of one session (Manager::fileTransferPolicy).
struct FileTransferPolicy {
  bool uploads = false;
  bool downloads = false;
  std::int64_t limit_bytes = 0;
  std::string upload_dir;  // Container paths: <home>/Uploads and <home>/Downloads.
  std::string download_dir;
};

class Manager {
 public:
  Manager(spi::Store& store, Clock& clock, Random& random, ManagerOptions options = {});
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Loads zones and agents from the store into the scheduler, then recovers sessions that a crash
  // left half-done (see recover()). Call once before anything else.
  Result<void> start();

  // ---- zones and workspaces ----
  Result<Zone> upsertZone(Zone zone);
  Result<Workspace> upsertWorkspace(Workspace workspace);

  // ---- agents ----
  // Registers a new agent (status pending until its first check-in). The returned token is shown
  // once: the store keeps only its hash, and every check-in must present it.
  struct AgentRegistration {
    Agent agent;
    std::string token;
  };
  // With `token_expires_at`, the token is a single-use registration token (an autoscaled
  // machine's startup script carries it): accepted until then, once, and exchanged at the first
  // check-in for a lasting one (checkIn's `issued_token`).
  Result<AgentRegistration> registerAgent(Agent agent, std::optional<TimePoint> token_expires_at = std::nullopt);
  // Removes an agent that holds no session any more (FailedPrecondition naming them otherwise):
  // its row, its place in the scheduler and its link.
  Result<void> removeAgent(const AgentId& id);
  // Replaces an agent's token (the old one stops working at once) and returns the new one.
  Result<std::string> rotateAgentToken(const AgentId& id);
  // Records a check-in: reported capacity, utilisation and images. An agent that was missing or dead
  // comes back to ok and is reconciled with the store (see reconcileAgent()). Unauthenticated for a
  // missing or wrong token; NotFound for an unknown agent; nothing changes then.
  // An agent that presents its registration token gets a lasting token in `issued_token` (the
  // registration token stops working at once); without somewhere to put it, such a check-in is
  // refused (FailedPrecondition) rather than lose the agent's only credential.
  Result<Agent> checkIn(const AgentCheckIn& report, std::string* issued_token = nullptr);
  // Launches refused for want of capacity in `zone` (agents) within `window`: their resources and
  // count, for the autoscaler (see kasm/autoscale/). Kept in memory, the last 15 minutes.
  struct UnplacedDemand {
    Resources resources;
    std::int32_t launches = 0;
  };
  UnplacedDemand unplacedDemand(const ZoneId& zone, Duration window) const;
  Result<Agent> setAgentAvailability(const AgentId& id, bool enabled, bool draining);
  Result<Agent> setAgentOverrides(const AgentId& id, const ResourceOverrides& overrides);
  // Records where the agent's reverse tunnel is reached (Agent::tunnel_gateway; "" when it closed).
  // With `only_if`, only while the stored value is that one: a server clears only its own tunnel,
  // never the one the agent has meanwhile attached to another server.
  Result<void> setAgentTunnel(const AgentId& id, std::string gateway, std::optional<std::string> only_if = {});
  // The images an agent should keep pulled: those of the enabled container workspaces that may run
  // on it (not restricted to another agent or zone), sorted, each once.
  Result<std::vector<std::string>> desiredImages(const AgentId& id);
  // Connects the manager to an agent (in-process or remote). Replaces an earlier link.
  void attachAgentLink(const AgentId& id, std::shared_ptr<spi::AgentLink> link);
  void detachAgentLink(const AgentId& id);
  // Compares what the agent holds with the store: sessions whose container vanished are failed,
  // containers the store does not know as live are destroyed, a running session whose container
  // stopped (its engine restarted, the host rebooted) is started again with its new address (it
  // fails instead after 3 restarts within 10 minutes), and a paused one whose container stopped
  // becomes stopped (resuming it starts it again).
  struct AgentReconciliation {
    int sessions_failed = 0;
    int sessions_restarted = 0;
    int sessions_stopped = 0;
    int orphans_removed = 0;
    bool changed() const { return sessions_failed + sessions_restarted + sessions_stopped + orphans_removed > 0; }
  };
  Result<AgentReconciliation> reconcileAgent(const AgentId& id);

  // ---- fixed servers (RDP, VNC, SSH, KasmVNC) and server pools ----
  // Creates or updates a server. Secrets are sealed under session_secret_key (FailedPrecondition
  // without one); the caller cannot set the sealed fields, slots or status (they are kept from the
  // stored row). The zone and pool must exist.
  Result<Server> upsertServer(Server server, const ServerSecrets& secrets = {});
  // FailedPrecondition while the server serves sessions (disable it first: it drains).
  Result<void> removeServer(const ServerId& id);
  Result<ServerPool> upsertServerPool(ServerPool pool);
  // FailedPrecondition while servers or workspaces still use it.
  Result<void> removeServerPool(const ServerPoolId& id);
  // Kasm's assign_user_server / unassign_user_server: only `user` is placed on the server (nullopt:
  // anyone).
  Result<Server> assignUserServer(const ServerId& id, std::optional<UserId> user);
  // Records a connection check of a server (ServerMonitor): answered -> running; silent -> missing,
  // and dead once it has not answered for server_dead_after.
  Result<Server> recordServerCheck(const ServerId& id, bool answered, std::string reason);
  // Checks every enabled server now (a TCP connect each, all at once, within `timeout`) and records
  // the results. Returns how many answered. Blocks up to `timeout`: run it from a background loop.
  Result<int> checkServers(Duration timeout = std::chrono::seconds(3));
  // How to connect `session` (a session on a fixed server) now. NotFound / FailedPrecondition when
  // it is not such a session or its server is gone; DataLoss when a secret does not unseal.
  Result<ServerConnection> serverConnection(const SessionId& session);

  // ---- sessions ----
  // Licence -> limits -> a staged session if one fits -> placement -> provision -> running. Returns
  // the session in `running`, or an error (the session, if one was created, is left `failed` with
  // the reason and its reservation released). Licence refusals: ResourceExhausted when the licence's
  // concurrent-session or named-user limit is reached, FailedPrecondition when the licence expired
  // or the clock was set back; the message says which and what to do. The licence check and the
  // session's insert are one atomic store batch, so the limit holds across managers.
  // With an idempotency key naming an existing session of the user (looked up first, and again
  // when the session's write finds the key taken), returns that session as it is now, whatever
  // its state, and neither limits nor the licence are consulted; whatever was reserved or locked
  // on the way is released.
  Result<Session> requestSession(const SessionRequest& request);
  Result<Session> getSession(const SessionId& id);
  Result<std::vector<Session>> listSessions(const spi::Query& query = {});
  Result<Session> destroySession(const SessionId& id, std::string reason = "deleted by request");
  Result<Session> stopSession(const SessionId& id, std::string reason = "stopped by request");
  Result<Session> pauseSession(const SessionId& id);
  Result<Session> resumeSession(const SessionId& id);
  // Extends the keepalive expiry by the user's group keepalive_expiration, never past the hard limit.
  Result<Session> keepalive(const SessionId& id);
  // Records user activity (from the proxy) for idle tracking.
  Result<void> recordActivity(const SessionId& id);
  Result<spi::ExecResult> execInSession(const SessionId& id, const spi::ExecRequest& request);

  // ---- files of a session (manager_files.cpp) ----
  // Only the session's owner transfers files, as their groups allow (allow_uploads,
  // allow_downloads, file_transfer_limit_mb); PermissionDenied otherwise, with the reason.
  // Uploads land in ~/Uploads of the session, downloads come from ~/Downloads (the workspace's
  // persistent_profile_target is the home), through the session's agent.
  Result<FileTransferPolicy> fileTransferPolicy(const SessionId& session, const UserId& requester);
  // Writes `data` as ~/Uploads/`name`; returns the file as stored. ResourceExhausted over the limit.
  Result<spi::FileEntry> uploadFile(const SessionId& session, const UserId& requester, const std::string& name,
                                    std::string_view data);
  // The regular files of ~/Downloads, newest first.
  Result<std::vector<spi::FileEntry>> listDownloads(const SessionId& session, const UserId& requester);
  // The content of ~/Downloads/`name`. ResourceExhausted over the limit.
  Result<std::string> downloadFile(const SessionId& session, const UserId& requester, const std::string& name);

  // ---- persistent profiles (manager_profiles.cpp) ----
  // What removeUserProfiles() did, one entry per profile and agent.
  struct ProfileRemoval {
    struct Entry {
      WorkspaceId workspace_id;
      std::string workspace_name;
      std::string profile;
      std::optional<AgentId> agent_id;  // Empty when the profile was left before any agent was asked.
      std::string error;                // Why it was left; empty in `removed`.
    };
    std::vector<Entry> removed;  // Removed on that agent (or it had none).
    std::vector<Entry> failed;   // Left in place, with the reason.
  };
  // Removes the per-user persistent profiles of `user` (one being deleted: call it once the user's
  // sessions ended and its row is gone): for every workspace whose persistent_profile_path has
  // {username} or {user_id}, ws.profileFor(username, id) on every agent connected to this manager
  // (profiles live on each agent's host, or on storage they share). A profile is left, and listed
  // in `failed`, while a live session holds it, when removing it would take another profile with
  // it (another user's with the same path, or one inside it), and on every registered agent that is
  // not connected here. Errors only for the store.
  Result<ProfileRemoval> removeUserProfiles(const User& user);

  // ---- audio of a session (manager_files.cpp) ----
  // The session's sound as it plays: 24 kHz stereo s16le PCM from the desktop's PulseAudio
  // (images/CONTRACT.md), handed to `on_pcm` in pieces of whole frames until it returns false or
  // the session's stream ends. Only the owner, when their groups allow_audio (PermissionDenied
  // otherwise). Blocks meanwhile: run it on a thread of its own.
  static constexpr int kAudioRate = 24000;
  static constexpr int kAudioChannels = 2;
  Result<void> streamAudio(const SessionId& session, const UserId& requester,
                           const std::function<bool(std::string_view)>& on_pcm);
  // The desktop's microphone: what is written to the returned input (24 kHz mono s16le PCM) is
  // what the desktop's applications record (its PulseAudio's default source, images/CONTRACT.md).
  // Only the owner, when their groups allow_microphone.
  static constexpr int kMicrophoneRate = 24000;
  Result<std::unique_ptr<spi::ExecInput>> openMicrophone(const SessionId& session, const UserId& requester);

  // ---- background work, driven by the caller's timer (or a test's manual clock) ----
  struct TickReport {
    int agents_missing = 0;
    int agents_dead = 0;
    int sessions_expired = 0;
    int sessions_failed = 0;
    int staged_launched = 0;
    int staged_expired = 0;
    int sessions_idle = 0;       // Running sessions past their group's idle_disconnect (see idleSessions()).
    int launches_completed = 0;  // Acknowledged launches an interruption left provisioning, now running.
    int teardowns_pending = 0;   // Sessions left stopping whose teardown failed again (agent away, ...).
    std::string teardown_error;  // The last such failure.
  };
  // Agent liveness, session expiry (keepalive, hard limit) and staging pools, once. Staging pools
  // launch only when the licence includes the `staging` feature and allows new sessions.
  Result<TickReport> tick();
  // The same for the zones this manager leads (scale-out: one primary per zone runs its
  // background work; kasm/cluster/membership.hpp): agents, sessions and staging pools elsewhere
  // are left to their zones' primaries.
  Result<TickReport> tick(const std::set<ZoneId>& zones);
  // Finishes now the acknowledged launches placed on `agent` that no call of this process is
  // provisioning (tick() does it for every agent), e.g. as soon as a restarted agent is back.
  // Returns how many completed (running or failed with their reason).
  Result<int> completeLaunches(const AgentId& agent);
  // Running sessions without user input for longer than their group's idle_disconnect; the proxy
  // disconnects their viewers (the session itself lives on until its keepalive expires).
  Result<std::vector<SessionId>> idleSessions();
  // Session history: deletes the rows of sessions that ended (destroyed or failed) more than
  // `older_than` ago, in `zones` (nullptr: every zone; scale-out: the zones this manager leads, so
  // one manager does it; sessions never placed, without a zone, by any), at most `max_rows` per call. Returns how many
  // were deleted. A row that changed meanwhile is left for the next call.
  Result<int> purgeEndedSessions(Duration older_than, const std::set<ZoneId>* zones = nullptr,
                                 std::size_t max_rows = 1000);
  // Recovery after a crash: `requested` sessions fail (they were never acknowledged as placed);
  // `provisioning` ones, acknowledged launches, are finished (provision is idempotent) when their
  // agent is connected, or by tick() once it connects; they fail only when the agent refuses them
  // or is declared dead; `stopping` ones finish their teardown.
  Result<int> recover();

  // The effective group settings of a user: the settings of their group with the lowest priority
  // number; defaults when they belong to none.
  Result<GroupSettings> effectiveSettings(const UserId& user);

  // Licences of this installation: add, remove, status (usage, days left), features. Shares the
  // manager's store, clock and policy (ManagerOptions::license).
  license::Licensing& licensing();

  // The VNC password of a session (for its owner's viewer); nullopt without session_secret_key.
  std::optional<std::string> vncPassword(const SessionId& session) const;

  // The scheduler's view, for inspection and tests (copy).
  std::optional<sched::AgentEntry> schedulerView(const AgentId& id) const;

  // Opaque; public only so the implementation files can share helpers.
  struct Impl;

 private:
  Result<TickReport> tickZones(const std::set<ZoneId>* zones);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kasm
