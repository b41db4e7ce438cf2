// kasm-server: its agents. The in-process agent on the local Docker engine (set up at start and
// checked in from the background loop), and the endpoints remote kasm-agents dial into (check-in,
// long poll for commands, results), each served by a RemoteAgentLink.

#include <boost/json.hpp>
#include <set>
#include <utility>

#include "kasm/command/command_provider.hpp"
#ifdef KASM_SERVER_HAS_AWS
#include "kasm/aws/ec2_provider.hpp"
#endif
#include "kasm/agent/local_agent.hpp"
#include "kasm/agent/remote_link.hpp"
#include "kasm/agent/upstream_policy.hpp"
#include "kasm/auth/secret.hpp"
#include "kasm/docker/docker_runtime.hpp"
#include "server_app.hpp"

namespace kasm::server {

Result<void> ServerApp::setUpLocalAgent() {
  KASM_ASSIGN_OR_RETURN(runtime_, docker::openDockerRuntime(docker::DockerOptions::fromEnvironment()));
  KASM_ASSIGN_OR_RETURN(std::string zone_id,
                        settingOr(*repo_, clock_, std::string(settings::kDefaultZone), [] { return std::string(); }));
  auto existing = repo_->get<Setting>("local_agent_id");
  if (existing.ok() && repo_->get<Agent>(existing->value.value).ok()) {
    local_agent_id_ = AgentId(existing->value.value);
    // The token is kept only as a hash: an in-process agent simply takes a fresh one each start.
    KASM_ASSIGN_OR_RETURN(local_agent_token_, manager_->rotateAgentToken(local_agent_id_));
  } else {
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    Agent a;
    a.hostname = host[0] ? host : "localhost";
    a.zone_id = ZoneId(zone_id);
    KASM_ASSIGN_OR_RETURN(auto reg, manager_->registerAgent(a));
    local_agent_id_ = reg.agent.id;
    local_agent_token_ = reg.token;
    Setting s{"local_agent_id", local_agent_id_.str(), clock_.now()};
    if (existing.ok()) {
      KASM_RETURN_IF_ERROR(repo_->update(s, existing->version));
    } else {
      KASM_RETURN_IF_ERROR(repo_->insert(s));
    }
  }
  agent::LocalAgentOptions opts;
  opts.agent_id = local_agent_id_;
  local_agent_ = std::make_shared<agent::LocalAgent>(*runtime_, clock_, opts);
  manager_->attachAgentLink(local_agent_id_, local_agent_);
  // Pulls run on a connection of their own (one can take minutes).
  if (auto pull_runtime = docker::openDockerRuntime(docker::DockerOptions::fromEnvironment()); pull_runtime.ok()) {
    image_puller_ = std::make_unique<ImagePuller>(std::shared_ptr<spi::ContainerRuntime>(std::move(*pull_runtime)),
                                                  [](const std::string& e, const std::string& d) { logLine(e, d); });
  }
  return {};
}

void ServerApp::reconcileAgent(const AgentId& id) {
  auto r = manager_->reconcileAgent(id);
  if (!r.ok()) {
    logLine("agent_reconcile_failed", id.str() + ": " + r.error().toString());
  } else if (r->changed()) {
    logLine("agent_reconciled", id.str() + ": " + std::to_string(r->sessions_restarted) + " restarted, " +
                                    std::to_string(r->sessions_stopped) + " stopped, " +
                                    std::to_string(r->sessions_failed) + " failed, " +
                                    std::to_string(r->orphans_removed) + " orphan containers removed");
  }
}

void ServerApp::checkInLocalAgent() {
  auto report = local_agent_->checkIn();
  if (!report.ok()) {
    logLine("checkin_failed", report.error().toString());
    local_engine_failed_ = true;
    return;
  }
  if (image_puller_) {
    if (auto images = manager_->desiredImages(local_agent_id_); images.ok()) image_puller_->setDesired(*images);
  }
  if (std::exchange(local_engine_failed_, false)) {
    // The engine answers again after failing: if it restarted, the sessions' containers stopped
    // with it; start them again now rather than at the next periodic reconciliation.
    logLine("engine_back", "the local engine answers again; reconciling");
    reconcileAgent(local_agent_id_);
  }
  AgentCheckIn c;
  c.agent_id = local_agent_id_;
  c.token = local_agent_token_;
  c.reported = report->capacity;
  c.images = report->images;
  c.cpu_utilization = std::min(1.0, std::max(0.0, report->cpu_utilization));
  c.memory_used_bytes = report->memory_used_bytes;
  c.agent_version = report->engine_version;
  auto in = manager_->checkIn(c);
  if (!in.ok()) logLine("checkin_failed", in.error().toString());
}

// The agent reports where its sessions listen; the proxy connects only inside the networks the
// installation registered for it (read at each report, so a change applies at once).
agent::CommandAgentLink::UpstreamCheck ServerApp::upstreamCheck(const AgentId& id) {
  return [this, id](std::string_view upstream) -> Result<void> {
    KASM_ASSIGN_OR_RETURN(auto a, repo_->get<Agent>(id.str()));
    return agent::checkUpstream(upstream, {a.value.publish_networks, config_.allow_loopback_upstreams});
  };
}

std::shared_ptr<agent::RemoteAgentLink> ServerApp::remoteLink(const AgentId& id) {
  std::lock_guard lock(remote_mutex_);
  auto& link = remote_links_[id];
  if (!link) {
    link = std::make_shared<agent::RemoteAgentLink>(std::chrono::minutes(5), upstreamCheck(id));
    // With relayed commands the manager reaches every agent through the store instead, and this
    // link only keeps the agent's polls and boots.
    if (!agent_commands_) manager_->attachAgentLink(id, link);
  }
  return link;
}

void ServerApp::noteAgentBoot(const AgentId& id, const std::string& boot_id) {
  auto link = remoteLink(id);
  const bool first_seen = !boot_id.empty() && link->bootId().empty();
  const bool restarted = link->noteBoot(boot_id);
  if (agent_commands_ && (first_seen || restarted)) {
    // Commands any server handed to an earlier process of this agent will never be answered.
    if (auto r = agent_commands_->agentRestarted(id, boot_id); !r.ok()) {
      logLine("agent_commands_failed", id.str() + ": " + r.error().toString());
    }
  }
  if (!restarted) return;
  // A restarted agent may hold a container of a session that moved on: compare now, off this
  // request's thread, rather than wait for the agent to be declared missing (it never was).
  logLine("agent_restarted", id.str());
  (void)agent_pool_->post([this, id] {
    reconcileAgent(id);
    // Launches its previous process took with it go on now rather than at the next tick.
    if (auto c = manager_->completeLaunches(id); c.ok() && *c > 0) {
      logLine("launches_completed", id.str() + ": " + std::to_string(*c));
    }
  });
}

// Scale-out: commands other servers queue for this server's own agent, run here as a kasm-agent
// would run them. The local agent's "boot" is this server process.
void ServerApp::serveLocalAgentCommands() {
  if (auto r = agent_commands_->agentRestarted(local_agent_id_, instance_id_); !r.ok()) {
    logLine("agent_commands_failed", r.error().toString());
  }
  while (!stopping_.load()) {
    auto c = agent_commands_->next(local_agent_id_, instance_id_, std::chrono::seconds(25));
    if (!c.ok()) {
      logLine("agent_commands_failed", c.error().toString());
      for (int i = 0; i < 10 && !stopping_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (!*c) continue;
    (void)agent_pool_->post([this, command = std::move(**c)] {
      auto result = agent::executeCommand(*local_agent_, command.json);
      if (auto r = agent_commands_->complete(local_agent_id_, command.id, std::move(result)); !r.ok()) {
        logLine("agent_command_result_lost", r.error().toString());
      }
    });
  }
}

// Autoscaling: machines made through the registered VM providers become agents that dial in
// here with a single-use registration token (kasm/autoscale/autoscaler.hpp).
Result<void> ServerApp::startAutoscaler() {
  KASM_RETURN_IF_ERROR(command::registerCommandProvider(vm_providers_));
#ifdef KASM_SERVER_HAS_AWS
  KASM_RETURN_IF_ERROR(aws::registerEc2Provider(vm_providers_));
#endif
  autoscale::AutoscalerOptions o;
  KASM_ASSIGN_OR_RETURN(auto installation, repo_->get<Setting>(std::string(settings::kInstallationId)));
  o.installation_id = installation.value.value;
  o.upstream_address = config_.agent_url;
  if (o.upstream_address.empty()) {
    const std::string host = config_.listen_address == "0.0.0.0" || config_.listen_address == "::"
                                 ? std::string("127.0.0.1")
                                 : config_.listen_address;
    o.upstream_address = std::string(config_.plain_http ? "http://" : "https://") +
                         (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                         std::to_string(config_.port);
  }
  o.secret_key = session_secret_key_;
  autoscaler_ = std::make_unique<autoscale::Autoscaler>(*store_, *manager_, vm_providers_, clock_, o);
  return {};
}

void ServerApp::tickAutoscaler(const std::set<ZoneId>& zones) {
  auto r = autoscaler_->tick(&zones);
  if (!r.ok()) {
    logLine("autoscale_failed", r.error().toString());
    return;
  }
  if (r->created + r->destroyed + r->drained + r->missing + r->orphans_destroyed + r->errors > 0) {
    logLine("autoscale", "created " + std::to_string(r->created) + ", drained " + std::to_string(r->drained) +
                             ", destroyed " + std::to_string(r->destroyed) + ", missing " + std::to_string(r->missing) +
                             ", orphans destroyed " + std::to_string(r->orphans_destroyed) + ", errors " +
                             std::to_string(r->errors));
  }
}

// The endpoints kasm-agent dials: POST checkin (report resources and images), poll (wait up to
// 25 s for a command), result (the answer to one). Every call carries the agent's id and token.
net::HttpResponse ServerApp::agentApi(const net::HttpRequest& req) {
  auto error = [](const Error& e) {
    boost::json::object o{{"error_message", e.message()}, {"code", std::string(errorCodeName(e.code()))}};
    return net::HttpResponse::json(httpStatusOf(e.code()), boost::json::serialize(o));
  };
  if (req.method != "POST") return error(invalidArgument("use POST"));
  boost::system::error_code ec;
  auto parsed = boost::json::parse(req.body, ec);
  if (ec || !parsed.is_object()) return error(invalidArgument("the body must be a JSON object"));
  const auto& b = parsed.as_object();
  auto str = [&](std::string_view key) -> std::string {
    auto* v = b.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  auto id = AgentId::parse(str("agent_id"), "agent_id");
  if (!id.ok()) return error(id.error());
  const std::string token = str("token");
  const std::string verb = req.path.substr(std::string_view("/api/agent/v1/").size());
  if (verb == "checkin") {
    AgentCheckIn c;
    c.agent_id = *id;
    c.token = token;
    if (auto* r = b.if_contains("reported"); r && r->is_object()) {
      auto res = fromJson<Resources>(boost::json::serialize(*r));
      if (!res.ok()) return error(res.error());
      c.reported = *res;
    }
    if (auto* imgs = b.if_contains("images"); imgs && imgs->is_array()) {
      for (const auto& i : imgs->as_array()) {
        if (i.is_string()) c.images.emplace_back(i.as_string());
      }
    }
    if (auto* u = b.if_contains("cpu_utilization"); u && u->is_number()) {
      c.cpu_utilization = std::clamp(u->to_number<double>(), 0.0, 1.0);
    }
    if (auto* m = b.if_contains("memory_used_bytes"); m && m->is_int64()) c.memory_used_bytes = m->as_int64();
    c.agent_version = str("agent_version");
    std::string issued;  // A lasting token, when it presented its registration token.
    auto in = manager_->checkIn(c, &issued);
    if (!in.ok()) return error(in.error());
    noteAgentBoot(*id, str("boot_id"));
    // The images it should keep pulled, for its ImagePuller.
    boost::json::array wanted;
    if (auto images = manager_->desiredImages(*id); images.ok()) {
      for (auto& i : *images) wanted.emplace_back(i);
    }
    boost::json::object answer{{"ok", true}, {"images", wanted}};
    if (!issued.empty()) answer["agent_token"] = issued;
    return net::HttpResponse::json(200, boost::json::serialize(answer));
  }
  // poll and result: the same token check as a check-in, without changing anything.
  auto agent = repo_->get<Agent>(id->str());
  if (!agent.ok() || token.empty() || !auth::verifySecret(token, agent->value.token_hash)) {
    return error(unauthenticated("unknown agent or wrong token"));
  }
  if (agent->value.token_expires_at) {
    // A registration token is good for one check-in, which exchanges it; nothing else.
    return error(unauthenticated("a registration token only checks in (which exchanges it for a lasting one)"));
  }
  noteAgentBoot(*id, str("boot_id"));
  auto link = remoteLink(*id);
  if (verb == "poll") {
    // The commands the agent holds: one handed to it that it does not list never arrived, and goes
    // out again now (an agent without the list gets nothing redelivered).
    std::optional<std::set<std::uint64_t>> received;
    if (auto* r = b.if_contains("received")) {
      if (!r->is_array() || r->as_array().size() > 4096) {
        return error(invalidArgument("received must be an array of at most 4096 command ids"));
      }
      received.emplace();
      for (const auto& v : r->as_array()) {
        if (!v.is_uint64() && !(v.is_int64() && v.as_int64() >= 0)) {
          return error(invalidArgument("received must hold command ids"));
        }
        received->insert(v.is_uint64() ? v.as_uint64() : static_cast<std::uint64_t>(v.as_int64()));
      }
    }
    std::shared_ptr<void> holding;
    Result<std::optional<agent::AgentCommand>> command = std::optional<agent::AgentCommand>();
    int redelivered = 0;
    if (agent_commands_) {
      auto hold = link->holdPoll();
      if (!hold.ok()) return error(hold.error());  // 429: this agent already holds its polls.
      holding = std::move(*hold);
      if (received) {
        auto again = agent_commands_->redeliver(*id, str("boot_id"), *received);
        if (!again.ok()) logLine("agent_commands_failed", id->str() + ": " + again.error().toString());
        redelivered = again.ok() ? *again : 0;
      }
      command = agent_commands_->next(*id, str("boot_id"), std::chrono::seconds(25));
    } else {
      if (received) redelivered = link->redeliver(str("boot_id"), *received);
      command = link->nextCommand(std::chrono::seconds(25), str("boot_id"));
    }
    if (redelivered > 0) {
      logLine("agent_commands_redelivered",
              id->str() + ": " + std::to_string(redelivered) + " handed over earlier never arrived");
    }
    if (!command.ok()) return error(command.error());
    if (!*command) return net::HttpResponse::text(204, "");
    boost::json::object o{{"id", (*command)->id}, {"command", (*command)->json}};
    return net::HttpResponse::json(200, boost::json::serialize(o));
  }
  if (verb == "result") {
    auto* cid = b.if_contains("id");
    if (!cid || !(cid->is_int64() || cid->is_uint64())) return error(invalidArgument("id must be a number"));
    const auto n = cid->is_uint64() ? cid->as_uint64() : static_cast<std::uint64_t>(cid->as_int64());
    auto done = agent_commands_ ? agent_commands_->complete(*id, n, str("result")) : link->complete(n, str("result"));
    if (!done.ok()) return error(done.error());
    return net::HttpResponse::json(200, R"({"ok":true})");
  }
  return error(notFound("no agent endpoint '" + verb + "'"));
}

}  // namespace kasm::server
