#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"
#include "kasm/model/session.hpp"
#include "kasm/model/workspace.hpp"
#include "kasm/spi/container_runtime.hpp"

namespace kasm::spi {

// What the manager asks an agent to start for a session.
struct ProvisionRequest {
  SessionId session_id;
  UserId user_id;                                  // Empty for a staged session.
  Workspace workspace;                             // The workspace as it was when the session was placed.
  Resources resources;                             // What was reserved for it.
  std::map<std::string, std::string> environment;  // Extra variables (e.g. the VNC password).
};

struct ProvisionResult {
  std::string container_id;
  std::string container_name;
  std::string upstream;  // "host:port" the proxy forwards to.
};

// One session container as an agent sees it, for reconciliation.
struct AgentSessionView {
  SessionId session_id;
  std::string container_id;
  ContainerStatus status = ContainerStatus::kRunning;
};

// One file of a session's directory (a download's listing).
struct FileEntry {
  std::string name;
  std::int64_t size = 0;
  TimePoint modified;
};

// The manager's handle on one agent: in-process (kasm/agent/local_agent.hpp) or remote over HTTPS.
//
// Threading: methods may be called from any thread; they block until the agent answers.
// Errors: Unavailable when the agent cannot be reached (the manager then treats it as missing),
// NotFound for an unknown session container, plus the ContainerRuntime errors of the operation.
// provision() is idempotent per session id: a retry after a lost answer returns the same container.
class AgentLink {
 public:
  virtual ~AgentLink() = default;

  virtual Result<ProvisionResult> provision(const ProvisionRequest& request) = 0;
  // Stops (keeps) or removes the session's container. Removing one that is gone succeeds.
  virtual Result<void> stop(const SessionId& session) = 0;
  virtual Result<void> destroy(const SessionId& session) = 0;
  virtual Result<void> pause(const SessionId& session) = 0;
  virtual Result<void> resume(const SessionId& session) = 0;
  virtual Result<ExecResult> exec(const SessionId& session, const ExecRequest& request) = 0;
  // Every session container the agent holds, for reconciliation after a restart or an outage.
  virtual Result<std::vector<AgentSessionView>> sessions() = 0;

  // ---- streams and files (optional: the defaults answer FailedPrecondition) ----
  // Starts a command in the session's container whose standard input the caller feeds
  // (ContainerRuntime::execWithInput).
  virtual Result<std::unique_ptr<ExecInput>> execWithInput(const SessionId& session, const ExecRequest& request) {
    (void)session, (void)request;
    return failedPrecondition("this agent cannot feed sessions (an agent that dials in does not yet)");
  }
  // Runs a command in the session's container and hands its standard output over as it comes
  // (ContainerRuntime::execStream), until it ends or `on_stdout` returns false. Blocks meanwhile.
  virtual Result<void> execStream(const SessionId& session, const ExecRequest& request,
                                  const std::function<bool(std::string_view)>& on_stdout) {
    (void)session, (void)request, (void)on_stdout;
    return failedPrecondition("this agent cannot stream from sessions (an agent that dials in does not yet)");
  }
  // Writes `data` as `dir`/`name` in the session's container, owned by the image's user (uid and
  // gid 1000, images/CONTRACT.md) and creating `dir` when missing; an existing file of that name
  // is replaced. `dir` is an absolute container path; `name` one path segment.
  virtual Result<void> putFile(const SessionId& session, const std::string& dir, const std::string& name,
                               std::string_view data) {
    (void)session, (void)dir, (void)name, (void)data;
    return failedPrecondition("this agent cannot copy files into sessions");
  }
  // The content of the regular file `path` of the container. PermissionDenied for anything the
  // image's user could not read itself (not a regular file, or not readable by uid 1000);
  // ResourceExhausted when it is larger than `max_bytes`; NotFound when it does not exist.
  virtual Result<std::string> getFile(const SessionId& session, const std::string& path, std::int64_t max_bytes) {
    (void)session, (void)path, (void)max_bytes;
    return failedPrecondition("this agent cannot copy files out of sessions");
  }
  // The regular files directly in `dir` of the container (an empty list when `dir` is missing).
  virtual Result<std::vector<FileEntry>> listFiles(const SessionId& session, const std::string& dir) {
    (void)session, (void)dir;
    return failedPrecondition("this agent cannot list files of sessions");
  }
  // Deletes a persistent profile (Workspace::persistent_profile_path after substitution: a host
  // directory or a Docker volume on this agent's host). Succeeds when there is none.
  virtual Result<void> removeProfile(const std::string& profile) {
    (void)profile;
    return failedPrecondition("this agent cannot remove persistent profiles");
  }
};

}  // namespace kasm::spi
