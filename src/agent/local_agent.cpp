#include "kasm/agent/local_agent.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>

#include "kasm/agent/image_sync.hpp"

namespace kasm::agent {

LocalAgent::LocalAgent(spi::ContainerRuntime& runtime, Clock& clock, LocalAgentOptions options)
    : runtime_(runtime), clock_(clock), options_(std::move(options)) {}

spi::ContainerSpec LocalAgent::specFor(const spi::ProvisionRequest& request) const {
  const Workspace& ws = request.workspace;
  spi::ContainerSpec spec;
  spec.name = containerName(request.session_id);
  spec.image = ws.image;
  spec.resources = request.resources.isZero() ? ws.resources : request.resources;
  spec.cpu_allocation =
      ws.cpu_allocation == CpuAllocationMethod::kInherit ? options_.default_cpu_allocation : ws.cpu_allocation;
  spec.environment = request.environment;
  spec.labels = {{kManagedLabel, "true"},
                 {kSessionIdLabel, request.session_id.str()},
                 {kAgentIdLabel, options_.agent_id.str()},
                 {kWorkspaceIdLabel, ws.id.str()}};
  if (!request.user_id.empty()) spec.labels[kUserIdLabel] = request.user_id.str();
  spec.port = ws.port;
  spec.publish_host = options_.publish_host;
  spec.volumes = ws.volumes;
  spec.network = ws.restrict_to_network;
  spec.run_config_json = ws.run_config_json;
  return spec;
}

Result<spi::ContainerInfo> LocalAgent::ownContainer(const SessionId& session) {
  KASM_ASSIGN_OR_RETURN(auto info, runtime_.inspect(containerName(session)));
  auto label = [&](const char* key) {
    auto it = info.labels.find(key);
    return it == info.labels.end() ? std::string() : it->second;
  };
  if (label(kManagedLabel) != "true" || label(kSessionIdLabel) != session.str()) {
    return failedPrecondition("container " + info.name + " exists but is not the kasm container of session " +
                              session.str());
  }
  if (label(kAgentIdLabel) != options_.agent_id.str()) {
    return failedPrecondition("container " + info.name + " belongs to agent " + label(kAgentIdLabel) + ", not " +
                              options_.agent_id.str());
  }
  return info;
}

// Host directories of bind mounts are created before the container so that Docker does not create
// them owned by root; the workspace's uid/gid (when given) become their owner.
Result<void> LocalAgent::prepareHostVolumes(const Workspace& workspace) {
  for (const auto& v : workspace.volumes) {
    if (v.source.empty() || v.source.front() != '/') continue;  // Named volumes belong to the engine.
    std::error_code ec;
    const bool existed = std::filesystem::exists(v.source, ec);
    if (!existed) {
      std::filesystem::create_directories(v.source, ec);
      if (ec) return unavailable("cannot create volume directory " + v.source + ": " + ec.message());
    }
    if (!existed && (v.uid || v.gid)) {
      if (::chown(v.source.c_str(), v.uid ? static_cast<uid_t>(*v.uid) : static_cast<uid_t>(-1),
                  v.gid ? static_cast<gid_t>(*v.gid) : static_cast<gid_t>(-1)) != 0) {
        return unavailable("cannot give " + v.source + " to " + std::to_string(v.uid.value_or(-1)) + ":" +
                           std::to_string(v.gid.value_or(-1)) + ": " + std::strerror(errno));
      }
    }
  }
  return {};
}

Result<spi::ProvisionResult> LocalAgent::provision(const spi::ProvisionRequest& request) {
  if (request.session_id.empty()) return invalidArgument("provision: session_id is empty");
  if (request.workspace.type != WorkspaceType::kContainer) {
    return invalidArgument("provision: workspace " + request.workspace.id.str() + " is not a container workspace");
  }

  // One provision of a session at a time here: a retry that arrives while the first call still
  // starts the container waits for it, then finds the container running.
  {
    std::unique_lock lock(provisions_mutex_);
    provision_ended_.wait(lock, [&] { return !provisioning_.contains(request.session_id); });
    provisioning_.insert(request.session_id);
  }
  struct Provisioning {
    LocalAgent& agent;
    const SessionId& session;
    ~Provisioning() {
      {
        std::lock_guard lock(agent.provisions_mutex_);
        agent.provisioning_.erase(session);
      }
      agent.provision_ended_.notify_all();
    }
  } provisioning{*this, request.session_id};

  // A container still "created" is not being started by this process (see above): a process that
  // died between creating and starting it (a killed agent, a crashed server) left it, and nobody
  // else will start it. It is started below at once; waiting for it to start by itself would hold
  // every retry of the launch for nothing.
  auto existing = ownContainer(request.session_id);
  if (existing.ok()) {
    // A retry: bring what is there back to running rather than starting a second container.
    Result<void> revived = okResult();
    switch (existing->status) {
      case spi::ContainerStatus::kRunning:
      case spi::ContainerStatus::kRestarting: break;
      case spi::ContainerStatus::kPaused: revived = runtime_.unpause(existing->id); break;
      case spi::ContainerStatus::kCreated:
      case spi::ContainerStatus::kExited: revived = runtime_.start(existing->id); break;
      case spi::ContainerStatus::kDead:
      case spi::ContainerStatus::kRemoving:
        (void)runtime_.remove(existing->id);
        existing = notFound("removed a dead container");
        break;
    }
    if (existing.ok()) {
      KASM_RETURN_IF_ERROR(revived);
      KASM_ASSIGN_OR_RETURN(auto info, runtime_.inspect(existing->id));
      return finishProvision(info, request, false);
    }
  } else if (existing.error().code() != ErrorCode::kNotFound) {
    return std::move(existing).error();
  }

  if (options_.prepare_host_volumes) KASM_RETURN_IF_ERROR(prepareHostVolumes(request.workspace));
  auto created = runtime_.createAndStart(specFor(request));
  if (!created.ok() && created.error().code() == ErrorCode::kNotFound && options_.pull_missing_images) {
    // The workspace's image is not on this host (a new workspace, an agent that just joined):
    // pull it now and try again. A pull the engine's restart cut answers Unavailable, so the
    // launch is tried again later; an image the registry does not have fails it with that reason.
    KASM_ASSIGN_OR_RETURN(bool pulled, pullIfMissing(request.workspace.image));
    if (pulled) created = runtime_.createAndStart(specFor(request));
  }
  if (!created.ok() && created.error().code() == ErrorCode::kAlreadyExists) {
    // A concurrent provision of the same session won the name; answer with its container once
    // that call has started it. The engine reserves the name before the container can be
    // inspected, so a short NotFound window is expected too.
    auto info = ownContainer(request.session_id);
    for (int i = 0; i < 200; ++i) {
      const bool settling = (info.ok() && info->status == spi::ContainerStatus::kCreated) ||
                            (!info.ok() && info.error().code() == ErrorCode::kNotFound);
      if (!settling) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      info = ownContainer(request.session_id);
    }
    if (!info.ok()) return std::move(info).error().withContext("provision session " + request.session_id.str());
    return finishProvision(*info, request, false);
  }
  if (!created.ok()) return std::move(created).error().withContext("provision session " + request.session_id.str());
  return finishProvision(*created, request, true);
}

Result<bool> LocalAgent::pullIfMissing(const std::string& image) {
  KASM_ASSIGN_OR_RETURN(auto images, runtime_.listImages());
  const std::string wanted = agent::ImageSync::normalizeReference(image);
  for (const auto& i : images) {
    for (const auto& tag : i.tags) {
      if (tag == image || tag == wanted) return false;  // Present: the NotFound was about something else.
    }
  }
  auto pulled = runtime_.pullImage(image, std::nullopt, {});
  if (!pulled.ok()) return std::move(pulled).error().withContext("the image " + image + " is not on this host");
  return true;
}

Result<spi::ProvisionResult> LocalAgent::finishProvision(const spi::ContainerInfo& info,
                                                         const spi::ProvisionRequest& request, bool fresh) {
  // A container this call created and could not make ready must not outlive the failure.
  auto fail = [&](Error error) -> Error {
    if (fresh) (void)runtime_.remove(info.id);
    return error.withContext("provision session " + request.session_id.str());
  };
  spi::ProvisionResult result{info.id, info.name, info.published};
  if (request.workspace.port != 0) {
    if (info.published.empty()) return fail(internalError("container " + info.name + " has no published port"));
    auto ready =
        waitForTcp(info.published, options_.probe_connect_timeout, options_.probe_interval, options_.probe_attempts);
    if (!ready.ok()) return fail(std::move(ready).error());
  }
  const ExecHook& hook = request.workspace.exec_config.first_launch;
  if (fresh && !hook.cmd.empty()) {
    spi::ExecRequest exec{{"sh", "-c", hook.cmd}, hook.user, hook.workdir, hook.environment, hook.privileged};
    auto ran = runtime_.exec(info.id, exec);
    if (!ran.ok()) return fail(std::move(ran).error().withContext("first_launch hook"));
    if (ran->exit_code != 0) {
      return fail(failedPrecondition("first_launch hook exited with " + std::to_string(ran->exit_code) + ": " +
                                     ran->output.substr(0, 400)));
    }
  }
  return result;
}

Result<void> LocalAgent::stop(const SessionId& session) {
  KASM_ASSIGN_OR_RETURN(auto info, ownContainer(session));
  return runtime_.stop(info.id, options_.stop_timeout);
}

Result<void> LocalAgent::destroy(const SessionId& session) {
  auto info = ownContainer(session);
  if (!info.ok()) {
    if (info.error().code() == ErrorCode::kNotFound) return okResult();
    return std::move(info).error();
  }
  auto removed = runtime_.remove(info->id);
  if (!removed.ok() && removed.error().code() == ErrorCode::kNotFound) return okResult();
  return removed;
}

Result<void> LocalAgent::pause(const SessionId& session) {
  KASM_ASSIGN_OR_RETURN(auto info, ownContainer(session));
  if (info.status == spi::ContainerStatus::kPaused) return okResult();
  return runtime_.pause(info.id);
}

Result<void> LocalAgent::resume(const SessionId& session) {
  KASM_ASSIGN_OR_RETURN(auto info, ownContainer(session));
  switch (info.status) {
    case spi::ContainerStatus::kPaused: return runtime_.unpause(info.id);
    case spi::ContainerStatus::kRunning: return okResult();
    default: return runtime_.start(info.id);
  }
}

Result<spi::ExecResult> LocalAgent::exec(const SessionId& session, const spi::ExecRequest& request) {
  KASM_ASSIGN_OR_RETURN(auto info, ownContainer(session));
  return runtime_.exec(info.id, request);
}

Result<std::vector<spi::AgentSessionView>> LocalAgent::sessions() {
  KASM_ASSIGN_OR_RETURN(auto containers,
                        runtime_.list({{kManagedLabel, "true"}, {kAgentIdLabel, options_.agent_id.str()}}));
  std::vector<spi::AgentSessionView> out;
  for (const auto& c : containers) {
    auto it = c.labels.find(kSessionIdLabel);
    if (it == c.labels.end() || it->second.empty()) continue;
    out.push_back({SessionId(it->second), c.id, c.status});
  }
  return out;
}

Result<std::vector<std::string>> LocalAgent::publishedAddresses() {
  KASM_ASSIGN_OR_RETURN(auto containers,
                        runtime_.list({{kManagedLabel, "true"}, {kAgentIdLabel, options_.agent_id.str()}}));
  std::vector<std::string> out;
  for (const auto& c : containers) {
    if (!c.published.empty()) out.push_back(c.published);
  }
  return out;
}

Result<ReconcileReport> LocalAgent::reconcile(const std::set<SessionId>& live) {
  KASM_ASSIGN_OR_RETURN(auto containers,
                        runtime_.list({{kManagedLabel, "true"}, {kAgentIdLabel, options_.agent_id.str()}}));
  ReconcileReport report;
  std::set<SessionId> seen;
  for (const auto& c : containers) {
    auto it = c.labels.find(kSessionIdLabel);
    SessionId session(it == c.labels.end() ? std::string() : it->second);
    if (!session.empty() && live.count(session)) {
      seen.insert(session);
      if (c.status != spi::ContainerStatus::kRunning && c.status != spi::ContainerStatus::kPaused &&
          c.status != spi::ContainerStatus::kRestarting) {
        report.stopped_sessions.push_back(session);
      }
      continue;
    }
    auto removed = runtime_.remove(c.id);
    if (removed.ok() || removed.error().code() == ErrorCode::kNotFound) {
      report.removed_containers.push_back(c.name);
    } else {
      return std::move(removed).error().withContext("reconcile: remove orphan " + c.name);
    }
  }
  for (const auto& session : live) {
    if (!seen.count(session)) report.vanished_sessions.push_back(session);
  }
  return report;
}

Result<AgentReport> LocalAgent::checkIn() {
  KASM_ASSIGN_OR_RETURN(auto host, runtime_.hostResources());
  KASM_ASSIGN_OR_RETURN(auto images, runtime_.listImages());
  KASM_ASSIGN_OR_RETURN(auto containers,
                        runtime_.list({{kManagedLabel, "true"}, {kAgentIdLabel, options_.agent_id.str()}}));
  AgentReport report;
  report.agent_id = options_.agent_id;
  report.host = host.total;
  report.capacity = host.total;
  if (options_.overrides.millicores) report.capacity.millicores = *options_.overrides.millicores;
  if (options_.overrides.memory_bytes) report.capacity.memory_bytes = *options_.overrides.memory_bytes;
  if (options_.overrides.gpus) report.capacity.gpus = *options_.overrides.gpus;
  for (const auto& image : images) {
    report.images.insert(report.images.end(), image.tags.begin(), image.tags.end());
  }
  std::sort(report.images.begin(), report.images.end());
  report.labels = options_.labels;
  report.session_count = static_cast<std::int32_t>(containers.size());
  report.os = host.os;
  report.engine_version = host.engine_version;
  if (options_.measure_utilization && !containers.empty()) {
    // The engine takes about a second per stats sample; sample the containers in parallel.
    std::vector<std::future<Result<spi::ContainerStats>>> samples;
    for (const auto& c : containers) {
      samples.push_back(std::async(std::launch::async, [this, id = c.id] { return runtime_.stats(id); }));
    }
    double cores = 0;
    for (auto& s : samples) {
      auto stats = s.get();
      if (!stats.ok()) continue;
      cores += stats->cpu_cores;
      report.memory_used_bytes += stats->memory_used_bytes;
    }
    if (report.capacity.millicores > 0) {
      report.cpu_utilization = std::min(1.0, cores * 1000.0 / static_cast<double>(report.capacity.millicores));
    }
  }
  report.at = clock_.now();
  return report;
}

}  // namespace kasm::agent
