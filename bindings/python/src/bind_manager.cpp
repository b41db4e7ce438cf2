// The manager with in-process Docker agents, as the reference server runs it
// (reference-server/server_app.cpp): zones, workspaces, agents and the session life cycle.

#include <pybind11/stl.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kasm/core/enum_names.hpp"
#include "kasm/model/json.hpp"
#include "manager_state.hpp"
#include "shim.hpp"
#ifdef KASM_PYTHON_WITH_DOCKER
#include "kasm/docker/docker_runtime.hpp"
#endif

namespace kasm::python {
namespace {

template <class IdT>
IdT parseId(const std::string& s, const char* field) {
  return unwrap(IdT::parse(s, field));
}

Result<Agent> checkInDockerAgent(ManagerState& st, DockerAgent& a) {
  KASM_ASSIGN_OR_RETURN(auto report, a.link->checkIn());
  AgentCheckIn c;
  c.agent_id = a.id;
  c.token = a.token;
  c.reported = report.capacity;
  c.images = report.images;
  c.cpu_utilization = std::min(1.0, std::max(0.0, report.cpu_utilization));
  c.memory_used_bytes = report.memory_used_bytes;
  c.agent_version = report.engine_version;
  return st.manager->checkIn(c);
}

std::shared_ptr<ManagerHandle> createManager(std::shared_ptr<StoreHandle> store,
                                             std::optional<std::int64_t> manual_now_ms, bool unlimited_license,
                                             const std::string& session_secret_key,
                                             std::int64_t community_session_limit) {
  auto st = std::make_shared<ManagerState>();
  st->store = store->acquire();  // Shared ownership: the store outlives the manager whatever Python does.
  if (manual_now_ms) {
    auto clock = std::make_unique<ManualClock>(fromUnixMillis(*manual_now_ms));
    st->manual_clock = clock.get();
    st->clock = std::move(clock);
  } else {
    st->clock = std::make_unique<SystemClock>();
  }
  ManagerOptions opts;
  if (unlimited_license) {
    opts.license = license::LicensePolicy::unlimited();
  } else if (community_session_limit >= 0) {
    opts.license.community_session_limit = community_session_limit;
  }
  opts.session_secret_key = session_secret_key;
  st->manager = std::make_unique<Manager>(*st->store, *st->clock, st->random, std::move(opts));
  unwrap(st->manager->start());
  return std::make_shared<ManagerHandle>(std::move(st), "manager");
}

std::string addDockerAgent(ManagerState& st, const std::string& zone_id, const std::string& hostname,
                           const std::string& docker_host, const std::string& publish_host, int probe_attempts,
                           const std::string& agent_id) {
#ifdef KASM_PYTHON_WITH_DOCKER
  auto options = docker::DockerOptions::fromEnvironment();
  if (!docker_host.empty()) options.endpoint = docker_host;
  auto a = std::make_shared<DockerAgent>();
  a->runtime = unwrap(docker::openDockerRuntime(options));
  Agent agent;
  agent.hostname = hostname;
  agent.zone_id = parseId<ZoneId>(zone_id, "zone_id");
  if (!agent_id.empty()) agent.id = parseId<AgentId>(agent_id, "agent_id");
  auto reg = st.manager->registerAgent(agent);
  if (reg.ok()) {
    a->id = reg->agent.id;
    a->token = reg->token;
  } else if (reg.error().code() == ErrorCode::kAlreadyExists && !agent_id.empty()) {
    // A persistent store already knows this agent: an in-process agent simply takes a fresh token.
    a->id = agent.id;
    a->token = unwrap(st.manager->rotateAgentToken(a->id));
  } else {
    throw CallError(std::move(reg).error());
  }
  agent::LocalAgentOptions lopts;
  lopts.agent_id = a->id;
  lopts.publish_host = publish_host;
  lopts.probe_attempts = probe_attempts;
  a->link = std::make_shared<agent::LocalAgent>(*a->runtime, *st.clock, lopts);
  st.manager->attachAgentLink(a->id, a->link);
  {
    std::lock_guard lock(st.agents_mu);
    st.agents.push_back(a);
  }
  return toJson(unwrap(checkInDockerAgent(st, *a)));
#else
  (void)st, (void)zone_id, (void)hostname, (void)docker_host, (void)publish_host, (void)probe_attempts, (void)agent_id;
  throw CallError(failedPrecondition("this build of kasm has no Docker backend (KASM_WITH_DOCKER=OFF)"));
#endif
}

std::vector<std::shared_ptr<DockerAgent>> dockerAgents(ManagerState& st) {
  std::lock_guard lock(st.agents_mu);
  return st.agents;
}

ManualClock& manualClock(ManagerState& st) {
  if (st.manual_clock == nullptr) {
    throw CallError(failedPrecondition("the manager runs on the system clock; pass now_ms= to control time"));
  }
  return *st.manual_clock;
}

using SessionCall = Result<Session> (Manager::*)(const SessionId&);

// Binds a session call that takes only the id and returns the session as JSON.
void defSessionCall(py::class_<ManagerHandle, std::shared_ptr<ManagerHandle>>& c, const char* name, SessionCall call) {
  c.def(
      name,
      [call](const ManagerHandle& h, const std::string& id) {
        auto st = h.acquire();
        return toJson(unwrap(((*st->manager).*call)(parseId<SessionId>(id, "session_id"))));
      },
      py::arg("session_id"), ReleaseGil());
}

}  // namespace

void bindManager(py::module_& m) {
  py::class_<ManagerHandle, std::shared_ptr<ManagerHandle>> c(m, "Manager");
  c.def(py::init(&createManager), py::arg("store"), py::arg("now_ms") = py::none(),
        py::arg("unlimited_license") = false, py::arg("session_secret_key") = "",
        py::arg("community_session_limit") = -1, ReleaseGil());
  c.def_property_readonly("closed", &ManagerHandle::closed);
  c.def(
      "close", [](ManagerHandle& h) { h.release(); }, ReleaseGil());

  // ---- clock ----
  c.def("now_ms", [](const ManagerHandle& h) { return toUnixMillis(h.acquire()->clock->now()); });
  c.def("set_now_ms",
        [](const ManagerHandle& h, std::int64_t ms) { manualClock(*h.acquire()).set(fromUnixMillis(ms)); });
  c.def("advance_ms", [](const ManagerHandle& h, std::int64_t ms) { manualClock(*h.acquire()).advance(Duration(ms)); });

  // ---- zones, workspaces, agents ----
  c.def(
      "upsert_zone",
      [](const ManagerHandle& h, const std::string& json) {
        auto st = h.acquire();
        return toJson(unwrap(st->manager->upsertZone(unwrap(fromJson<Zone>(json)))));
      },
      ReleaseGil());
  c.def(
      "upsert_workspace",
      [](const ManagerHandle& h, const std::string& json) {
        auto st = h.acquire();
        return toJson(unwrap(st->manager->upsertWorkspace(unwrap(fromJson<Workspace>(json)))));
      },
      ReleaseGil());
  c.def(
      "register_agent",
      [](const ManagerHandle& h, const std::string& json) {
        auto st = h.acquire();
        auto reg = unwrap(st->manager->registerAgent(unwrap(fromJson<Agent>(json))));
        return std::pair<std::string, std::string>{toJson(reg.agent), reg.token};
      },
      ReleaseGil());
  c.def(
      "set_agent_availability",
      [](const ManagerHandle& h, const std::string& id, bool enabled, bool draining) {
        auto st = h.acquire();
        return toJson(unwrap(st->manager->setAgentAvailability(parseId<AgentId>(id, "agent_id"), enabled, draining)));
      },
      ReleaseGil());
  c.def(
      "add_docker_agent",
      [](const ManagerHandle& h, const std::string& zone_id, const std::string& hostname,
         const std::string& docker_host, const std::string& publish_host, int probe_attempts,
         const std::string& agent_id) {
        auto st = h.acquire();
        return addDockerAgent(*st, zone_id, hostname, docker_host, publish_host, probe_attempts, agent_id);
      },
      py::arg("zone_id"), py::arg("hostname"), py::arg("docker_host"), py::arg("publish_host"),
      py::arg("probe_attempts"), py::arg("agent_id"), ReleaseGil());
  c.def(
      "check_in_docker_agents",
      [](const ManagerHandle& h) {
        auto st = h.acquire();
        std::vector<std::string> out;
        for (auto& a : dockerAgents(*st)) out.push_back(toJson(unwrap(checkInDockerAgent(*st, *a))));
        return out;
      },
      ReleaseGil());
  c.def(
      "reconcile_docker_agents",
      [](const ManagerHandle& h) {
        auto st = h.acquire();
        for (auto& a : dockerAgents(*st)) unwrap(st->manager->reconcileAgent(a->id));
      },
      ReleaseGil());

  // ---- sessions ----
  c.def(
      "request_session",
      [](const ManagerHandle& h, const std::string& user_id, const std::string& workspace_id,
         const std::optional<std::string>& zone_id, const std::map<std::string, std::string>& environment,
         const std::string& idempotency_key) {
        auto st = h.acquire();
        SessionRequest r;
        r.user_id = parseId<UserId>(user_id, "user_id");
        r.workspace_id = parseId<WorkspaceId>(workspace_id, "workspace_id");
        if (zone_id) r.zone_id = parseId<ZoneId>(*zone_id, "zone_id");
        r.environment = environment;
        r.idempotency_key = idempotency_key;
        return toJson(unwrap(st->manager->requestSession(r)));
      },
      py::arg("user_id"), py::arg("workspace_id"), py::arg("zone_id"), py::arg("environment"),
      py::arg("idempotency_key") = std::string(), ReleaseGil());
  defSessionCall(c, "get_session", &Manager::getSession);
  defSessionCall(c, "keepalive", &Manager::keepalive);
  defSessionCall(c, "pause_session", &Manager::pauseSession);
  defSessionCall(c, "resume_session", &Manager::resumeSession);
  c.def(
      "destroy_session",
      [](const ManagerHandle& h, const std::string& id, const std::string& reason) {
        auto st = h.acquire();
        return toJson(unwrap(st->manager->destroySession(parseId<SessionId>(id, "session_id"), reason)));
      },
      py::arg("session_id"), py::arg("reason"), ReleaseGil());
  c.def(
      "stop_session",
      [](const ManagerHandle& h, const std::string& id, const std::string& reason) {
        auto st = h.acquire();
        return toJson(unwrap(st->manager->stopSession(parseId<SessionId>(id, "session_id"), reason)));
      },
      py::arg("session_id"), py::arg("reason"), ReleaseGil());
  c.def(
      "list_sessions",
      [](const ManagerHandle& h, const std::map<std::string, std::string>& where,
         const std::vector<std::string>& states) {
        auto st = h.acquire();
        spi::Query q;
        for (const auto& [column, value] : where) q.where(column, value);
        if (!states.empty()) q.whereIn("state", states);
        std::vector<std::string> out;
        for (const auto& s : unwrap(st->manager->listSessions(q))) out.push_back(toJson(s));
        return out;
      },
      py::arg("where"), py::arg("states"), ReleaseGil());
  c.def(
      "exec_in_session",
      [](const ManagerHandle& h, const std::string& id, const std::vector<std::string>& command) {
        auto st = h.acquire();
        spi::ExecRequest r;
        r.command = command;
        auto res = unwrap(st->manager->execInSession(parseId<SessionId>(id, "session_id"), r));
        return std::pair<int, std::string>{res.exit_code, res.output};
      },
      ReleaseGil());

  // ---- background work ----
  c.def("tick", [](const ManagerHandle& h) {
    Manager::TickReport t;
    {
      py::gil_scoped_release release;
      auto st = h.acquire();
      t = unwrap(st->manager->tick());
    }
    py::dict d;
    d["agents_missing"] = t.agents_missing;
    d["agents_dead"] = t.agents_dead;
    d["sessions_expired"] = t.sessions_expired;
    d["sessions_failed"] = t.sessions_failed;
    d["staged_launched"] = t.staged_launched;
    d["staged_expired"] = t.staged_expired;
    d["sessions_idle"] = t.sessions_idle;
    return d;
  });
  c.def(
      "vnc_password",
      [](const ManagerHandle& h, const std::string& id) {
        return h.acquire()->manager->vncPassword(parseId<SessionId>(id, "session_id"));
      },
      ReleaseGil());
}

}  // namespace kasm::python
