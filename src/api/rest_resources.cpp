// REST API: routes over the resources (workspaces, zones, agents, sessions, users, groups, api keys,
// staging pools, settings, licences).

#include <charconv>
#include <condition_variable>
#include <mutex>

#include "api/rest_impl.hpp"
#include "api/session_start.hpp"
#include "kasm/auth/password.hpp"
#include "kasm/auth/secret.hpp"
#include "kasm/license/licensing.hpp"
#include "kasm/license/text.hpp"
#include "kasm/model/json.hpp"
#include "kasm/version.hpp"

namespace kasm::api {

namespace json = boost::json;

namespace {

Error methodNotAllowed(std::string_view method, std::string_view what) {
  return invalidArgument(std::string(method) + " is not allowed on " + std::string(what));
}

Result<void> require(const Principal& p, std::string_view permission) {
  if (!p.can(permission)) return permissionDenied("this needs the '" + std::string(permission) + "' permission");
  return {};
}

template <class T>
Result<json::object> toObject(const T& v) {
  KASM_ASSIGN_OR_RETURN(auto o, rest::parseObject(toJson(v)));
  return rest::redact(std::move(o));
}

Result<std::size_t> parseCount(std::string_view text, std::size_t fallback, std::string_view name) {
  if (text.empty()) return fallback;
  std::size_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) {
    return invalidArgument(std::string(name) + " must be a non-negative integer");
  }
  return v;
}

// Fields a client may not set through a write: identity, timestamps and secrets.
const std::set<std::string, std::less<>>& protectedFields() {
  static const std::set<std::string, std::less<>> kFields = {
      "id",         "created_at", "updated_at",    "password_hash",        "secret_hash",
      "token_hash", "key",        "registered_at", "sessions_valid_after", "last_login_at"};
  return kFields;
}

// RFC 7396 merge patch of `patch` into `target`.
void mergePatch(json::object& target, const json::object& patch) {
  for (const auto& [k, v] : patch) {
    if (protectedFields().count(k)) continue;
    if (v.is_null()) {
      target.erase(k);
    } else if (v.is_object() && target.contains(k) && target[k].is_object()) {
      mergePatch(target[k].as_object(), v.as_object());
    } else {
      target[k] = v;
    }
  }
}

// Builds a T from `base` (an existing value or defaults) with `patch` merged in.
template <class T>
Result<T> patched(const T& base, const json::object& patch) {
  KASM_ASSIGN_OR_RETURN(auto merged, rest::parseObject(toJson(base)));
  mergePatch(merged, patch);
  KASM_ASSIGN_OR_RETURN(T out, fromJson<T>(json::serialize(merged)));
  return out;
}

}  // namespace

// ---- generic collection helpers ---------------------------------------------------------------

template <class T>
static RouteResult listOf(RestApi::Impl& im, const RouteCall& call, spi::Query query,
                          const std::function<bool(const T&)>& visible = nullptr) {
  const auto& schema = spi::tableSchema(EntityTraits<T>::kTable);
  for (const auto& column : schema.columns) {
    auto v = call.queryValue(column);
    if (!v.empty()) query.where(std::string(column), std::string(v));
  }
  KASM_ASSIGN_OR_RETURN(std::size_t limit, parseCount(call.queryValue("limit"), 100, "limit"));
  KASM_ASSIGN_OR_RETURN(std::size_t offset, parseCount(call.queryValue("offset"), 0, "offset"));
  limit = std::clamp<std::size_t>(limit, 1, im.options.max_page);
  query.after_id = std::string(call.queryValue("after"));
  std::vector<Versioned<T>> rows;
  std::int64_t total = 0;
  if (visible) {
    // Filtered in memory (ownership): scan all matching rows.
    KASM_ASSIGN_OR_RETURN(rows, im.repo.list<T>(query));
    std::erase_if(rows, [&](const Versioned<T>& r) { return !visible(r.value); });
    total = static_cast<std::int64_t>(rows.size());
  } else {
    spi::Query count_query = query;
    count_query.after_id.clear();
    KASM_ASSIGN_OR_RETURN(total, im.repo.count<T>(count_query));
    query.limit = limit + offset;
    KASM_ASSIGN_OR_RETURN(rows, im.repo.list<T>(query));
  }
  json::array items;
  std::string last;
  [[maybe_unused]] RestApi::Impl::ProtocolCache protocols;
  for (std::size_t i = offset; i < rows.size() && items.size() < limit; ++i) {
    last = EntityTraits<T>::id(rows[i].value);
    if constexpr (std::is_same_v<T, Session>) {
      KASM_ASSIGN_OR_RETURN(auto o, im.sessionJson(rows[i].value, call.principal, &protocols));
      items.push_back(std::move(o));
    } else {
      KASM_ASSIGN_OR_RETURN(auto o, toObject(rows[i].value));
      items.push_back(std::move(o));
    }
  }
  json::object out;
  const bool more = offset + items.size() < rows.size() || (!visible && rows.size() >= limit + offset);
  out["items"] = std::move(items);
  out["total"] = total;
  out["limit"] = limit;
  out["offset"] = offset;
  out["next"] = more && !last.empty() ? json::value(last) : json::value(nullptr);
  return rest::reply(200, out);
}

template <class T>
static RouteResult getOne(RestApi::Impl& im, std::string_view id) {
  KASM_ASSIGN_OR_RETURN(auto v, im.repo.get<T>(id));
  KASM_ASSIGN_OR_RETURN(auto o, toObject(v.value));
  return rest::reply(200, o);
}

// Create (id empty) or update (merge patch) through `save`, which assigns ids and timestamps.
template <class T>
static RouteResult writeOne(RestApi::Impl& im, const RouteCall& call, std::optional<std::string_view> id,
                            const std::function<Result<T>(T)>& save) {
  T base{};
  if (id) {
    KASM_ASSIGN_OR_RETURN(auto existing, im.repo.get<T>(*id));
    base = existing.value;
  }
  KASM_ASSIGN_OR_RETURN(T value, patched(base, *call.body));
  // save() assigns the id of a new value, and the repository validates what it writes.
  KASM_ASSIGN_OR_RETURN(T saved, save(std::move(value)));
  KASM_ASSIGN_OR_RETURN(auto o, toObject(saved));
  return rest::reply(id ? 200 : 201, o);
}

// Saves through the repository: insert with a new id, or update under compare-and-set.
template <class T, class IdT>
static Result<T> saveInRepo(RestApi::Impl& im, T value) {
  if (value.id.empty()) {
    value.id = IdT::generate();
    if constexpr (requires { value.created_at; }) value.created_at = im.clock.now();
    KASM_RETURN_IF_ERROR(im.repo.insert(value));
    return value;
  }
  KASM_ASSIGN_OR_RETURN(auto existing, im.repo.get<T>(value.id.str()));
  KASM_RETURN_IF_ERROR(im.repo.update(value, existing.version));
  return value;
}

static RestResponse noContent() {
  RestResponse r;
  r.status = 204;
  return r;
}

// ---- sessions -----------------------------------------------------------------------------------

Result<json::object> RestApi::Impl::sessionJson(const Session& s, const Principal& p, ProtocolCache* protocols) {
  KASM_ASSIGN_OR_RETURN(auto o, toObject(s));
  o.erase("upstream");  // Where the container listens is the proxy's business.
  // The protocol comes from the workspace: read once per workspace when a list shares a cache.
  auto lookup = [&]() -> std::optional<SessionProtocol> {
    auto ws = repo.get<Workspace>(s.workspace_id.str());
    if (!ws.ok()) return std::nullopt;
    return ws->value.protocol;
  };
  std::optional<SessionProtocol> protocol;
  if (protocols) {
    auto [it, fresh] = protocols->try_emplace(s.workspace_id);
    if (fresh) it->second = lookup();
    protocol = it->second;
  } else {
    protocol = lookup();
  }
  if (protocol) o["protocol"] = std::string(enumName(*protocol));
  if (p.is(s.user_id) && (s.state == SessionState::kRunning || s.state == SessionState::kPaused)) {
    const std::string token = signer.issue(s.id, s.user_id, options.session_token_ttl);
    const std::string base = options.session_path_prefix + s.id.str() + "/";
    o["url"] = base + "?token=" + token;
    o["ws_url"] = base + "websockify?token=" + token;
    if (auto pw = manager.vncPassword(s.id); pw && protocol == SessionProtocol::kVnc) {
      o["vnc_password"] = *pw;
    }
  }
  return o;
}

static Result<Versioned<Session>> visibleSession(RestApi::Impl& im, const RouteCall& call, std::string_view id) {
  auto s = im.repo.get<Session>(id);
  if (!s.ok()) return s.error();
  if (!call.principal.is(s->value.user_id) && !call.principal.can(permissions::kSessionsManage)) {
    // Not "forbidden": whether someone else's session exists is not for this caller to learn.
    return notFound("session " + std::string(id) + " does not exist");
  }
  return s;
}

static RouteResult sessions(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  const auto& p = call.principal;
  if (call.params.empty()) {
    if (method == "GET") {
      spi::Query q;
      const bool all = call.queryValue("all") == "true";
      if (all) {
        KASM_RETURN_IF_ERROR(require(p, permissions::kSessionsManage));
      } else {
        if (!p.user) return invalidArgument("this api key belongs to no user; add all=true");
        q.where("user_id", p.user->str());
      }
      // Ended sessions are history; the list shows live ones unless a state is asked for.
      std::function<bool(const Session&)> live = [](const Session& s) -> bool {
        return s.state != SessionState::kDestroyed && s.state != SessionState::kFailed;
      };
      return listOf<Session>(im, call, std::move(q), call.queryValue("state").empty() ? live : nullptr);
    }
    if (method == "POST") {
      KASM_RETURN_IF_ERROR(require(p, permissions::kSessionsLaunch));
      SessionRequest req;
      const auto& b = *call.body;
      auto ws = b.if_contains("workspace_id");
      if (!ws || !ws->is_string()) return invalidArgument("workspace_id is required");
      KASM_ASSIGN_OR_RETURN(req.workspace_id, WorkspaceId::parse(ws->get_string(), "workspace_id"));
      if (auto z = b.if_contains("zone_id"); z && !z->is_null()) {
        if (!z->is_string()) return invalidArgument("zone_id must be a string");
        KASM_ASSIGN_OR_RETURN(auto zone, ZoneId::parse(z->get_string(), "zone_id"));
        req.zone_id = zone;
      }
      if (auto u = b.if_contains("user_id"); u && !u->is_null()) {
        if (!u->is_string()) return invalidArgument("user_id must be a string");
        KASM_ASSIGN_OR_RETURN(req.user_id, UserId::parse(u->get_string(), "user_id"));
        if (!p.is(req.user_id)) KASM_RETURN_IF_ERROR(require(p, permissions::kSessionsManage));
      } else {
        if (!p.user) return invalidArgument("user_id is required with an api key that belongs to no user");
        req.user_id = *p.user;
      }
      auto ws_row = im.repo.get<Workspace>(req.workspace_id.str());
      if (!ws_row.ok() || (!ws_row->value.enabled && !p.can(permissions::kWorkspacesManage))) {
        return notFound("workspace " + req.workspace_id.str() + " does not exist or is disabled");
      }
      KASM_ASSIGN_OR_RETURN(Session s, detail::startSession(im.manager, im.options.background, std::move(req)));
      KASM_ASSIGN_OR_RETURN(auto o, im.sessionJson(s, p));
      return rest::reply(s.state == SessionState::kRunning ? 201 : 202, o);
    }
    return methodNotAllowed(method, "/sessions");
  }
  KASM_ASSIGN_OR_RETURN(auto s, visibleSession(im, call, call.params[0]));
  const SessionId id = s.value.id;
  if (call.params.size() == 1) {
    if (method == "GET") {
      KASM_ASSIGN_OR_RETURN(auto o, im.sessionJson(s.value, p));
      return rest::reply(200, o);
    }
    if (method == "DELETE") {
      KASM_ASSIGN_OR_RETURN(Session d, im.manager.destroySession(id, "deleted by " + (p.user ? p.user->str() : "api")));
      KASM_ASSIGN_OR_RETURN(auto o, im.sessionJson(d, p));
      return rest::reply(200, o);
    }
    return methodNotAllowed(method, "/sessions/{id}");
  }
  if (method != "POST") return methodNotAllowed(method, "/sessions/{id}/" + call.params[1]);
  const std::string& action = call.params[1];
  Result<Session> r = notFound("no session action '" + action + "'");
  if (action == "keepalive")
    r = im.manager.keepalive(id);
  else if (action == "pause")
    r = im.manager.pauseSession(id);
  else if (action == "resume")
    r = im.manager.resumeSession(id);
  else if (action == "stop")
    r = im.manager.stopSession(id);
  if (!r.ok()) return r.error();
  KASM_ASSIGN_OR_RETURN(auto o, im.sessionJson(*r, p));
  return rest::reply(200, o);
}

// ---- users and groups -------------------------------------------------------------------------

static Result<User> saveUser(RestApi::Impl& im, const RouteCall& call, User u, const std::optional<User>& before) {
  const auto& b = *call.body;
  if (auto pw = b.if_contains("password"); pw && !pw->is_null()) {
    if (!pw->is_string() || pw->get_string().size() < 8 || pw->get_string().size() > 1024) {
      return invalidArgument("password must be a string of 8 to 1024 characters");
    }
    KASM_ASSIGN_OR_RETURN(u.password_hash, auth::hashPassword(std::string_view(pw->get_string())));
    if (before) u.sessions_valid_after = im.clock.now();  // A new password logs out other browsers.
  }
  // Group membership grants permissions: only an admin changes it.
  const bool groups_changed = before ? before->group_ids != u.group_ids : !u.group_ids.empty();
  if (groups_changed && !call.principal.isAdmin()) return permissionDenied("only an admin changes group membership");
  if (!before) {
    if (u.group_ids.empty()) {
      KASM_ASSIGN_OR_RETURN(auto groups,
                            im.repo.list<Group>(spi::Query().where("name", im.options.default_group_name)));
      if (!groups.empty()) u.group_ids.push_back(groups.front().value.id);
    }
    return saveInRepo<User, UserId>(im, std::move(u));
  }
  if (before->disabled != u.disabled || before->locked != u.locked) {
    KASM_RETURN_IF_ERROR(require(call.principal, permissions::kUsersManage));
  }
  return saveInRepo<User, UserId>(im, std::move(u));
}

static RouteResult users(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  const auto& p = call.principal;
  if (call.params.empty()) {
    KASM_RETURN_IF_ERROR(require(p, permissions::kUsersManage));
    if (method == "GET") return listOf<User>(im, call, {});
    if (method == "POST") {
      return writeOne<User>(im, call, std::nullopt,
                            [&](User u) { return saveUser(im, call, std::move(u), std::nullopt); });
    }
    return methodNotAllowed(method, "/users");
  }
  const std::string& id = call.params[0];
  if (!p.is(UserId(id))) KASM_RETURN_IF_ERROR(require(p, permissions::kUsersManage));
  if (method == "GET") return getOne<User>(im, id);
  if (method == "PATCH" || method == "PUT") {
    KASM_ASSIGN_OR_RETURN(auto before, im.repo.get<User>(id));
    return writeOne<User>(im, call, id, [&](User u) { return saveUser(im, call, std::move(u), before.value); });
  }
  if (method == "DELETE") {
    KASM_RETURN_IF_ERROR(require(p, permissions::kUsersManage));
    if (p.is(UserId(id))) return failedPrecondition("you cannot delete yourself");
    KASM_ASSIGN_OR_RETURN(auto live, im.repo.list<Session>(spi::Query().where("user_id", id)));
    for (const auto& s : live) {
      if (s.value.state != SessionState::kDestroyed && s.value.state != SessionState::kFailed) {
        (void)im.manager.destroySession(s.value.id, "the user was deleted");
      }
    }
    KASM_RETURN_IF_ERROR(im.repo.remove<User>(id));
    return noContent();
  }
  return methodNotAllowed(method, "/users/{id}");
}

static RouteResult groups(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  const auto& p = call.principal;
  if (method == "GET") {
    KASM_RETURN_IF_ERROR(require(p, permissions::kUsersManage));
  } else if (!p.isAdmin()) {
    // Groups carry permissions: changing them is an admin's job.
    return permissionDenied("only an admin changes groups");
  }
  auto save = [&](Group g) -> Result<Group> {
    for (const auto& perm : g.permissions) {
      if (!permissions::isKnown(perm)) return invalidArgument("permissions: unknown permission '" + perm + "'");
    }
    return saveInRepo<Group, GroupId>(im, std::move(g));
  };
  if (call.params.empty()) {
    if (method == "GET") return listOf<Group>(im, call, {});
    if (method == "POST") return writeOne<Group>(im, call, std::nullopt, save);
    return methodNotAllowed(method, "/groups");
  }
  const std::string& id = call.params[0];
  if (call.params.size() == 3 && call.params[1] == "users") {
    if (method != "POST" && method != "DELETE") return methodNotAllowed(method, "/groups/{id}/users/{user_id}");
    KASM_ASSIGN_OR_RETURN(auto group, im.repo.get<Group>(id));
    for (int attempt = 0; attempt < 8; ++attempt) {
      KASM_ASSIGN_OR_RETURN(auto user, im.repo.get<User>(call.params[2]));
      auto& gids = user.value.group_ids;
      const bool member = std::find(gids.begin(), gids.end(), group.value.id) != gids.end();
      if (method == "POST" && !member) gids.push_back(group.value.id);
      if (method == "DELETE") std::erase(gids, group.value.id);
      auto w = im.repo.update(user.value, user.version);
      if (w.ok()) return noContent();
      if (w.error().code() != ErrorCode::kAborted) return w.error();
    }
    return aborted("the user changed concurrently; retry");
  }
  if (call.params.size() != 1) return notFound("no such route");
  if (method == "GET") return getOne<Group>(im, id);
  if (method == "PUT" || method == "PATCH") return writeOne<Group>(im, call, id, save);
  if (method == "DELETE") {
    KASM_RETURN_IF_ERROR(im.repo.remove<Group>(id));
    return noContent();
  }
  return methodNotAllowed(method, "/groups/{id}");
}

// ---- workspaces, zones, staging, agents -------------------------------------------------------

static RouteResult workspaces(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  const auto& p = call.principal;
  const bool manager = p.can(permissions::kWorkspacesManage);
  auto save = [&](Workspace w) { return im.manager.upsertWorkspace(std::move(w)); };
  if (call.params.empty()) {
    if (method == "GET") {
      spi::Query q;
      if (!manager) q.where("enabled", "1");
      return listOf<Workspace>(im, call, std::move(q));
    }
    KASM_RETURN_IF_ERROR(require(p, permissions::kWorkspacesManage));
    if (method == "POST") return writeOne<Workspace>(im, call, std::nullopt, save);
    return methodNotAllowed(method, "/workspaces");
  }
  const std::string& id = call.params[0];
  if (method == "GET") {
    KASM_ASSIGN_OR_RETURN(auto w, im.repo.get<Workspace>(id));
    if (!w.value.enabled && !manager) return notFound("workspace " + id + " does not exist");
    KASM_ASSIGN_OR_RETURN(auto o, toObject(w.value));
    return rest::reply(200, o);
  }
  KASM_RETURN_IF_ERROR(require(p, permissions::kWorkspacesManage));
  if (method == "PUT" || method == "PATCH") return writeOne<Workspace>(im, call, id, save);
  if (method == "DELETE") {
    KASM_RETURN_IF_ERROR(im.repo.remove<Workspace>(id));
    return noContent();
  }
  return methodNotAllowed(method, "/workspaces/{id}");
}

static RouteResult zones(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  const auto& p = call.principal;
  auto save = [&](Zone z) { return im.manager.upsertZone(std::move(z)); };
  if (call.params.empty()) {
    if (method == "GET") return listOf<Zone>(im, call, {});
    KASM_RETURN_IF_ERROR(require(p, permissions::kAgentsManage));
    if (method == "POST") return writeOne<Zone>(im, call, std::nullopt, save);
    return methodNotAllowed(method, "/zones");
  }
  const std::string& id = call.params[0];
  if (method == "GET") return getOne<Zone>(im, id);
  KASM_RETURN_IF_ERROR(require(p, permissions::kAgentsManage));
  if (method == "PUT" || method == "PATCH") return writeOne<Zone>(im, call, id, save);
  if (method == "DELETE") {
    KASM_ASSIGN_OR_RETURN(auto n, im.repo.count<Agent>(spi::Query().where("zone_id", id)));
    if (n > 0) return failedPrecondition("zone " + id + " still has " + std::to_string(n) + " agents");
    KASM_RETURN_IF_ERROR(im.repo.remove<Zone>(id));
    return noContent();
  }
  return methodNotAllowed(method, "/zones/{id}");
}

static RouteResult staging(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  KASM_RETURN_IF_ERROR(require(call.principal, permissions::kWorkspacesManage));
  auto save = [&](StagingConfig c) { return saveInRepo<StagingConfig, StagingConfigId>(im, std::move(c)); };
  if (call.params.empty()) {
    if (method == "GET") return listOf<StagingConfig>(im, call, {});
    if (method == "POST") return writeOne<StagingConfig>(im, call, std::nullopt, save);
    return methodNotAllowed(method, "/staging");
  }
  const std::string& id = call.params[0];
  if (method == "GET") return getOne<StagingConfig>(im, id);
  if (method == "PUT" || method == "PATCH") return writeOne<StagingConfig>(im, call, id, save);
  if (method == "DELETE") {
    KASM_RETURN_IF_ERROR(im.repo.remove<StagingConfig>(id));
    return noContent();
  }
  return methodNotAllowed(method, "/staging/{id}");
}

static RouteResult agents(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  KASM_RETURN_IF_ERROR(require(call.principal, permissions::kAgentsManage));
  if (call.params.empty()) {
    if (method == "GET") return listOf<Agent>(im, call, {});
    if (method == "POST") {
      KASM_ASSIGN_OR_RETURN(Agent a, patched(Agent{}, *call.body));
      KASM_ASSIGN_OR_RETURN(auto reg, im.manager.registerAgent(std::move(a)));
      KASM_ASSIGN_OR_RETURN(auto o, toObject(reg.agent));
      json::object out;
      out["agent"] = std::move(o);
      out["token"] = reg.token;  // Shown once; the store keeps its hash.
      return rest::reply(201, out);
    }
    return methodNotAllowed(method, "/agents");
  }
  const AgentId id(call.params[0]);
  if (method == "GET") return getOne<Agent>(im, id.str());
  if (method == "PATCH") {
    KASM_ASSIGN_OR_RETURN(auto a, im.repo.get<Agent>(id.str()));
    const auto& b = *call.body;
    bool enabled = a.value.enabled, draining = a.value.draining;
    if (auto v = b.if_contains("enabled")) {
      if (!v->is_bool()) return invalidArgument("enabled must be true or false");
      enabled = v->get_bool();
    }
    if (auto v = b.if_contains("draining")) {
      if (!v->is_bool()) return invalidArgument("draining must be true or false");
      draining = v->get_bool();
    }
    Agent out = a.value;
    if (enabled != a.value.enabled || draining != a.value.draining) {
      KASM_ASSIGN_OR_RETURN(out, im.manager.setAgentAvailability(id, enabled, draining));
    }
    if (auto v = b.if_contains("overrides"); v && !v->is_null()) {
      KASM_ASSIGN_OR_RETURN(auto ov, fromJson<Agent>(json::serialize(json::object{{"overrides", *v}})));
      KASM_ASSIGN_OR_RETURN(out, im.manager.setAgentOverrides(id, ov.overrides));
    }
    KASM_ASSIGN_OR_RETURN(auto o, toObject(out));
    return rest::reply(200, o);
  }
  return methodNotAllowed(method, "/agents/{id}");
}

// ---- api keys, settings, licences, installation ----------------------------------------------

static RouteResult apiKeys(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  // API keys carry permissions of their own: only an admin hands them out.
  if (!call.principal.isAdmin()) return permissionDenied("only an admin manages api keys");
  if (call.params.empty()) {
    if (method == "GET") return listOf<ApiKey>(im, call, {});
    if (method == "POST") {
      KASM_ASSIGN_OR_RETURN(ApiKey k, patched(ApiKey{}, *call.body));
      if (k.permissions.empty()) return invalidArgument("permissions: name at least one");
      for (const auto& perm : k.permissions) {
        if (!permissions::isKnown(perm)) return invalidArgument("permissions: unknown permission '" + perm + "'");
      }
      const std::string secret = auth::generateToken(32);
      k.id = ApiKeyId::generate();
      k.key = auth::generateToken(12);
      k.secret_hash = auth::hashSecret(secret);
      k.created_at = im.clock.now();
      KASM_RETURN_IF_ERROR(k.validate());
      KASM_RETURN_IF_ERROR(im.repo.insert(k));
      KASM_ASSIGN_OR_RETURN(auto o, toObject(k));
      o["api_key"] = k.key;
      o["api_key_secret"] = secret;  // Shown once.
      return rest::reply(201, o);
    }
    return methodNotAllowed(method, "/api-keys");
  }
  const std::string& id = call.params[0];
  if (method == "GET") return getOne<ApiKey>(im, id);
  if (method == "DELETE") {
    KASM_RETURN_IF_ERROR(im.repo.remove<ApiKey>(id));
    return noContent();
  }
  return methodNotAllowed(method, "/api-keys/{id}");
}

static bool isSecretSetting(std::string_view key) {
  return key.find("key") != std::string_view::npos || key.find("secret") != std::string_view::npos ||
         key.find("password") != std::string_view::npos;
}

static RouteResult settings(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  KASM_RETURN_IF_ERROR(require(call.principal, permissions::kSettingsManage));
  if (call.params.empty()) {
    if (method != "GET") return methodNotAllowed(method, "/settings");
    return listOf<Setting>(im, call, {}, [](const Setting& s) { return !isSecretSetting(s.key); });
  }
  const std::string& key = call.params[0];
  if (isSecretSetting(key)) return permissionDenied("setting '" + key + "' is managed by the server");
  if (method == "GET") return getOne<Setting>(im, key);
  if (method == "PUT") {
    auto v = call.body->if_contains("value");
    if (!v || !v->is_string()) return invalidArgument("value must be a string");
    Setting s{key, std::string(v->get_string()), im.clock.now()};
    KASM_RETURN_IF_ERROR(s.validate());
    auto existing = im.repo.get<Setting>(key);
    if (existing.ok()) {
      KASM_RETURN_IF_ERROR(im.repo.update(s, existing->version));
    } else if (existing.error().code() == ErrorCode::kNotFound) {
      KASM_RETURN_IF_ERROR(im.repo.insert(s));
    } else {
      return existing.error();
    }
    KASM_ASSIGN_OR_RETURN(auto o, toObject(s));
    return rest::reply(200, o);
  }
  return methodNotAllowed(method, "/settings/{key}");
}

static Result<json::object> licenseStatusJson(RestApi::Impl& im) {
  KASM_ASSIGN_OR_RETURN(auto st, im.manager.licensing().status());
  json::object o;
  o["state"] = std::string(enumName(st.state));
  o["installation_id"] = st.installation_id;
  o["type"] = std::string(enumName(st.type));
  o["limit"] = st.limit;
  o["used"] = st.used;
  o["sessions_in_use"] = st.sessions_in_use;
  json::array features;
  for (const auto& f : st.features) features.emplace_back(f);
  o["features"] = std::move(features);
  o["valid_until"] = st.valid_until ? json::value(toUnixMillis(*st.valid_until)) : json::value(nullptr);
  o["days_left"] = st.days_left ? json::value(*st.days_left) : json::value(nullptr);
  o["message"] = st.message;
  json::array problems;
  for (const auto& pr : st.problems) problems.push_back(json::object{{"id", pr.id.str()}, {"message", pr.message}});
  o["problems"] = std::move(problems);
  return o;
}

static RouteResult licenses(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  KASM_RETURN_IF_ERROR(require(call.principal, permissions::kLicensesManage));
  auto& lic = im.manager.licensing();
  if (call.params.empty()) {
    if (method == "GET") {
      json::object out;
      KASM_ASSIGN_OR_RETURN(out["status"], licenseStatusJson(im));
      KASM_ASSIGN_OR_RETURN(auto list, lic.listLicenses());
      json::array items;
      for (const auto& l : list) {
        KASM_ASSIGN_OR_RETURN(auto o, toObject(l));
        items.push_back(std::move(o));
      }
      out["items"] = std::move(items);
      return rest::reply(200, out);
    }
    if (method == "POST") {
      auto text = call.body->if_contains("license");
      if (!text || !text->is_string()) return invalidArgument("license must be the licence text");
      KASM_ASSIGN_OR_RETURN(auto rec, lic.addLicense(std::string_view(text->get_string())));
      KASM_ASSIGN_OR_RETURN(auto o, toObject(rec));
      return rest::reply(201, o);
    }
    return methodNotAllowed(method, "/licenses");
  }
  if (method == "DELETE") {
    KASM_RETURN_IF_ERROR(lic.removeLicense(LicenseId(call.params[0])));
    return noContent();
  }
  return methodNotAllowed(method, "/licenses/{id}");
}

RouteResult RestApi::Impl::dispatch(const RouteCall& call0, std::string_view method,
                                    const std::vector<std::string>& segments) {
  RouteCall call = call0;
  call.params.assign(segments.begin() + 1, segments.end());
  const std::string& root = segments[0];
  if (root == "auth" && call.params.size() == 1) {
    if (call.params[0] == "logout" && method == "POST") return logout(call);
    if (call.params[0] == "me" && method == "GET") return me(call);
    return notFound("no such route");
  }
  if (root == "installation" && call.params.empty() && method == "GET") {
    KASM_ASSIGN_OR_RETURN(auto id, manager.licensing().installationId());
    return rest::reply(200, json::object{{"installation_id", id}, {"version", std::string(kasm::version())}});
  }
  const std::size_t max_params = root == "sessions" ? 2 : root == "groups" ? 3 : 1;
  if (call.params.size() > max_params) return notFound("no such route");
  if (root == "sessions") return sessions(*this, call, method);
  if (root == "workspaces") return workspaces(*this, call, method);
  if (root == "zones") return zones(*this, call, method);
  if (root == "agents") return agents(*this, call, method);
  if (root == "users") return users(*this, call, method);
  if (root == "groups") return groups(*this, call, method);
  if (root == "api-keys") return apiKeys(*this, call, method);
  if (root == "staging") return staging(*this, call, method);
  if (root == "settings") return settings(*this, call, method);
  if (root == "licenses") return licenses(*this, call, method);
  return notFound("no such route: /api/v1/" + root);
}

}  // namespace kasm::api
