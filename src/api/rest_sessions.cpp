// REST API: sessions (launch, list, get, delete, keepalive, pause, resume, stop).

#include "api/authorization.hpp"
#include "api/rest_collections.hpp"
#include "api/session_start.hpp"
#include "kasm/share/sharing.hpp"

namespace kasm::api {

using namespace rest;

Result<json::object> RestApi::Impl::sessionJson(const Session& s, const Principal& p, ProtocolCache* protocols) {
  KASM_ASSIGN_OR_RETURN(auto o, toObject(s));
  o.erase("upstream");    // Where the container listens is the proxy's business.
  o.erase("launch_key");  // The stored hash of an idempotency key: the manager's business.
  // The share link in clear (for those who may see the session), never its sealed form or hash.
  o.erase("share");
  if (options.sharing) {
    auto share_id = options.sharing->shareIdOf(s);
    o["share_id"] = share_id ? json::value(*share_id) : json::value(nullptr);
  }
  // The protocol comes from the workspace: read once per workspace when a list shares a cache.
  auto lookup = [&]() -> std::optional<SessionProtocol> {
    if (s.server_id) {
      auto server = repo.get<Server>(s.server_id->str());
      if (!server.ok()) return std::nullopt;
      return server->value.protocol();
    }
    auto ws = repo.get<Workspace>(s.workspace_id.str());
    if (!ws.ok()) return std::nullopt;
    return ws->value.protocol;
  };
  std::optional<SessionProtocol> protocol;
  if (protocols && !s.server_id) {  // A pool's servers may differ: those are read one by one.
    auto [it, fresh] = protocols->try_emplace(s.workspace_id);
    if (fresh) it->second = lookup();
    protocol = it->second;
  } else {
    protocol = lookup();
  }
  if (protocol) o["protocol"] = std::string(enumName(*protocol));
  // Access tokens are interactive access: only for the owner, and never for a read-only key.
  const bool interactive = p.is(s.user_id) && !p.read_only && p.mayActAsOwner(permissions::kSessionsLaunch);
  if (interactive && (s.state == SessionState::kRunning || s.state == SessionState::kPaused)) {
    const std::string token = signer.issue(s.id, s.user_id, options.session_token_ttl);
    const std::string base = options.session_path_prefix + s.id.str() + "/";
    o["url"] = base + "?token=" + token;
    o["ws_url"] = base + "websockify?token=" + token;
  }
  return o;
}

namespace {

Result<Versioned<Session>> visibleSession(RestApi::Impl& im, const RouteCall& call, std::string_view id) {
  auto s = im.repo.get<Session>(id);
  if (!s.ok()) return s.error();
  const auto& p = call.principal;
  if (p.can(permissions::kSessionsManage)) return s;
  if (p.is(s->value.user_id)) {
    if (!p.mayActAsOwner(permissions::kSessionsLaunch)) {
      return permissionDenied("this api key needs 'sessions:launch' for its owner's sessions");
    }
    return s;
  }
  // Not "forbidden": whether someone else's session exists is not for this caller to learn.
  return notFound("session " + std::string(id) + " does not exist");
}

RouteResult launch(RestApi::Impl& im, const RouteCall& call) {
  const auto& p = call.principal;
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
  const std::string unknown = "workspace " + req.workspace_id.str() + " does not exist or is disabled";
  auto ws_row = im.repo.get<Workspace>(req.workspace_id.str());
  if (!ws_row.ok() || (!ws_row->value.enabled && !p.can(permissions::kWorkspacesManage))) return notFound(unknown);
  auto user = im.repo.get<User>(req.user_id.str());
  if (!user.ok()) {
    if (user.error().code() == ErrorCode::kNotFound) return notFound("user " + req.user_id.str() + " does not exist");
    return user.error();
  }
  // Kasm's model: a user launches the workspaces assigned to one of their groups.
  if (!detail::mayLaunch(user->value, ws_row->value, p.permissions)) return notFound(unknown);
  if (ws_row->value.type == WorkspaceType::kLink) {
    // A link opens its URL; no session is made.
    return rest::reply(
        200, json::object{{"link", true}, {"url", ws_row->value.link_url}, {"workspace_id", ws_row->value.id.str()}});
  }
  for (auto [field, slot] : {std::pair{"connection_username", &req.connection_username},
                             std::pair{"connection_password", &req.connection_password},
                             std::pair{"persistent_profile_mode", &req.persistent_profile_mode}}) {
    if (auto v = b.if_contains(field); v && !v->is_null()) {
      if (!v->is_string() || v->get_string().size() > 1024)
        return invalidArgument(std::string(field) + " must be a short string");
      *slot = std::string(v->get_string());
    }
  }
  KASM_ASSIGN_OR_RETURN(req.idempotency_key, detail::idempotencyKeyOf(call.request.idempotency_key, b));
  bool replayed = false;
  KASM_ASSIGN_OR_RETURN(Session s, detail::startSession(im.manager, im.options.background, std::move(req), &replayed));
  KASM_ASSIGN_OR_RETURN(auto o, im.sessionJson(s, p));
  // A replay (the idempotency key names an earlier launch) answers 200 with that session as it is
  // now, whatever its state, and says so in a header.
  auto out = rest::reply(replayed ? 200 : s.state == SessionState::kRunning ? 201 : 202, o);
  if (replayed) out.headers.emplace_back("Idempotent-Replayed", "true");
  return out;
}

}  // namespace

RouteResult rest::sessionsRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  const auto& p = call.principal;
  if (call.params.empty()) {
    if (method == "GET") {
      spi::Query q;
      const bool all = call.queryValue("all") == "true";
      if (all) {
        KASM_RETURN_IF_ERROR(require(p, permissions::kSessionsManage));
      } else {
        if (!p.user) return invalidArgument("this api key belongs to no user; add all=true");
        if (!p.mayActAsOwner(permissions::kSessionsLaunch) && !p.can(permissions::kSessionsManage)) {
          return permissionDenied("this api key needs 'sessions:launch' for its owner's sessions");
        }
        q.where("user_id", p.user->str());
      }
      // Ended sessions are history; the list shows live ones unless a state is asked for.
      std::function<bool(const Session&)> live = [](const Session& s) -> bool {
        return s.state != SessionState::kDestroyed && s.state != SessionState::kFailed;
      };
      return listOf<Session>(im, call, std::move(q), call.queryValue("state").empty() ? live : nullptr);
    }
    if (method == "POST") return launch(im, call);
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
  if (call.params[1] == "share" || call.params[1] == "permissions") {
    return sessionShareRoute(im, call, method, s.value);
  }
  if (call.params.size() > 2) return notFound("no such route");
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

}  // namespace kasm::api
