#pragma once

#include <string>
#include <vector>

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
};

}  // namespace kasm::spi
