// Kasm-compatible developer API: request parsing, authorisation and the session verbs.

#include "kasm/api/developer_api.hpp"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <ctime>

#include "api/api_key_auth.hpp"
#include "api/authorization.hpp"
#include "api/developer_api_impl.hpp"
#include "api/session_start.hpp"
#include "kasm/share/sharing.hpp"

namespace kasm::api {

namespace json = boost::json;

namespace detail {

ApiResponse errorResponse(const Error& e) {
  json::object o;
  o["error_message"] = e.message();
  return ApiResponse{kasm::httpStatusOf(e.code()), json::serialize(o)};
}

ApiResponse okResponse(const json::object& o) {
  return ApiResponse{200, json::serialize(o)};
}

std::string kasmTime(TimePoint t) {
  const std::time_t secs = static_cast<std::time_t>(toUnixMillis(t) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

Result<std::string> requireString(const json::object& o, std::string_view key, std::string_view where) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null())
    return invalidArgument(std::string(where) + std::string(key) + " is required");
  if (!it->value().is_string()) return invalidArgument(std::string(where) + std::string(key) + " must be a string");
  return std::string(it->value().get_string());
}

Result<std::optional<std::string>> optionalString(const json::object& o, std::string_view key, std::string_view where) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<std::string>();
  if (!it->value().is_string()) return invalidArgument(std::string(where) + std::string(key) + " must be a string");
  return std::optional<std::string>(std::string(it->value().get_string()));
}

Result<std::optional<bool>> optionalBool(const json::object& o, std::string_view key, std::string_view where) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<bool>();
  if (!it->value().is_bool()) return invalidArgument(std::string(where) + std::string(key) + " must be true or false");
  return std::optional<bool>(it->value().get_bool());
}

Result<const json::object*> optionalObject(const json::object& o, std::string_view key, std::string_view where) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return static_cast<const json::object*>(nullptr);
  if (!it->value().is_object()) return invalidArgument(std::string(where) + std::string(key) + " must be an object");
  return &it->value().get_object();
}

}  // namespace detail

using namespace detail;

DeveloperApi::DeveloperApi(Manager& manager, spi::Store& store, Clock& clock, const auth::AccessTokenSigner& signer,
                           DeveloperApiOptions options)
    : impl_(std::make_unique<Impl>(manager, store, clock, signer, std::move(options))) {}
DeveloperApi::~DeveloperApi() = default;

namespace {

using Handler = Result<json::object> (DeveloperApi::Impl::*)(const json::object&, const ApiKey&);

// A verb whose answer is not JSON (get_kasm_screenshot: a PNG) makes its whole response.
using RawHandler = ApiResponse (DeveloperApi::Impl::*)(const json::object&, const ApiKey&);

struct VerbEntry {
  DeveloperApiVerb verb;
  Handler handler = nullptr;
  RawHandler raw = nullptr;
};

constexpr std::size_t kVerbCount = 27;

// The verb table: what each verb needs, and who serves it. Session verbs act on any user's
// sessions, hence sessions:manage; user verbs need users:manage.
const std::array<VerbEntry, kVerbCount>& verbTable() {
  using I = DeveloperApi::Impl;
  static const std::array<VerbEntry, kVerbCount> kVerbs = {{
      {{"request_kasm", permissions::kSessionsManage, false}, &I::requestKasm},
      {{"get_kasm_status", permissions::kSessionsManage, true}, &I::getKasmStatus},
      {{"destroy_kasm", permissions::kSessionsManage, false}, &I::destroyKasm},
      {{"keepalive", permissions::kSessionsManage, false}, &I::keepalive},
      {{"get_kasms", permissions::kSessionsManage, true}, &I::getKasms},
      {{"exec_command_kasm", permissions::kSessionsManage, false}, &I::execCommandKasm},
      {{"get_kasm_screenshot", permissions::kSessionsManage, true}, nullptr, &I::getKasmScreenshot},
      {{"get_user", permissions::kUsersManage, true}, &I::getUser},
      {{"get_users", permissions::kUsersManage, true}, &I::getUsers},
      {{"create_user", permissions::kUsersManage, false}, &I::createUser},
      {{"update_user", permissions::kUsersManage, false}, &I::updateUser},
      {{"delete_user", permissions::kUsersManage, false}, &I::deleteUser},
      {{"logout_user", permissions::kUsersManage, false}, &I::logoutUser},
      {{"get_images", "", true}, &I::getImages},
      {{"add_user_group", permissions::kUsersManage, false}, &I::addUserGroup},
      {{"remove_user_group", permissions::kUsersManage, false}, &I::removeUserGroup},
      {{"get_attributes", permissions::kUsersManage, true}, &I::getAttributes},
      {{"update_user_attributes", permissions::kUsersManage, false}, &I::updateUserAttributes},
      {{"join_kasm", permissions::kSessionsManage, false}, &I::joinKasm},
      {{"create_kasm_share_id", permissions::kSessionsManage, false}, &I::createKasmShareId},
      {{"get_kasm_share_id", permissions::kSessionsManage, true}, &I::getKasmShareId},
      {{"delete_kasm_share_id", permissions::kSessionsManage, false}, &I::deleteKasmShareId},
      {{"get_session_permissions", permissions::kSessionsManage, true}, &I::getSessionPermissions},
      {{"set_session_permissions", permissions::kSessionsManage, false}, &I::setSessionPermissions},
      {{"delete_session_permissions", permissions::kSessionsManage, false}, &I::deleteSessionPermissions},
      {{"assign_user_server", permissions::kAgentsManage, false}, &I::assignUserServer},
      {{"unassign_user_server", permissions::kAgentsManage, false}, &I::unassignUserServer},
  }};
  return kVerbs;
}

// Verbs of Kasm's developer API that come with later capabilities. A Kasm client that calls one
// gets a clear answer (501, after authentication like any verb), never an "unknown call".
struct PlannedVerb {
  std::string_view name;
  std::string_view why;
};
constexpr PlannedVerb kPlannedVerbs[] = {
    {"get_kasm_frame_stats", "the desktops' VNC server (TigerVNC) does not report frame statistics"},
};

}  // namespace

std::span<const DeveloperApiVerb> DeveloperApi::verbs() {
  static const auto kList = [] {
    std::array<DeveloperApiVerb, kVerbCount> out;
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = verbTable()[i].verb;
    return out;
  }();
  return kList;
}

Result<ApiKey> DeveloperApi::Impl::authenticate(const DeveloperApiVerb& verb, const json::object& body,
                                                std::string_view authorization) {
  ApiKeyCredentials creds;
  if (auto header = parseAuthorizationHeader(authorization, /*allow_bearer=*/false)) {
    creds = std::move(*header);
  } else {
    auto k = body.find("api_key");
    auto s = body.find("api_key_secret");
    if (k == body.end() || s == body.end() || !k->value().is_string() || !s->value().is_string()) {
      return unauthenticated("api_key and api_key_secret are required");
    }
    creds = {std::string(k->value().get_string()), std::string(s->value().get_string())};
  }
  KASM_ASSIGN_OR_RETURN(ApiKey key, verifyApiKey(repo, clock, creds));
  if (key.read_only && !verb.read) return permissionDenied("api key '" + key.name + "' is read-only");
  const bool allowed =
      verb.permission.empty() ? !key.permissions.empty() : permissions::grants(key.permissions, verb.permission);
  if (!allowed) {
    return permissionDenied("api key '" + key.name + "' lacks the permission " +
                            (verb.permission.empty() ? std::string("(any)") : std::string(verb.permission)) + " for " +
                            std::string(verb.name));
  }
  return key;
}

ApiResponse DeveloperApi::handle(std::string_view verb, std::string_view body, std::string_view authorization,
                                 std::string_view idempotency_key) {
  auto& im = *impl_;
  if (body.size() > im.options.max_body_bytes) return errorResponse(invalidArgument("request body is too large"));
  boost::system::error_code ec;
  json::value parsed = json::parse(body.empty() ? std::string_view("{}") : body, ec);
  if (ec) return errorResponse(invalidArgument("malformed JSON: " + ec.message()));
  if (!parsed.is_object()) return errorResponse(invalidArgument("the request body must be a JSON object"));
  if (!idempotency_key.empty()) {
    // The Idempotency-Key header reaches the verbs (request_kasm) as the body's idempotency_key.
    auto merged = detail::idempotencyKeyOf(idempotency_key, parsed.get_object());
    if (!merged.ok()) return errorResponse(merged.error());
    parsed.get_object()["idempotency_key"] = *merged;
  }
  const json::object& o = parsed.get_object();
  const auto& table = verbTable();
  auto it = std::find_if(table.begin(), table.end(), [&](const VerbEntry& e) { return e.verb.name == verb; });
  if (it == table.end()) {
    auto planned = std::find_if(std::begin(kPlannedVerbs), std::end(kPlannedVerbs),
                                [&](const PlannedVerb& p) { return p.name == verb; });
    if (planned == std::end(kPlannedVerbs)) {
      return errorResponse(notFound("unknown API call '" + std::string(verb.substr(0, 64)) + "'"));
    }
    auto key = im.authenticate(DeveloperApiVerb{planned->name, "", true}, o, authorization);
    if (!key.ok()) return errorResponse(key.error());
    json::object e;
    e["error_message"] = std::string(planned->name) + " is not supported by this server: " + std::string(planned->why);
    return ApiResponse{501, json::serialize(e)};
  }
  auto key = im.authenticate(it->verb, o, authorization);
  if (!key.ok()) return errorResponse(key.error());
  if (it->raw) return (im.*(it->raw))(o, *key);
  auto result = (im.*(it->handler))(o, *key);
  if (!result.ok()) return errorResponse(result.error());
  return okResponse(*result);
}

// ---- sessions ----

json::object DeveloperApi::Impl::kasmJson(const Session& s) {
  json::object k;
  k["kasm_id"] = s.id.str();
  k["user_id"] = s.user_id.str();
  k["image_id"] = s.workspace_id.str();
  k["server_id"] = s.agent_id ? s.agent_id->str() : "";
  k["zone_id"] = s.zone_id ? s.zone_id->str() : "";
  k["container_id"] = s.container_id;
  std::optional<std::string> share_id;
  if (options.sharing) share_id = options.sharing->shareIdOf(s);
  k["share_id"] = share_id ? json::value(*share_id) : json::value(nullptr);
  k["operational_status"] = operationalStatus(s.state);
  k["operational_message"] = s.operational_message;
  k["operational_progress"] = s.progress;
  k["state_reason"] = s.state_reason;
  k["start_date"] = kasmTime(s.created_at);
  k["keepalive_date"] = s.keepalive_at ? json::value(kasmTime(*s.keepalive_at)) : json::value(nullptr);
  k["expiration_date"] = s.expires_at ? json::value(kasmTime(*s.expires_at)) : json::value(nullptr);
  return k;
}

std::string DeveloperApi::Impl::operationalStatus(SessionState st) {
  switch (st) {
    case SessionState::kRequested:
    case SessionState::kProvisioning: return "starting";
    case SessionState::kRunning: return "running";
    case SessionState::kPaused: return "paused";
    case SessionState::kStopping: return "stopping";
    case SessionState::kStopped: return "stopped";
    case SessionState::kDestroyed: return "deleted";
    case SessionState::kFailed: return "failed";
  }
  return "unknown";
}

std::string DeveloperApi::Impl::kasmUrl(const Session& s) {
  return options.session_path_prefix + s.id.str() +
         "/?token=" + signer.issue(s.id, s.user_id, options.session_token_ttl);
}

Result<Versioned<Session>> DeveloperApi::Impl::sessionOfUser(const json::object& o) {
  KASM_ASSIGN_OR_RETURN(std::string kasm_id, requireString(o, "kasm_id", ""));
  KASM_ASSIGN_OR_RETURN(auto id, SessionId::parse(kasm_id, "kasm_id"));
  auto s = repo.get<Session>(id.str());
  if (!s.ok()) {
    if (s.error().code() == ErrorCode::kNotFound) return notFound("kasm '" + kasm_id + "' does not exist");
    return s.error();
  }
  KASM_ASSIGN_OR_RETURN(auto user_id, optionalString(o, "user_id", ""));
  // When the caller names a user, the kasm must be theirs: an id alone is not enough.
  if (user_id && *user_id != s->value.user_id.str())
    return notFound("kasm '" + kasm_id + "' does not exist for this user");
  return s;
}

Result<json::object> DeveloperApi::Impl::requestKasm(const json::object& o, const ApiKey& key) {
  KASM_ASSIGN_OR_RETURN(auto user_id, optionalString(o, "user_id", ""));
  KASM_ASSIGN_OR_RETURN(auto image_id, optionalString(o, "image_id", ""));
  KASM_ASSIGN_OR_RETURN(auto zone_id, optionalString(o, "zone_id", ""));
  KASM_ASSIGN_OR_RETURN(auto sharing, optionalBool(o, "enable_sharing", ""));
  KASM_ASSIGN_OR_RETURN(const json::object* env, optionalObject(o, "environment", ""));
  KASM_ASSIGN_OR_RETURN(auto language, optionalString(o, "client_language", ""));
  KASM_ASSIGN_OR_RETURN(auto timezone, optionalString(o, "client_timezone", ""));
  KASM_ASSIGN_OR_RETURN(auto profile_mode, optionalString(o, "persistent_profile_mode", ""));
  // The Idempotency-Key header, when sent, is here too (handle()).
  KASM_ASSIGN_OR_RETURN(auto idempotency_key, optionalString(o, "idempotency_key", ""));
  // The credentials a fixed server that asks its users for them is opened with: top-level
  // connection_username / connection_password, or the same in connection_info (username,
  // password). Container workspaces ignore them.
  KASM_ASSIGN_OR_RETURN(const json::object* connection_info, optionalObject(o, "connection_info", ""));
  KASM_ASSIGN_OR_RETURN(auto connection_username, optionalString(o, "connection_username", ""));
  KASM_ASSIGN_OR_RETURN(auto connection_password, optionalString(o, "connection_password", ""));
  if (connection_info) {
    KASM_ASSIGN_OR_RETURN(auto info_username, optionalString(*connection_info, "username", "connection_info."));
    KASM_ASSIGN_OR_RETURN(auto info_password, optionalString(*connection_info, "password", "connection_info."));
    if (!connection_username) connection_username = std::move(info_username);
    if (!connection_password) connection_password = std::move(info_password);
  }
  if (language) KASM_RETURN_IF_ERROR(validateLanguageTag(*language, "client_language"));
  if (timezone) KASM_RETURN_IF_ERROR(validateTimeZoneName(*timezone, "client_timezone"));
  std::map<std::string, std::string> environment;
  // Kasm clients send the browser's language and time zone; the desktop takes them as LANG and TZ
  // ("en-US" -> "en_US.UTF-8"). Variables named in `environment` win.
  if (language && !language->empty()) {
    std::string lang = *language;
    std::replace(lang.begin(), lang.end(), '-', '_');
    environment["LANG"] = lang + ".UTF-8";
  }
  if (timezone && !timezone->empty()) environment["TZ"] = *timezone;
  if (env) {
    if (env->size() > 100) return invalidArgument("environment: at most 100 variables");
    for (const auto& [k, v] : *env) {
      const std::string name(k);
      const bool good_name =
          !name.empty() && name.size() <= 256 && !(name[0] >= '0' && name[0] <= '9') &&
          std::all_of(name.begin(), name.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
          });
      if (!good_name) return invalidArgument("environment: '" + name.substr(0, 64) + "' is not a variable name");
      if (!v.is_string()) return invalidArgument("environment." + name + " must be a string");
      if (v.get_string().size() > 32768) return invalidArgument("environment." + name + " is longer than 32 KiB");
      environment[name] = std::string(v.get_string());
    }
  }
  User user;
  bool anonymous_created = false;
  if (user_id) {
    KASM_ASSIGN_OR_RETURN(auto uid, UserId::parse(*user_id, "user_id"));
    auto u = repo.get<User>(uid.str());
    if (!u.ok()) {
      if (u.error().code() == ErrorCode::kNotFound) return notFound("user '" + *user_id + "' does not exist");
      return u.error();
    }
    user = u->value;
  } else {
    KASM_ASSIGN_OR_RETURN(user, createAnonymousUser(key, idempotency_key.value_or(""), &anonymous_created));
  }
  // A request refused from here on leaves no anonymous user behind: it is removed unless a
  // session row came to refer to it.
  struct AnonymousCleanup {
    Repository& repo;
    std::optional<UserId> id;
    ~AnonymousCleanup() {
      if (!id) return;
      auto sessions = repo.count<Session>(spi::Query().where("user_id", id->str()));
      if (sessions.ok() && *sessions == 0) (void)repo.remove<User>(id->str(), std::nullopt);
    }
  } cleanup{repo, anonymous_created ? std::optional<UserId>(user.id) : std::nullopt};
  SessionRequest req;
  req.user_id = user.id;
  if (image_id) {
    KASM_ASSIGN_OR_RETURN(req.workspace_id, WorkspaceId::parse(*image_id, "image_id"));
  } else {
    KASM_ASSIGN_OR_RETURN(GroupSettings settings, manager.effectiveSettings(user.id));
    if (!settings.default_workspace)
      return invalidArgument("image_id is required: the user's group has no default workspace");
    req.workspace_id = *settings.default_workspace;
  }
  // As through REST: the user launches only workspaces assigned to one of their groups, unless the
  // key manages workspaces.
  auto ws = repo.get<Workspace>(req.workspace_id.str());
  if (!ws.ok()) {
    if (ws.error().code() == ErrorCode::kNotFound) {
      return notFound("image '" + req.workspace_id.str() + "' does not exist");
    }
    return ws.error();
  }
  KASM_RETURN_IF_ERROR(detail::requireMayLaunch(user, ws->value, key.permissions));
  if (ws->value.type == WorkspaceType::kLink) {
    // A link opens its URL: no session, nothing to keep alive.
    if (!ws->value.enabled) return failedPrecondition("workspace '" + ws->value.friendly_name + "' is disabled");
    json::object out;
    out["kasm_id"] = nullptr;
    out["status"] = "link";
    out["username"] = user.username;
    out["user_id"] = user.id.str();
    out["kasm_url"] = ws->value.link_url;
    return out;
  }
  // Kasm's modes, checked by the manager: Enabled, Disabled, or Reset (the user's own profile is
  // removed on the session's agent, then mounted empty).
  req.persistent_profile_mode = profile_mode.value_or("");
  req.connection_username = connection_username.value_or("");
  req.connection_password = connection_password.value_or("");
  req.idempotency_key = idempotency_key.value_or("");
  if (zone_id) {
    KASM_ASSIGN_OR_RETURN(auto z, ZoneId::parse(*zone_id, "zone_id"));
    req.zone_id = z;
  }
  req.environment = std::move(environment);

  const bool share = sharing && *sharing;
  if (share) {
    KASM_ASSIGN_OR_RETURN(share::Sharing * sharing_service, this->sharing());
    KASM_RETURN_IF_ERROR(sharing_service->mayShare(user.id));
  }
  KASM_ASSIGN_OR_RETURN(Session s, detail::startSession(manager, options.background, std::move(req)));
  json::object out;
  const std::string url = kasmUrl(s);
  out["kasm_id"] = s.id.str();
  out["status"] = operationalStatus(s.state);
  std::optional<std::string> share_id;
  if (share) {
    // The session exists whatever happens here: a share that cannot be made is reported, not fatal.
    auto made = options.sharing->createShare(s.id, std::nullopt);
    if (made.ok())
      share_id = std::move(*made);
    else
      out["share_error"] = made.error().message();
  }
  out["share_id"] = share_id ? json::value(*share_id) : json::value(nullptr);
  out["username"] = user.username;
  out["user_id"] = user.id.str();
  out["session_token"] = url.substr(url.find("token=") + 6);
  out["kasm_url"] = url;
  return out;
}

Result<json::object> DeveloperApi::Impl::getKasmStatus(const json::object& o, const ApiKey& key) {
  KASM_ASSIGN_OR_RETURN(auto s, sessionOfUser(o));
  KASM_ASSIGN_OR_RETURN(auto named, optionalString(o, "user_id", ""));
  json::object out;
  out["current_time"] = kasmTime(clock.now());
  out["operational_status"] = operationalStatus(s.value.state);
  out["operational_message"] = s.value.operational_message;
  out["operational_progress"] = s.value.progress;
  out["kasm"] = kasmJson(s.value);
  // A session access token is interactive access: never for a read-only key, and only when the
  // call acts for the session's owner (it names them, as Kasm's clients do, or the key is theirs).
  const bool for_owner = (named && *named == s.value.user_id.str()) || key.owner == s.value.user_id;
  if (s.value.state == SessionState::kRunning && !key.read_only && for_owner) out["kasm_url"] = kasmUrl(s.value);
  return out;
}

ApiResponse DeveloperApi::Impl::getKasmScreenshot(const json::object& o, const ApiKey& key) {
  (void)key;
  if (!options.screenshot) {
    json::object e;
    e["error_message"] = "get_kasm_screenshot is not supported by this server";
    return ApiResponse{501, json::serialize(e)};
  }
  auto s = sessionOfUser(o);
  if (!s.ok()) return errorResponse(s.error());
  if (s->value.state != SessionState::kRunning) {
    return errorResponse(failedPrecondition("kasm '" + s->value.id.str() + "' is " +
                                            std::string(enumName(s->value.state)) +
                                            "; only a running kasm has a screen"));
  }
  int width = 300;  // Kasm's default.
  if (auto it = o.find("width"); it != o.end() && !it->value().is_null()) {
    const auto& w = it->value();
    if (w.is_int64()) {
      width = static_cast<int>(std::clamp<std::int64_t>(w.as_int64(), -1, 100000));
    } else if (w.is_string()) {
      const std::string text(w.as_string());
      if (text.empty() || text.size() > 6 ||
          !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return errorResponse(invalidArgument("width must be a number of pixels"));
      width = std::stoi(text);
    } else {
      return errorResponse(invalidArgument("width must be a number of pixels"));
    }
    if (width < 1 || width > 4096) return errorResponse(invalidArgument("width must be between 1 and 4096"));
  }
  auto png = options.screenshot(s->value, width);
  if (!png.ok()) return errorResponse(png.error().withContext("screenshot of kasm " + s->value.id.str()));
  return ApiResponse{200, std::move(*png), "image/png"};
}

Result<json::object> DeveloperApi::Impl::destroyKasm(const json::object& o, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(auto s, sessionOfUser(o));
  KASM_RETURN_IF_ERROR(manager.destroySession(s.value.id, "destroyed through the developer API"));
  return json::object{};
}

Result<json::object> DeveloperApi::Impl::keepalive(const json::object& o, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(auto s, sessionOfUser(o));
  KASM_ASSIGN_OR_RETURN(Session after, manager.keepalive(s.value.id));
  json::object out;
  out["usage_reached"] = false;
  out["expiration_date"] = after.expires_at ? json::value(kasmTime(*after.expires_at)) : json::value(nullptr);
  return out;
}

Result<json::object> DeveloperApi::Impl::getKasms(const json::object&, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(auto sessions,
                        repo.list<Session>(spi::Query().whereIn(
                            "state", {"requested", "provisioning", "running", "paused", "stopping", "stopped"})));
  json::array arr;
  for (const auto& s : sessions) {
    if (s.value.isStaged()) continue;
    arr.push_back(kasmJson(s.value));
  }
  json::object out;
  out["kasms"] = std::move(arr);
  out["current_time"] = kasmTime(clock.now());
  return out;
}

Result<json::object> DeveloperApi::Impl::execCommandKasm(const json::object& o, const ApiKey& key) {
  KASM_ASSIGN_OR_RETURN(auto s, sessionOfUser(o));
  KASM_ASSIGN_OR_RETURN(const json::object* exec, optionalObject(o, "exec_config", ""));
  if (!exec) return invalidArgument("exec_config is required");
  KASM_ASSIGN_OR_RETURN(std::string cmd, requireString(*exec, "cmd", "exec_config."));
  if (cmd.empty()) return invalidArgument("exec_config.cmd must not be empty");
  spi::ExecRequest req;
  req.command = {"sh", "-c", cmd};
  KASM_ASSIGN_OR_RETURN(auto user, optionalString(*exec, "user", "exec_config."));
  KASM_ASSIGN_OR_RETURN(auto workdir, optionalString(*exec, "workdir", "exec_config."));
  KASM_ASSIGN_OR_RETURN(auto privileged, optionalBool(*exec, "privileged", "exec_config."));
  KASM_ASSIGN_OR_RETURN(const json::object* env, optionalObject(*exec, "environment", "exec_config."));
  req.user = user.value_or("");
  req.workdir = workdir.value_or("");
  req.privileged = privileged.value_or(false);
  // Running as another container user (root, say) or privileged reaches past what the session's
  // user can do inside: that is an administrator's call.
  if ((req.privileged || !req.user.empty()) && !permissions::grants(key.permissions, permissions::kAdmin)) {
    return permissionDenied("exec_config.privileged and exec_config.user need an admin api key");
  }
  if (env) {
    for (const auto& [k, v] : *env) {
      if (!v.is_string()) return invalidArgument("exec_config.environment." + std::string(k) + " must be a string");
      req.environment[std::string(k)] = std::string(v.get_string());
    }
  }
  KASM_ASSIGN_OR_RETURN(auto result, manager.execInSession(s.value.id, req));
  // Kasm's API returns nothing; we add what an integrator would want to know.
  json::object out;
  out["exit_code"] = result.exit_code;
  out["output"] = result.output;
  return out;
}

}  // namespace kasm::api
