// Container lifecycle, exec, logs and stats of DockerRuntime.

#include <thread>

#include "backends/docker/docker_runtime_impl.hpp"
#include "kasm/core/id.hpp"

namespace kasm::docker::detail {
namespace {

constexpr std::size_t kExecOutputCap = 1 << 20;  // The SPI promises at most 1 MiB of exec output.

std::int64_t hostInt(const json::object& body, std::string_view key) {
  const json::value* host = body.if_contains("HostConfig");
  if (!host || !host->is_object()) return 0;
  const json::value* v = host->as_object().if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  return 0;
}

bool mentionsLimits(std::string_view message) {
  for (std::string_view s : {"memory", "Memory", "CPU", "cpu", "NanoCpus", "shares"}) {
    if (message.find(s) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

Result<void> DockerRuntime::checkLimits(const json::object& body) {
  const std::int64_t memory = hostInt(body, "Memory");
  const std::int64_t nano_cpus = hostInt(body, "NanoCpus");
  if (memory == 0 && nano_cpus == 0) return okResult();
  KASM_ASSIGN_OR_RETURN(auto host, cachedHost());
  if (memory > 0 && host.total.memory_bytes > 0 && memory > host.total.memory_bytes) {
    return resourceExhausted("memory limit " + Resources{0, memory, 0}.toString() + " exceeds the host's " +
                             Resources{0, host.total.memory_bytes, 0}.toString());
  }
  if (nano_cpus > 0 && host.total.millicores > 0 && nano_cpus / 1'000'000 > host.total.millicores) {
    return resourceExhausted("CPU limit of " + std::to_string(nano_cpus / 1'000'000) +
                             " millicores exceeds the host's " + std::to_string(host.total.millicores));
  }
  return okResult();
}

bool DockerRuntime::isRunning(const std::string& id) {
  // Another client may start the container between our create and our start (an idempotent
  // retry racing us); a start that "fails" that way has still produced a running container.
  auto info = inspect(id);
  return info.ok() && info->status == spi::ContainerStatus::kRunning;
}

Result<spi::ContainerInfo> DockerRuntime::createAndStart(const spi::ContainerSpec& spec) {
  if (spec.name.empty() || !isValidIdString(spec.name)) {
    return invalidArgument("container spec: name '" + spec.name + "' must be 1-64 characters of [A-Za-z0-9_.-]");
  }
  spi::ContainerSpec effective = spec;
  if (effective.port != 0 && effective.publish_host.empty()) effective.publish_host = "127.0.0.1";
  KASM_ASSIGN_OR_RETURN(auto body, buildCreateBody(effective));
  KASM_RETURN_IF_ERROR(checkLimits(body));

  const std::string what = "create container " + spec.name;
  KASM_ASSIGN_OR_RETURN(auto created,
                        call("POST", "/containers/create?name=" + urlEncode(spec.name), json::serialize(body)));
  if (created.status != 201) {
    std::string message = engineMessage(created);
    switch (created.status) {
      case 404: return notFound(what + ": image " + spec.image + " is not on this host (pull it first): " + message);
      case 409: return alreadyExists(what + ": " + message);
      case 400:
        if (mentionsLimits(message)) return resourceExhausted(what + ": the engine refused the limits: " + message);
        return invalidArgument(what + ": " + message);
      default: return engineError(created, what);
    }
  }
  KASM_ASSIGN_OR_RETURN(auto created_json, parseEngineJson(created.body, what));
  const json::value* id_value = created_json.is_object() ? created_json.as_object().if_contains("Id") : nullptr;
  if (!id_value || !id_value->is_string()) return internalError(what + ": the answer has no Id");
  const std::string id(id_value->as_string());

  // From here on a failure must not leave the container behind (SPI contract).
  auto discard = [&](Error error) -> Error {
    (void)call("DELETE", "/containers/" + id + "?force=1&v=1");
    return error;
  };
  auto started = call("POST", "/containers/" + id + "/start");
  if (!started.ok()) return discard(std::move(started).error());
  if (started->status != 204 && started->status != 304 && !isRunning(id)) {
    std::string message = engineMessage(*started);
    if (message.find("device driver") != std::string::npos || message.find("gpu") != std::string::npos) {
      return discard(
          resourceExhausted("start container " + spec.name + ": GPUs requested but unavailable: " + message));
    }
    if (mentionsLimits(message)) {
      return discard(resourceExhausted("start container " + spec.name + ": the engine refused the limits: " + message));
    }
    if (started->status == 400 || message.find("executable file not found") != std::string::npos ||
        message.find("no such file or directory") != std::string::npos) {
      return discard(invalidArgument("start container " + spec.name + ": " + message));
    }
    return discard(engineError(*started, "start container " + spec.name));
  }
  auto info = inspect(id);
  if (!info.ok()) return discard(std::move(info).error());
  return info;
}

Result<spi::ContainerInfo> DockerRuntime::inspect(const std::string& id_or_name) {
  if (id_or_name.empty()) return invalidArgument("container id is empty");
  KASM_ASSIGN_OR_RETURN(
      auto v, callJson("GET", "/containers/" + urlEncode(id_or_name) + "/json", {}, "inspect container " + id_or_name));
  if (!v.is_object()) return internalError("inspect container " + id_or_name + ": not a JSON object");
  return containerFromInspect(v.as_object());
}

Result<std::vector<spi::ContainerInfo>> DockerRuntime::list(const std::map<std::string, std::string>& labels) {
  json::array label_filters;
  for (const auto& [k, v] : labels) label_filters.emplace_back(k + "=" + v);
  std::string path = "/containers/json?all=1";
  if (!label_filters.empty()) {
    json::object filters{{"label", std::move(label_filters)}};
    path += "&filters=" + urlEncode(json::serialize(filters));
  }
  KASM_ASSIGN_OR_RETURN(auto v, callJson("GET", path, {}, "list containers"));
  if (!v.is_array()) return internalError("list containers: not a JSON array");
  std::vector<spi::ContainerInfo> out;
  for (const auto& entry : v.as_array()) {
    if (entry.is_object()) out.push_back(containerFromListEntry(entry.as_object()));
  }
  return out;
}

Result<void> DockerRuntime::stop(const std::string& id, Duration timeout) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout).count();
  // The engine waits `t` seconds before it kills; give the HTTP call that long plus a margin.
  return callAction("/containers/" + urlEncode(id) + "/stop?t=" + std::to_string(seconds), "stop container " + id,
                    timeout + std::chrono::seconds(30));
}

Result<void> DockerRuntime::start(const std::string& id) {
  return callAction("/containers/" + urlEncode(id) + "/start", "start container " + id);
}

Result<void> DockerRuntime::kill(const std::string& id) {
  return callAction("/containers/" + urlEncode(id) + "/kill", "kill container " + id);
}

Result<void> DockerRuntime::pause(const std::string& id) {
  return callAction("/containers/" + urlEncode(id) + "/pause", "pause container " + id);
}

Result<void> DockerRuntime::unpause(const std::string& id) {
  return callAction("/containers/" + urlEncode(id) + "/unpause", "unpause container " + id);
}

Result<void> DockerRuntime::remove(const std::string& id) {
  KASM_ASSIGN_OR_RETURN(auto response, call("DELETE", "/containers/" + urlEncode(id) + "?force=1&v=1"));
  if (response.status == 204 || response.status == 200) return okResult();
  if (response.status == 409) return failedPrecondition("remove container " + id + ": " + engineMessage(response));
  return engineError(response, "remove container " + id);
}

Result<std::string> DockerRuntime::createExec(const std::string& id, const spi::ExecRequest& request,
                                              const std::string& what, bool attach_stdin) {
  if (request.command.empty()) return invalidArgument("exec: command is empty");
  json::object create{{"AttachStdout", true},
                      {"AttachStderr", true},
                      {"AttachStdin", attach_stdin},
                      {"Tty", false},
                      {"Privileged", request.privileged}};
  json::array cmd;
  for (const auto& arg : request.command) cmd.emplace_back(arg);
  create["Cmd"] = std::move(cmd);
  if (!request.user.empty()) create["User"] = request.user;
  if (!request.workdir.empty()) create["WorkingDir"] = request.workdir;
  if (!request.environment.empty()) {
    json::array env;
    for (const auto& [k, v] : request.environment) env.emplace_back(k + "=" + v);
    create["Env"] = std::move(env);
  }
  KASM_ASSIGN_OR_RETURN(auto created, call("POST", "/containers/" + urlEncode(id) + "/exec", json::serialize(create)));
  if (created.status == 409) return failedPrecondition(what + ": " + engineMessage(created));
  if (created.status != 201) return engineError(created, what);
  KASM_ASSIGN_OR_RETURN(auto created_json, parseEngineJson(created.body, what));
  const json::value* exec_id = created_json.is_object() ? created_json.as_object().if_contains("Id") : nullptr;
  if (!exec_id || !exec_id->is_string()) return internalError(what + ": the answer has no Id");
  return std::string(exec_id->as_string());
}

Result<void> DockerRuntime::execStream(const std::string& id, const spi::ExecRequest& request,
                                       const std::function<bool(std::string_view)>& on_stdout) {
  const std::string what = "exec in container " + id;
  if (request.command.empty()) return invalidArgument("exec: command is empty");
  // The engine lets an exec'd process run on when its output connection goes: it would block on a
  // full pipe forever. A shell says its pid first (then becomes the command), so that the process
  // can be ended when the reader stops.
  spi::ExecRequest wrapped = request;
  wrapped.command = {"sh", "-c", "echo $$; exec \"$@\"", "sh"};
  wrapped.command.insert(wrapped.command.end(), request.command.begin(), request.command.end());
  KASM_ASSIGN_OR_RETURN(std::string eid, createExec(id, wrapped, what));
  HttpRequest start;
  start.method = "POST";
  start.target = api("/exec/" + eid + "/start");
  start.body = R"({"Detach":false,"Tty":false})";
  start.timeout = Duration(-1);  // As long as it streams.
  StreamDemux demux;
  std::string pid, error_body;
  bool have_pid = false, stopped = false;
  start.on_data = [&](std::string_view chunk) {
    demux.feed(chunk, [&](int stream, std::string_view payload) {
      if (stopped) return;
      if (stream != 1) {
        if (error_body.size() < 4096) error_body.append(payload.substr(0, 4096 - error_body.size()));
        return;
      }
      if (!have_pid) {
        const auto nl = payload.find('\n');
        pid.append(payload.substr(0, nl));
        if (nl == std::string_view::npos) return;
        have_pid = true;
        payload.remove_prefix(nl + 1);
        if (payload.empty()) return;
      }
      stopped = !on_stdout(payload);
    });
    return !stopped;
  };
  auto started = http_->send(start);
  if (stopped) {
    if (!pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos) {
      spi::ExecRequest kill_it{{"sh", "-c", "kill -TERM " + pid}};
      (void)exec(id, kill_it);
    }
    return okResult();
  }
  if (!started.ok()) return started.error().withContext(what);
  if (started->status == 409) return failedPrecondition(what + ": " + engineMessage(*started));
  if (started->status != 200) return engineError(*started, what);
  auto state = callJson("GET", "/exec/" + eid + "/json", {}, what);
  const json::value* code = state.ok() && state->is_object() ? state->as_object().if_contains("ExitCode") : nullptr;
  const std::int64_t exit_code = code && code->is_int64() ? code->as_int64() : 0;
  if (!error_body.empty() || exit_code != 0) {
    while (!error_body.empty() && error_body.back() == '\n') error_body.pop_back();
    return failedPrecondition(what + " ended (status " + std::to_string(exit_code) + ")" +
                              (error_body.empty() ? std::string() : ": " + error_body));
  }
  return okResult();
}

namespace {

// An exec's input over the upgraded connection; ends the process when dropped.
class DockerExecInput final : public spi::ExecInput {
 public:
  DockerExecInput(DockerRuntime& runtime, std::string container, std::unique_ptr<RawConnection> raw, std::string pid)
      : runtime_(runtime), container_(std::move(container)), raw_(std::move(raw)), pid_(std::move(pid)) {}
  ~DockerExecInput() override {
    raw_.reset();  // The process sees end of file...
    spi::ExecRequest kill_it{{"sh", "-c", "kill -TERM " + pid_ + " 2>/dev/null"}};
    (void)runtime_.exec(container_, kill_it);  // ...and goes, should it not stop at that.
  }
  Result<void> write(std::string_view data) override {
    // Drain what the process said meanwhile, so that its output never blocks it.
    char scratch[4096];
    for (;;) {
      auto n = raw_->readSome(scratch, sizeof scratch, Duration(0));
      if (!n.ok()) return unavailable("the process ended");
      if (*n == 0) break;
    }
    return raw_->write(data, std::chrono::seconds(2));
  }

 private:
  DockerRuntime& runtime_;
  std::string container_;
  std::unique_ptr<RawConnection> raw_;
  std::string pid_;
};

}  // namespace

Result<std::unique_ptr<spi::ExecInput>> DockerRuntime::execWithInput(const std::string& id,
                                                                     const spi::ExecRequest& request) {
  const std::string what = "exec with input in container " + id;
  if (request.command.empty()) return invalidArgument("exec: command is empty");
  spi::ExecRequest wrapped = request;
  wrapped.command = {"sh", "-c", "echo $$; exec \"$@\"", "sh"};
  wrapped.command.insert(wrapped.command.end(), request.command.begin(), request.command.end());
  KASM_ASSIGN_OR_RETURN(std::string eid, createExec(id, wrapped, what, /*attach_stdin=*/true));
  auto raw = http_->upgrade(api("/exec/" + eid + "/start"), R"({"Detach":false,"Tty":false})");
  if (!raw.ok()) return raw.error().withContext(what);
  // The shell's first line is its pid (the command's, once it is exec'd).
  StreamDemux demux;
  std::string pid, said;
  bool have_pid = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  char buf[1024];
  while (!have_pid) {
    if (std::chrono::steady_clock::now() > deadline) return deadlineExceeded(what + ": the command did not start");
    auto n = (*raw)->readSome(buf, sizeof buf, std::chrono::milliseconds(100));
    if (!n.ok()) return failedPrecondition(what + " ended at once" + (said.empty() ? "" : ": " + said));
    demux.feed(std::string_view(buf, *n), [&](int stream, std::string_view payload) {
      if (stream != 1 || have_pid) {
        said.append(payload.substr(0, 512));
        return;
      }
      const auto nl = payload.find('\n');
      pid.append(payload.substr(0, nl));
      have_pid = nl != std::string_view::npos;
    });
  }
  if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) {
    return internalError(what + ": the command's shell did not say its pid");
  }
  return std::unique_ptr<spi::ExecInput>(new DockerExecInput(*this, id, std::move(*raw), pid));
}

Result<spi::ExecResult> DockerRuntime::exec(const std::string& id, const spi::ExecRequest& request) {
  const std::string what = "exec in container " + id;
  KASM_ASSIGN_OR_RETURN(std::string eid, createExec(id, request, what));

  // Without "Upgrade: tcp" the engine still hijacks the connection and streams the multiplexed
  // output until the process ends, then closes; curl reads it as the response body.
  HttpRequest start;
  start.method = "POST";
  start.target = api("/exec/" + eid + "/start");
  start.body = R"({"Detach":false,"Tty":false})";
  std::string raw;
  start.on_data = [&](std::string_view chunk) {
    // Keep a little more than the cap so framing can be undone; drop the rest but keep reading.
    if (raw.size() < kExecOutputCap + 64 * 1024) raw.append(chunk);
    return true;
  };
  KASM_ASSIGN_OR_RETURN(auto started, http_->send(start));
  if (started.status == 409) return failedPrecondition(what + ": " + engineMessage(started));
  if (started.status != 200) return engineError(started, what);

  spi::ExecResult result;
  result.output = demultiplexStream(raw, kExecOutputCap);
  // The stream ends when the process does; the exit code can trail it by a moment.
  for (int attempt = 0; attempt < 50; ++attempt) {
    KASM_ASSIGN_OR_RETURN(auto state, callJson("GET", "/exec/" + eid + "/json", {}, what));
    const json::object* o = state.is_object() ? &state.as_object() : nullptr;
    const json::value* running = o ? o->if_contains("Running") : nullptr;
    const json::value* code = o ? o->if_contains("ExitCode") : nullptr;
    if (running && running->is_bool() && !running->as_bool() && code && code->is_number()) {
      result.exit_code = static_cast<std::int32_t>(code->to_number<std::int64_t>());
      return result;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return deadlineExceeded(what + ": the process output ended but its exit code never appeared");
}

Result<std::string> DockerRuntime::logs(const std::string& id, int tail_lines) {
  std::string path = "/containers/" + urlEncode(id) + "/logs?stdout=1&stderr=1&tail=" +
                     (tail_lines > 0 ? std::to_string(tail_lines) : std::string("all"));
  KASM_ASSIGN_OR_RETURN(auto response, call("GET", path));
  if (response.status != 200) return engineError(response, "logs of container " + id);
  return demultiplexStream(response.body, kExecOutputCap);
}

Result<spi::ContainerStats> DockerRuntime::stats(const std::string& id) {
  KASM_ASSIGN_OR_RETURN(
      auto v, callJson("GET", "/containers/" + urlEncode(id) + "/stats?stream=false", {}, "stats of container " + id));
  if (!v.is_object()) return internalError("stats of container " + id + ": not a JSON object");
  return statsFromJson(v.as_object());
}

}  // namespace kasm::docker::detail
