// REST API: fixed servers and server pools (agents:manage). Secrets are written as
// connection_password / connection_private_key and never read back: a server's JSON says only
// whether it has them.

#include "api/authorization.hpp"
#include "api/rest_collections.hpp"

namespace kasm::api {

using namespace rest;

namespace {

// What a server's JSON shows: the row without its sealed secrets, with has_* flags instead.
Result<json::object> serverJson(const Server& s) {
  KASM_ASSIGN_OR_RETURN(auto o, toObject(s));
  o["has_password"] = !s.connection_password_sealed.empty();
  o["has_private_key"] = !s.connection_private_key_sealed.empty();
  o["prompts_for_credentials"] = s.promptsForCredentials();
  return o;
}

// Takes the secrets out of a write's body (they are not model fields) and reads them.
Result<ServerSecrets> takeSecrets(json::object& body) {
  ServerSecrets out;
  for (auto [field, slot] :
       {std::pair{"connection_password", &out.password}, std::pair{"connection_private_key", &out.private_key}}) {
    auto it = body.find(field);
    if (it == body.end()) continue;
    if (it->value().is_null()) {
      *slot = std::string();
    } else if (it->value().is_string()) {
      if (it->value().as_string().size() > 64 * 1024) return invalidArgument(std::string(field) + " is too long");
      *slot = std::string(it->value().as_string());
    } else {
      return invalidArgument(std::string(field) + " must be a string");
    }
    body.erase(it);
  }
  // Bookkeeping the server keeps for itself.
  for (auto field : {"slots", "status", "status_reason", "last_checked_at", "last_seen_at"}) body.erase(field);
  return out;
}

RouteResult writeServer(RestApi::Impl& im, const RouteCall& call, std::optional<std::string_view> id) {
  json::object body = *call.body;
  KASM_ASSIGN_OR_RETURN(ServerSecrets secrets, takeSecrets(body));
  Server base{};
  if (id) {
    KASM_ASSIGN_OR_RETURN(auto existing, im.repo.get<Server>(*id));
    base = existing.value;
  }
  KASM_ASSIGN_OR_RETURN(Server value, patched(base, body));
  if (id) value.id = ServerId(std::string(*id));
  KASM_ASSIGN_OR_RETURN(Server saved, im.manager.upsertServer(std::move(value), secrets));
  KASM_ASSIGN_OR_RETURN(auto o, serverJson(saved));
  return rest::reply(id ? 200 : 201, o);
}

}  // namespace

RouteResult rest::serversRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  KASM_RETURN_IF_ERROR(require(call.principal, permissions::kAgentsManage));
  if (call.params.empty()) {
    if (method == "GET") {
      spi::Query q;
      for (auto column : {"zone_id", "pool_id"}) {
        if (auto v = call.queryValue(column); !v.empty()) q.where(column, std::string(v));
      }
      KASM_ASSIGN_OR_RETURN(auto rows, im.repo.list<Server>(q));
      json::array items;
      for (const auto& r : rows) {
        KASM_ASSIGN_OR_RETURN(auto o, serverJson(r.value));
        items.push_back(std::move(o));
      }
      json::object out;
      out["total"] = items.size();
      out["limit"] = items.size();
      out["offset"] = 0;
      out["next"] = nullptr;
      out["items"] = std::move(items);
      return rest::reply(200, out);
    }
    if (method == "POST") return writeServer(im, call, std::nullopt);
    return methodNotAllowed(method, "/servers");
  }
  const std::string& id = call.params[0];
  // Kasm's assigned users: POST /servers/{id}/assigned-users {"user_id"}, DELETE .../{user_id}.
  if (call.params.size() >= 2) {
    if (call.params[1] != "assigned-users") return notFound("no such route");
    if (method == "POST" && call.params.size() == 2) {
      const auto* user = call.body->if_contains("user_id");
      if (!user || !user->is_string()) return invalidArgument("user_id (a string) is required");
      KASM_ASSIGN_OR_RETURN(auto s, im.manager.assignUserServer(ServerId(id), UserId(std::string(user->as_string()))));
      KASM_ASSIGN_OR_RETURN(auto o, serverJson(s));
      return rest::reply(200, o);
    }
    if (method == "DELETE" && call.params.size() == 3) {
      KASM_ASSIGN_OR_RETURN(auto cur, im.repo.get<Server>(id));
      if (!cur.value.assigned_user_id || cur.value.assigned_user_id->str() != call.params[2]) {
        return notFound("user " + call.params[2] + " is not assigned to server " + id);
      }
      KASM_RETURN_IF_ERROR(im.manager.assignUserServer(ServerId(id), std::nullopt));
      return noContent();
    }
    return methodNotAllowed(method, "/servers/{id}/assigned-users");
  }
  if (method == "GET") {
    KASM_ASSIGN_OR_RETURN(auto s, im.repo.get<Server>(id));
    KASM_ASSIGN_OR_RETURN(auto o, serverJson(s.value));
    return rest::reply(200, o);
  }
  if (method == "PUT" || method == "PATCH") return writeServer(im, call, id);
  if (method == "DELETE") {
    KASM_RETURN_IF_ERROR(im.manager.removeServer(ServerId(id)));
    return noContent();
  }
  return methodNotAllowed(method, "/servers/{id}");
}

RouteResult rest::serverPoolsRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  KASM_RETURN_IF_ERROR(require(call.principal, permissions::kAgentsManage));
  auto save = [&](ServerPool p) { return im.manager.upsertServerPool(std::move(p)); };
  if (call.params.empty()) {
    if (method == "GET") return listOf<ServerPool>(im, call, {});
    if (method == "POST") return writeOne<ServerPool>(im, call, std::nullopt, save);
    return methodNotAllowed(method, "/server-pools");
  }
  const std::string& id = call.params[0];
  if (method == "GET") return getOne<ServerPool>(im, id);
  if (method == "PUT" || method == "PATCH") {
    return writeOne<ServerPool>(im, call, id, [&](ServerPool p) {
      p.id = ServerPoolId(id);
      return save(std::move(p));
    });
  }
  if (method == "DELETE") {
    KASM_RETURN_IF_ERROR(im.manager.removeServerPool(ServerPoolId(id)));
    return noContent();
  }
  return methodNotAllowed(method, "/server-pools/{id}");
}

}  // namespace kasm::api
