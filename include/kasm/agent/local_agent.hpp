#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"
#include "kasm/model/agent.hpp"
#include "kasm/spi/agent_link.hpp"
#include "kasm/spi/container_runtime.hpp"

namespace kasm::agent {

// Labels every session container carries; reconciliation trusts nothing else.
inline constexpr const char* kManagedLabel = "kasm.managed";  // "true"
inline constexpr const char* kSessionIdLabel = "kasm.session_id";
inline constexpr const char* kAgentIdLabel = "kasm.agent_id";
inline constexpr const char* kWorkspaceIdLabel = "kasm.workspace_id";
inline constexpr const char* kUserIdLabel = "kasm.user_id";

struct LocalAgentOptions {
  AgentId agent_id;  // Required: scopes the containers this agent owns.
  // What a workspace with CpuAllocationMethod::kInherit gets.
  CpuAllocationMethod default_cpu_allocation = CpuAllocationMethod::kQuotas;
  std::string publish_host = "127.0.0.1";  // Where session ports are published.
  // Readiness: TCP connects to the published port, each bounded by probe_connect_timeout, with
  // pauses growing up to probe_interval, until one succeeds or probe_attempts have failed.
  Duration probe_connect_timeout = std::chrono::milliseconds(500);
  Duration probe_interval = std::chrono::milliseconds(50);
  int probe_attempts = 600;  // About 30 s for a slow desktop image.
  Duration stop_timeout = std::chrono::seconds(10);
  ResourceOverrides overrides;                // Applied to the host's totals in check-ins.
  std::map<std::string, std::string> labels;  // The agent's own labels, reported at check-in.
  bool measure_utilization = false;           // Sample container stats at check-in (about 1 s each).
  // Create missing bind-mount host directories (owned by the volume's uid/gid) before a container
  // starts. Only meaningful when the engine runs on this host (unix socket); turn off for remote ones.
  bool prepare_host_volumes = true;
  // Pull a workspace's image that is not on the host when a session of it is provisioned.
  bool pull_missing_images = true;
};

// What an agent tells the manager when it checks in.
struct AgentReport {
  AgentId agent_id;
  Resources capacity;            // Host totals with the overrides applied.
  Resources host;                // Host totals as the engine reports them.
  double cpu_utilization = 0.0;  // 0..1 of capacity, when measured.
  std::int64_t memory_used_bytes = 0;
  std::vector<std::string> images;  // "repo:tag" present on the host.
  std::map<std::string, std::string> labels;
  std::int32_t session_count = 0;  // Session containers on the host.
  std::string os;
  std::string engine_version;
  TimePoint at;
};

struct ReconcileReport {
  std::vector<std::string> removed_containers;  // Names of orphans removed.
  std::vector<SessionId> vanished_sessions;     // Live sessions with no container at all.
  std::vector<SessionId> stopped_sessions;      // Live sessions whose container is not running.
};

// Waits until something answers on `host:port`: a TCP connect succeeds and the peer either sends
// first or keeps the connection open for a moment (Docker's proxy accepts for a container that
// is not listening yet and then hangs up; that counts as not ready). Between attempts it sleeps
// 5 ms, doubling up to `interval`. DeadlineExceeded after `attempts` failures. Only meant for the
// loopback addresses session ports are published on.
Result<void> waitForTcp(const std::string& host_port, Duration connect_timeout, Duration interval, int attempts);

// The in-process agent: carries out the manager's orders on a local ContainerRuntime.
// Containers are named "kasm-<session id>" and labelled kasm.managed=true, kasm.session_id,
// kasm.agent_id, kasm.workspace_id (and kasm.user_id for assigned sessions).
//
// Threading: thread-safe; calls for different sessions run concurrently. Provisions of one session
// id run one at a time on one LocalAgent; across processes sharing an engine, concurrent provisions
// agree on one container (the engine's name uniqueness decides).
class LocalAgent final : public spi::AgentLink {
 public:
  LocalAgent(spi::ContainerRuntime& runtime, Clock& clock, LocalAgentOptions options);

  static std::string containerName(const SessionId& session) { return "kasm-" + session.str(); }

  // Creates and starts the session container, runs the workspace's first_launch hook and waits
  // until the session port accepts connections. Idempotent per session id: an existing container
  // of that session is started or unpaused if needed and returned, one left "created" by a process
  // that died between creating and starting it included. On a readiness or hook failure the
  // container is removed and the error returned.
  Result<spi::ProvisionResult> provision(const spi::ProvisionRequest& request) override;
  Result<void> stop(const SessionId& session) override;
  Result<void> destroy(const SessionId& session) override;
  Result<void> pause(const SessionId& session) override;
  Result<void> resume(const SessionId& session) override;
  Result<spi::ExecResult> exec(const SessionId& session, const spi::ExecRequest& request) override;
  Result<std::vector<spi::AgentSessionView>> sessions() override;
  // "host:port" of every published session port of this agent's containers (a reverse tunnel
  // connects only to these).
  Result<std::vector<std::string>> publishedAddresses();
  Result<void> execStream(const SessionId& session, const spi::ExecRequest& request,
                          const std::function<bool(std::string_view)>& on_stdout) override;
  Result<std::unique_ptr<spi::ExecInput>> execWithInput(const SessionId& session,
                                                        const spi::ExecRequest& request) override;
  // Files through the engine's archive API (local_agent_files.cpp): no service in the image.
  Result<void> putFile(const SessionId& session, const std::string& dir, const std::string& name,
                       std::string_view data) override;
  Result<std::string> getFile(const SessionId& session, const std::string& path, std::int64_t max_bytes) override;
  Result<std::vector<spi::FileEntry>> listFiles(const SessionId& session, const std::string& dir) override;
  // A Docker volume is removed; a host directory is removed only when this agent prepares host
  // volumes (the engine runs on this host) (local_agent_profiles.cpp).
  Result<void> removeProfile(const std::string& profile) override;

  // Host resources (with overrides), images and labels for the manager.
  Result<AgentReport> checkIn();

  // Removes every container of this agent whose session is not in `live`, and reports the live
  // sessions whose container vanished or stopped. Call it at start (after a crash the manager's
  // view is the truth) and periodically. `live` should hold the sessions placed on this agent
  // that the manager believes have a container.
  Result<ReconcileReport> reconcile(const std::set<SessionId>& live);

  const LocalAgentOptions& options() const { return options_; }

 private:
  spi::ContainerSpec specFor(const spi::ProvisionRequest& request) const;
  Result<void> prepareHostVolumes(const Workspace& workspace);
  // Pulls `image` when the host has no tag of that name: true when it pulled, false when present.
  Result<bool> pullIfMissing(const std::string& image);
  Result<spi::ProvisionResult> finishProvision(const spi::ContainerInfo& info, const spi::ProvisionRequest& request,
                                               bool fresh);
  Result<spi::ContainerInfo> ownContainer(const SessionId& session);

  spi::ContainerRuntime& runtime_;
  Clock& clock_;
  LocalAgentOptions options_;
  // Sessions a provision() of this agent is working on: a second provision of one waits for the
  // first, so a container found "created" is never one this process is starting.
  std::mutex provisions_mutex_;
  std::condition_variable provision_ended_;
  std::set<SessionId> provisioning_;
};

}  // namespace kasm::agent
