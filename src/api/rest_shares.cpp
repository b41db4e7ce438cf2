// REST API: session sharing. The owner (or a sessions:manage principal) shares a session and says
// who may do what; anyone logged in joins by a share id. The rules are kasm::share::Sharing's.
//
//   GET/POST/DELETE /sessions/{id}/share          the share link (POST makes it, or returns it)
//   GET             /sessions/{id}/permissions     who else may open the session
//   PUT/DELETE      /sessions/{id}/permissions/{user_id}   {"access": "r" | "rw"}
//   POST            /shares/{share_id}/join        join; answers the viewer's URL

#include "api/authorization.hpp"
#include "api/rest_collections.hpp"
#include "kasm/share/sharing.hpp"

namespace kasm::api {

using namespace rest;

namespace {

Result<share::Sharing*> sharingOf(RestApi::Impl& im) {
  if (!im.options.sharing) return failedPrecondition("session sharing is not configured on this server");
  return im.options.sharing;
}

json::object permissionJson(const SessionPermission& p) {
  json::object o;
  o["user_id"] = p.user_id.str();
  o["username"] = p.username;
  o["access"] = std::string(enumName(p.access));
  o["granted_at"] = toUnixMillis(p.granted_at);
  return o;
}

json::object shareJson(share::Sharing& sharing, const Session& s) {
  json::object o;
  auto id = sharing.shareIdOf(s);
  o["session_id"] = s.id.str();
  o["share_id"] = id ? json::value(*id) : json::value(nullptr);
  o["expires_at"] =
      s.share && s.share->expires_at ? json::value(toUnixMillis(*s.share->expires_at)) : json::value(nullptr);
  json::array perms;
  for (const auto& p : s.permissions) perms.push_back(permissionJson(p));
  o["permissions"] = std::move(perms);
  return o;
}

Result<ShareAccess> accessOf(const json::object* body) {
  if (!body) return invalidArgument("a body {\"access\": \"r\" | \"rw\"} is required");
  auto a = body->if_contains("access");
  if (!a || !a->is_string()) return invalidArgument("access is required: \"r\" (watch) or \"rw\" (control)");
  auto parsed = enumFromName<ShareAccess>(a->get_string());
  if (!parsed) return invalidArgument("access must be \"r\" or \"rw\"");
  return *parsed;
}

}  // namespace

// /sessions/{id}/share and /sessions/{id}/permissions[/{user_id}], for a session the caller may
// manage (visibleSession in rest_sessions.cpp).
RouteResult rest::sessionShareRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method,
                                    const Session& s) {
  KASM_ASSIGN_OR_RETURN(share::Sharing * sharing, sharingOf(im));
  const std::string& what = call.params[1];
  if (what == "share") {
    if (call.params.size() != 2) return notFound("no such route");
    if (method == "GET") return rest::reply(200, shareJson(*sharing, s));
    if (method == "POST") {
      std::optional<TimePoint> expires;
      if (call.body) {
        if (auto e = call.body->if_contains("expires_at"); e && !e->is_null()) {
          if (!e->is_int64()) return invalidArgument("expires_at must be Unix milliseconds");
          expires = fromUnixMillis(e->get_int64());
        }
      }
      KASM_RETURN_IF_ERROR(sharing->createShare(s.id, expires));
      KASM_ASSIGN_OR_RETURN(auto now, im.manager.getSession(s.id));
      return rest::reply(200, shareJson(*sharing, now));
    }
    if (method == "DELETE") {
      KASM_RETURN_IF_ERROR(sharing->deleteShare(s.id));
      return noContent();
    }
    return methodNotAllowed(method, "/sessions/{id}/share");
  }
  // permissions
  if (call.params.size() == 2) {
    if (method != "GET") return methodNotAllowed(method, "/sessions/{id}/permissions");
    json::array perms;
    for (const auto& p : s.permissions) perms.push_back(permissionJson(p));
    return rest::reply(200, json::object{{"items", std::move(perms)}});
  }
  KASM_ASSIGN_OR_RETURN(auto user, UserId::parse(call.params[2], "user_id"));
  if (method == "PUT") {
    KASM_ASSIGN_OR_RETURN(auto access, accessOf(call.body));
    KASM_ASSIGN_OR_RETURN(auto granted, sharing->setPermission(s.id, user, access));
    return rest::reply(200, permissionJson(granted));
  }
  if (method == "DELETE") {
    KASM_RETURN_IF_ERROR(sharing->removePermission(s.id, user));
    return noContent();
  }
  return methodNotAllowed(method, "/sessions/{id}/permissions/{user_id}");
}

// POST /shares/{share_id}/join: the caller (a login, or an API key for its owner; a sessions:manage
// key may name another user in "user_id") joins the shared session.
RouteResult rest::sharesRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  KASM_ASSIGN_OR_RETURN(share::Sharing * sharing, sharingOf(im));
  if (call.params.size() != 2 || call.params[1] != "join") return notFound("no such route");
  if (method != "POST") return methodNotAllowed(method, "/shares/{share_id}/join");
  const auto& p = call.principal;
  UserId joiner;
  if (auto u = call.body ? call.body->if_contains("user_id") : nullptr; u && !u->is_null()) {
    if (!u->is_string()) return invalidArgument("user_id must be a string");
    KASM_ASSIGN_OR_RETURN(joiner, UserId::parse(u->get_string(), "user_id"));
    if (!p.is(joiner)) KASM_RETURN_IF_ERROR(require(p, permissions::kSessionsManage));
  } else {
    if (!p.user) return invalidArgument("user_id is required with an api key that belongs to no user");
    if (!p.mayActAsOwner(permissions::kSessionsLaunch) && !p.can(permissions::kSessionsManage)) {
      return permissionDenied("this api key needs 'sessions:launch' to join sessions for its owner");
    }
    joiner = *p.user;
  }
  KASM_ASSIGN_OR_RETURN(share::JoinResult joined, sharing->join(call.params[0], joiner));
  const Session& s = joined.session;
  const std::string token = im.signer.issue(s.id, joiner, im.options.session_token_ttl);
  const std::string base = im.options.session_path_prefix + s.id.str() + "/";
  json::object o;
  o["session_id"] = s.id.str();
  o["state"] = std::string(enumName(s.state));
  o["access"] = std::string(enumName(joined.access));
  o["url"] = base + "?token=" + token;
  o["ws_url"] = base + "websockify?token=" + token;
  o["chat_url"] = base + "kasm/chat?token=" + token;
  return rest::reply(200, o);
}

}  // namespace kasm::api
