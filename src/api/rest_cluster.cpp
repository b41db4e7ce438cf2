// REST API: the managers of the installation (/managers): who is alive, which zones each leads, and
// disabling one (it then leads nothing; kasm/cluster/membership.hpp). Needs agents:manage.

#include "api/rest_collections.hpp"

namespace kasm::api {

using namespace rest;

json::object rest::managerJson(RestApi::Impl& im, const ManagerNode& m) {
  auto encoded = toObject(m);
  json::object o = encoded.ok() ? std::move(*encoded) : json::object{{"id", m.id.str()}};
  // Beats come every 2 s and a zone's lease lasts 8 s: silent for 10 s, it leads nothing.
  const bool alive = im.clock.now() - m.heartbeat_at < std::chrono::seconds(10);
  o["alive"] = alive;
  if (!alive) o["leading"] = json::array();
  return o;
}

RouteResult rest::managersRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  KASM_RETURN_IF_ERROR(require(call.principal, permissions::kAgentsManage));
  if (call.params.empty()) {
    if (method == "GET") return listOf<ManagerNode>(im, call, {});
    return methodNotAllowed(method, "/managers");
  }
  const std::string& id = call.params[0];
  if (method == "GET") {
    KASM_ASSIGN_OR_RETURN(auto cur, im.repo.get<ManagerNode>(id));
    return reply(200, managerJson(im, cur.value));
  }
  if (method == "PATCH") {
    // Only `enabled` is an administrator's to change; the rest is the manager's own report.
    const auto* enabled = call.body->if_contains("enabled");
    if (!enabled || !enabled->is_bool() || call.body->size() != 1) {
      return invalidArgument("only {\"enabled\": true|false} may be changed on a manager");
    }
    KASM_ASSIGN_OR_RETURN(auto cur, im.repo.get<ManagerNode>(id));
    cur.value.enabled = enabled->as_bool();
    KASM_RETURN_IF_ERROR(im.repo.update(cur.value, cur.version));
    KASM_ASSIGN_OR_RETURN(auto o, toObject(cur.value));
    return reply(200, o);
  }
  if (method == "DELETE") {
    // A manager that is gone (no heartbeat for a minute) may be forgotten; a live one re-registers.
    KASM_ASSIGN_OR_RETURN(auto cur, im.repo.get<ManagerNode>(id));
    if (im.clock.now() - cur.value.heartbeat_at < std::chrono::minutes(1)) {
      return failedPrecondition("manager " + id + " is alive (it beat less than a minute ago); stop it first");
    }
    KASM_RETURN_IF_ERROR(im.repo.remove<ManagerNode>(id));
    return noContent();
  }
  return methodNotAllowed(method, "/managers/{id}");
}

}  // namespace kasm::api
