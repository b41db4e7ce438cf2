// RemoteAgentLink and the JSON protocol between a manager and a dialled-in agent.

#include "kasm/agent/remote_link.hpp"

#include <boost/json.hpp>

#include "kasm/core/secure_random.hpp"
#include "kasm/model/json.hpp"
#include "license/armor.hpp"

namespace kasm::agent {

namespace json = boost::json;

namespace {

constexpr ErrorCode kAllCodes[] = {
    ErrorCode::kInvalidArgument,    ErrorCode::kNotFound,        ErrorCode::kAlreadyExists,
    ErrorCode::kFailedPrecondition, ErrorCode::kAborted,         ErrorCode::kResourceExhausted,
    ErrorCode::kPermissionDenied,   ErrorCode::kUnauthenticated, ErrorCode::kUnavailable,
    ErrorCode::kDeadlineExceeded,   ErrorCode::kDataLoss,        ErrorCode::kInternal};

ErrorCode codeNamed(std::string_view name) {
  for (auto c : kAllCodes) {
    if (errorCodeName(c) == name) return c;
  }
  return ErrorCode::kInternal;
}

std::string okJson(json::value value) {
  return json::serialize(json::object{{"ok", true}, {"value", std::move(value)}});
}

std::string errorJson(const Error& e) {
  return json::serialize(
      json::object{{"ok", false}, {"code", std::string(errorCodeName(e.code()))}, {"message", e.message()}});
}

json::object stringMap(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

Result<std::map<std::string, std::string>> readStringMap(const json::value* v, std::string_view what) {
  std::map<std::string, std::string> out;
  if (!v || v->is_null()) return out;
  if (!v->is_object()) return invalidArgument(std::string(what) + " must be an object of strings");
  for (const auto& [k, val] : v->as_object()) {
    if (!val.is_string()) return invalidArgument(std::string(what) + "." + std::string(k) + " must be a string");
    out[std::string(k)] = std::string(val.as_string());
  }
  return out;
}

Result<std::string> readString(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v || !v->is_string()) return invalidArgument(std::string(key) + " must be a string");
  return std::string(v->as_string());
}

// The value of a successful result, or its error.
Result<json::value> unwrap(const std::string& result_json) {
  boost::system::error_code ec;
  json::value v = json::parse(result_json, ec);
  if (ec || !v.is_object()) return internalError("agent sent a malformed result");
  const auto& o = v.as_object();
  auto* ok = o.if_contains("ok");
  if (!ok || !ok->is_bool()) return internalError("agent sent a malformed result");
  if (ok->as_bool()) {
    auto* value = o.if_contains("value");
    return value ? *value : json::value(nullptr);
  }
  std::string code = o.if_contains("code") && o.at("code").is_string() ? std::string(o.at("code").as_string()) : "";
  std::string message =
      o.if_contains("message") && o.at("message").is_string() ? std::string(o.at("message").as_string()) : "";
  return Error(codeNamed(code), "agent: " + message);
}

Result<void> discardValue(Result<json::value> r) {
  if (!r.ok()) return r.error();
  return {};
}

std::string sessionCommand(std::string_view op, const SessionId& session) {
  return json::serialize(json::object{{"op", op}, {"session_id", session.str()}});
}

}  // namespace

std::string commandErrorJson(const Error& e) {
  return errorJson(e);
}

// ---- manager side -------------------------------------------------------------------------------

CommandAgentLink::CommandAgentLink(UpstreamCheck check_upstream) : check_upstream_(std::move(check_upstream)) {}

std::uint64_t newCommandId(std::int64_t unix_ms) {
  return ((static_cast<std::uint64_t>(unix_ms) & ((std::uint64_t{1} << 42) - 1)) << 20) | (secureRandomU64() & 0xFFFFF);
}

// Numbered from the time, not from 1: a restarted server's ids must not be ones the agent still
// remembers answering (newCommandId).
RemoteAgentLink::RemoteAgentLink(Duration call_timeout, UpstreamCheck check_upstream, Duration quick_timeout)
    : CommandAgentLink(std::move(check_upstream)),
      call_timeout_(call_timeout),
      quick_timeout_(std::min(quick_timeout, call_timeout)),
      next_id_(newCommandId(
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count())) {}

RemoteAgentLink::~RemoteAgentLink() {
  close("the link is gone");
}

Result<std::optional<AgentCommand>> RemoteAgentLink::nextCommand(Duration wait, const std::string& boot_id) {
  std::unique_lock lock(mutex_);
  last_poll_ = std::chrono::steady_clock::now();
  if (waiting_polls_ >= kMaxWaitingPolls) {
    return resourceExhausted("this agent already has " + std::to_string(waiting_polls_) +
                             " polls waiting; poll one at a time");
  }
  ++waiting_polls_;
  struct Waiting {
    std::size_t& n;
    ~Waiting() { --n; }
  } waiting{waiting_polls_};
  const auto deadline = std::chrono::steady_clock::now() + wait;
  // An agent process polls one at a time: when it polls again, its earlier poll still waiting here
  // was given up (a timeout, a broken connection), and a command handed to it would be lost.
  const std::uint64_t mine = boot_id.empty() ? 0 : ++polls_;
  if (mine != 0) commands_ready_.notify_all();
  for (;;) {
    // A poll of a process that has been replaced since: nobody reads its answer any more.
    if (!boot_id.empty() && !boot_id_.empty() && boot_id != boot_id_) return std::optional<AgentCommand>();
    if (mine != 0 && mine != polls_) return std::optional<AgentCommand>();
    while (!queue_.empty()) {
      const std::uint64_t id = queue_.front();
      queue_.pop_front();
      auto it = pending_.find(id);
      if (it == pending_.end() || it->second->abandoned || it->second->result) continue;
      it->second->handed = true;
      return std::optional<AgentCommand>(AgentCommand{id, it->second->command});
    }
    if (closed_) return std::optional<AgentCommand>();
    if (commands_ready_.wait_until(lock, deadline) == std::cv_status::timeout && queue_.empty()) {
      last_poll_ = std::chrono::steady_clock::now();
      return std::optional<AgentCommand>();
    }
  }
}

Result<std::shared_ptr<void>> RemoteAgentLink::holdPoll() {
  std::lock_guard lock(mutex_);
  last_poll_ = std::chrono::steady_clock::now();
  if (waiting_polls_ >= kMaxWaitingPolls) {
    return resourceExhausted("this agent already has " + std::to_string(waiting_polls_) +
                             " polls waiting; poll one at a time");
  }
  ++waiting_polls_;
  // The link outlives its guards: the server keeps every link it made until it stops.
  return std::shared_ptr<void>(nullptr, [this](void*) {
    std::lock_guard lock(mutex_);
    --waiting_polls_;
    last_poll_ = std::chrono::steady_clock::now();
  });
}

int RemoteAgentLink::redeliver(const std::string& boot_id, const std::set<std::uint64_t>& received) {
  std::lock_guard lock(mutex_);
  if (boot_id.empty() || boot_id != boot_id_) return 0;
  int queued = 0;
  // Newest first onto the front, so they go out again in the order they were first sent.
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
    Pending& p = *it->second;
    if (!p.handed || p.result || p.abandoned || received.contains(it->first)) continue;
    p.handed = false;
    queue_.push_front(it->first);
    ++queued;
  }
  if (queued > 0) commands_ready_.notify_all();
  return queued;
}

Result<void> RemoteAgentLink::complete(std::uint64_t id, std::string result_json) {
  std::lock_guard lock(mutex_);
  auto it = pending_.find(id);
  if (it == pending_.end() || it->second->abandoned) return notFound("no call waits for command " + std::to_string(id));
  it->second->result = std::move(result_json);
  results_ready_.notify_all();
  return {};
}

void RemoteAgentLink::close(std::string reason) {
  std::lock_guard lock(mutex_);
  closed_ = std::move(reason);
  for (auto& [id, p] : pending_) {
    if (!p->result) p->result = errorJson(unavailable(*closed_));
  }
  queue_.clear();
  commands_ready_.notify_all();
  results_ready_.notify_all();
}

void RemoteAgentLink::reopen() {
  std::lock_guard lock(mutex_);
  closed_.reset();
}

bool RemoteAgentLink::noteBoot(const std::string& boot_id) {
  std::lock_guard lock(mutex_);
  if (boot_id.empty() || boot_id == boot_id_) return false;
  const bool restarted = !boot_id_.empty();
  boot_id_ = boot_id;
  if (!restarted) return false;
  for (auto& [id, p] : pending_) {
    if (!p->result) p->result = errorJson(unavailable("the agent restarted while the command was in flight"));
  }
  queue_.clear();
  results_ready_.notify_all();
  commands_ready_.notify_all();  // The earlier process's polls end (nextCommand).
  return true;
}

std::string RemoteAgentLink::bootId() const {
  std::lock_guard lock(mutex_);
  return boot_id_;
}

std::chrono::steady_clock::time_point RemoteAgentLink::lastPoll() const {
  std::lock_guard lock(mutex_);
  return last_poll_;
}

Result<std::string> RemoteAgentLink::call(std::string command_json, CommandPace pace) {
  std::unique_lock lock(mutex_);
  if (closed_) return unavailable("remote agent: " + *closed_);
  const std::uint64_t id = ++next_id_;
  auto pending = std::make_shared<Pending>();
  pending->command = std::move(command_json);
  pending_[id] = pending;
  queue_.push_back(id);
  commands_ready_.notify_one();
  const Duration timeout = pace == CommandPace::kQuick ? quick_timeout_ : call_timeout_;
  const bool answered = results_ready_.wait_for(lock, timeout, [&] { return pending->result.has_value(); });
  pending_.erase(id);
  if (!answered) {
    pending->abandoned = true;
    return unavailable("remote agent did not answer within " +
                       std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) + " s");
  }
  return std::move(*pending->result);
}

Result<spi::ProvisionResult> CommandAgentLink::provision(const spi::ProvisionRequest& r) {
  json::object cmd;
  cmd["op"] = "provision";
  cmd["session_id"] = r.session_id.str();
  cmd["user_id"] = r.user_id.str();
  cmd["workspace"] = json::parse(toJson(r.workspace));
  cmd["resources"] = json::parse(toJson(r.resources));
  cmd["environment"] = stringMap(r.environment);
  KASM_ASSIGN_OR_RETURN(std::string raw, call(json::serialize(cmd), CommandPace::kSlow));
  KASM_ASSIGN_OR_RETURN(json::value v, unwrap(raw));
  if (!v.is_object()) return internalError("agent sent a malformed provision result");
  const auto& o = v.as_object();
  spi::ProvisionResult out;
  KASM_ASSIGN_OR_RETURN(out.container_id, readString(o, "container_id"));
  KASM_ASSIGN_OR_RETURN(out.container_name, readString(o, "container_name"));
  KASM_ASSIGN_OR_RETURN(out.upstream, readString(o, "upstream"));
  // The proxy will connect wherever this points: the agent's word is not enough. The container
  // stays behind on a refusal; the failed session makes reconciliation remove it.
  auto allowed = check_upstream_ ? check_upstream_(out.upstream)
                                 : permissionDenied("no upstream policy is set for this remote agent");
  if (!allowed.ok()) return allowed.error().withContext("remote agent's session " + r.session_id.str());
  return out;
}

Result<void> CommandAgentLink::sessionAction(std::string_view op, const SessionId& s) {
  KASM_ASSIGN_OR_RETURN(std::string raw, call(sessionCommand(op, s), CommandPace::kQuick));
  return discardValue(unwrap(raw));
}
Result<void> CommandAgentLink::stop(const SessionId& s) {
  return sessionAction("stop", s);
}
Result<void> CommandAgentLink::destroy(const SessionId& s) {
  return sessionAction("destroy", s);
}
Result<void> CommandAgentLink::pause(const SessionId& s) {
  return sessionAction("pause", s);
}
Result<void> CommandAgentLink::resume(const SessionId& s) {
  return sessionAction("resume", s);
}

Result<spi::ExecResult> CommandAgentLink::exec(const SessionId& s, const spi::ExecRequest& r) {
  json::object cmd;
  cmd["op"] = "exec";
  cmd["session_id"] = s.str();
  json::array argv;
  for (const auto& a : r.command) argv.emplace_back(a);
  cmd["command"] = std::move(argv);
  cmd["user"] = r.user;
  cmd["workdir"] = r.workdir;
  cmd["environment"] = stringMap(r.environment);
  cmd["privileged"] = r.privileged;
  KASM_ASSIGN_OR_RETURN(std::string raw, call(json::serialize(cmd), CommandPace::kSlow));
  KASM_ASSIGN_OR_RETURN(json::value v, unwrap(raw));
  if (!v.is_object() || !v.as_object().if_contains("exit_code") || !v.as_object().at("exit_code").is_int64()) {
    return internalError("agent sent a malformed exec result");
  }
  spi::ExecResult out;
  out.exit_code = static_cast<std::int32_t>(v.as_object().at("exit_code").as_int64());
  KASM_ASSIGN_OR_RETURN(out.output, readString(v.as_object(), "output"));
  return out;
}

Result<std::vector<spi::AgentSessionView>> CommandAgentLink::sessions() {
  KASM_ASSIGN_OR_RETURN(std::string raw, call(json::serialize(json::object{{"op", "sessions"}}), CommandPace::kQuick));
  KASM_ASSIGN_OR_RETURN(json::value v, unwrap(raw));
  if (!v.is_array()) return internalError("agent sent a malformed session list");
  std::vector<spi::AgentSessionView> out;
  for (const auto& item : v.as_array()) {
    if (!item.is_object()) return internalError("agent sent a malformed session list");
    const auto& o = item.as_object();
    spi::AgentSessionView view;
    KASM_ASSIGN_OR_RETURN(std::string sid, readString(o, "session_id"));
    view.session_id = SessionId(sid);
    KASM_ASSIGN_OR_RETURN(view.container_id, readString(o, "container_id"));
    KASM_ASSIGN_OR_RETURN(std::string status, readString(o, "status"));
    auto st = enumFromName<spi::ContainerStatus>(status);
    if (!st) return internalError("agent sent an unknown container status '" + status + "'");
    view.status = *st;
    out.push_back(std::move(view));
  }
  return out;
}

Result<void> CommandAgentLink::putFile(const SessionId& s, const std::string& dir, const std::string& name,
                                       std::string_view data) {
  json::object cmd{{"op", "put_file"},
                   {"session_id", s.str()},
                   {"dir", dir},
                   {"name", name},
                   {"data", license::detail::base64Encode(data)}};
  KASM_ASSIGN_OR_RETURN(std::string raw, call(json::serialize(cmd), CommandPace::kSlow));
  return discardValue(unwrap(raw));
}

Result<std::string> CommandAgentLink::getFile(const SessionId& s, const std::string& path, std::int64_t max_bytes) {
  json::object cmd{{"op", "get_file"}, {"session_id", s.str()}, {"path", path}, {"max_bytes", max_bytes}};
  KASM_ASSIGN_OR_RETURN(std::string raw, call(json::serialize(cmd), CommandPace::kSlow));
  KASM_ASSIGN_OR_RETURN(json::value v, unwrap(raw));
  if (!v.is_string()) return internalError("agent sent a malformed file");
  KASM_ASSIGN_OR_RETURN(std::string data, license::detail::base64Decode(v.as_string()));
  if (static_cast<std::int64_t>(data.size()) > max_bytes) return internalError("agent sent a file over the limit");
  return data;
}

Result<std::vector<spi::FileEntry>> CommandAgentLink::listFiles(const SessionId& s, const std::string& dir) {
  KASM_ASSIGN_OR_RETURN(std::string raw,
                        call(json::serialize(json::object{{"op", "list_files"}, {"session_id", s.str()}, {"dir", dir}}),
                             CommandPace::kQuick));
  KASM_ASSIGN_OR_RETURN(json::value v, unwrap(raw));
  if (!v.is_array()) return internalError("agent sent a malformed file list");
  std::vector<spi::FileEntry> out;
  for (const auto& item : v.as_array()) {
    const auto* o = item.if_object();
    const auto* size = o ? o->if_contains("size") : nullptr;
    const auto* modified = o ? o->if_contains("modified_ms") : nullptr;
    if (!size || !size->is_int64() || !modified || !modified->is_int64()) {
      return internalError("agent sent a malformed file list");
    }
    spi::FileEntry e;
    KASM_ASSIGN_OR_RETURN(e.name, readString(*o, "name"));
    e.size = size->as_int64();
    e.modified = TimePoint(std::chrono::milliseconds(modified->as_int64()));
    out.push_back(std::move(e));
  }
  return out;
}

Result<void> CommandAgentLink::removeProfile(const std::string& profile) {
  KASM_ASSIGN_OR_RETURN(std::string raw,
                        call(json::serialize(json::object{{"op", "remove_profile"}, {"profile", profile}}),
                             CommandPace::kSlow));  // A profile may hold gigabytes.
  return discardValue(unwrap(raw));
}

// ---- agent side ---------------------------------------------------------------------------------

namespace {

Result<json::value> runCommand(spi::AgentLink& local, std::string_view command_json) {
  boost::system::error_code ec;
  json::value v = json::parse(command_json, ec);
  if (ec || !v.is_object()) return invalidArgument("malformed command");
  const auto& o = v.as_object();
  KASM_ASSIGN_OR_RETURN(std::string op, readString(o, "op"));
  if (op == "sessions") {
    KASM_ASSIGN_OR_RETURN(auto views, local.sessions());
    json::array arr;
    for (const auto& s : views) {
      arr.push_back(json::object{{"session_id", s.session_id.str()},
                                 {"container_id", s.container_id},
                                 {"status", std::string(enumName(s.status))}});
    }
    return json::value(std::move(arr));
  }
  if (op == "remove_profile") {
    KASM_ASSIGN_OR_RETURN(std::string profile, readString(o, "profile"));
    KASM_RETURN_IF_ERROR(local.removeProfile(profile));
    return json::value(nullptr);
  }
  KASM_ASSIGN_OR_RETURN(std::string sid_text, readString(o, "session_id"));
  KASM_ASSIGN_OR_RETURN(SessionId sid, SessionId::parse(sid_text, "session_id"));
  if (op == "provision") {
    spi::ProvisionRequest r;
    r.session_id = sid;
    if (auto* u = o.if_contains("user_id"); u && u->is_string() && !u->as_string().empty()) {
      KASM_ASSIGN_OR_RETURN(r.user_id, UserId::parse(u->as_string(), "user_id"));
    }
    auto* ws = o.if_contains("workspace");
    auto* res = o.if_contains("resources");
    if (!ws || !res) return invalidArgument("provision needs workspace and resources");
    KASM_ASSIGN_OR_RETURN(r.workspace, fromJson<Workspace>(json::serialize(*ws)));
    KASM_ASSIGN_OR_RETURN(r.resources, fromJson<Resources>(json::serialize(*res)));
    KASM_ASSIGN_OR_RETURN(r.environment, readStringMap(o.if_contains("environment"), "environment"));
    KASM_ASSIGN_OR_RETURN(auto out, local.provision(r));
    return json::value(json::object{
        {"container_id", out.container_id}, {"container_name", out.container_name}, {"upstream", out.upstream}});
  }
  if (op == "put_file") {
    KASM_ASSIGN_OR_RETURN(std::string dir, readString(o, "dir"));
    KASM_ASSIGN_OR_RETURN(std::string name, readString(o, "name"));
    KASM_ASSIGN_OR_RETURN(std::string data64, readString(o, "data"));
    KASM_ASSIGN_OR_RETURN(std::string data, license::detail::base64Decode(data64));
    KASM_RETURN_IF_ERROR(local.putFile(sid, dir, name, data));
    return json::value(nullptr);
  }
  if (op == "get_file") {
    KASM_ASSIGN_OR_RETURN(std::string path, readString(o, "path"));
    auto* max = o.if_contains("max_bytes");
    if (!max || !max->is_int64() || max->as_int64() < 0) return invalidArgument("get_file needs max_bytes");
    KASM_ASSIGN_OR_RETURN(std::string data, local.getFile(sid, path, max->as_int64()));
    return json::value(license::detail::base64Encode(data));
  }
  if (op == "list_files") {
    KASM_ASSIGN_OR_RETURN(std::string dir, readString(o, "dir"));
    KASM_ASSIGN_OR_RETURN(auto files, local.listFiles(sid, dir));
    json::array arr;
    for (const auto& f : files) {
      arr.push_back(
          json::object{{"name", f.name},
                       {"size", f.size},
                       {"modified_ms",
                        std::chrono::duration_cast<std::chrono::milliseconds>(f.modified.time_since_epoch()).count()}});
    }
    return json::value(std::move(arr));
  }
  Result<void> done = invalidArgument("unknown command '" + op + "'");
  if (op == "stop") {
    done = local.stop(sid);
  } else if (op == "destroy") {
    done = local.destroy(sid);
  } else if (op == "pause") {
    done = local.pause(sid);
  } else if (op == "resume") {
    done = local.resume(sid);
  } else if (op == "exec") {
    spi::ExecRequest r;
    auto* argv = o.if_contains("command");
    if (!argv || !argv->is_array() || argv->as_array().empty()) return invalidArgument("exec needs a command");
    for (const auto& a : argv->as_array()) {
      if (!a.is_string()) return invalidArgument("exec command items must be strings");
      r.command.emplace_back(a.as_string());
    }
    if (auto* u = o.if_contains("user"); u && u->is_string()) r.user = std::string(u->as_string());
    if (auto* w = o.if_contains("workdir"); w && w->is_string()) r.workdir = std::string(w->as_string());
    if (auto* p = o.if_contains("privileged"); p && p->is_bool()) r.privileged = p->as_bool();
    KASM_ASSIGN_OR_RETURN(r.environment, readStringMap(o.if_contains("environment"), "environment"));
    KASM_ASSIGN_OR_RETURN(auto out, local.exec(sid, r));
    return json::value(json::object{{"exit_code", out.exit_code}, {"output", out.output}});
  }
  if (!done.ok()) return done.error();
  return json::value(nullptr);
}

}  // namespace

std::string executeCommand(spi::AgentLink& local, std::string_view command_json) {
  auto r = runCommand(local, command_json);
  return r.ok() ? okJson(std::move(*r)) : errorJson(r.error());
}

}  // namespace kasm::agent
