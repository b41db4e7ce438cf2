// REST API: autoscale configurations (/autoscale), the machines made for them and the decisions
// taken, each with its reason (kasm/autoscale/autoscaler.hpp). Needs agents:manage.

#include <algorithm>

#include "api/rest_collections.hpp"
#include "kasm/autoscale/autoscaler.hpp"

namespace kasm::api {

using namespace rest;

Result<json::object> RestApi::Impl::autoscaleJson(const AutoscaleConfig& c) {
  KASM_ASSIGN_OR_RETURN(auto o, toObject(c));
  o["provider_config_json"] = autoscale::redactProviderConfig(c.provider_config_json);
  if (options.autoscaler) {
    for (const auto& s : options.autoscaler->status()) {
      if (s.config_id != c.id) continue;
      json::object st{{"summary", s.summary}, {"error", s.error}, {"at", toUnixMillis(s.at)}};
      st["backoff_until"] = s.backoff_until ? json::value(toUnixMillis(*s.backoff_until)) : json::value(nullptr);
      o["status"] = std::move(st);
    }
  }
  return o;
}

namespace {

Result<AutoscaleConfig> saveConfig(RestApi::Impl& im, AutoscaleConfig c, std::string_view stored) {
  auto& as = *im.options.autoscaler;
  KASM_ASSIGN_OR_RETURN(auto zone, im.repo.get<Zone>(c.zone_id.str()));
  (void)zone;
  const auto names = as.providerNames();
  if (std::find(names.begin(), names.end(), c.provider) == names.end()) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    return invalidArgument("autoscale_config.provider '" + c.provider + "' is not registered (known: " + known + ")");
  }
  if (c.pool_id) {
    auto pool = im.repo.get<ServerPool>(c.pool_id->str());
    if (!pool.ok()) return invalidArgument("autoscale_config.pool_id names no server pool");
  }
  KASM_ASSIGN_OR_RETURN(c.provider_config_json, as.sealSettings(c.provider_config_json, stored));
  KASM_RETURN_IF_ERROR(as.checkSettings(c.provider, c.provider_config_json));
  return saveInRepo<AutoscaleConfig, AutoscaleConfigId>(im, std::move(c));
}

RouteResult decisionsOf(RestApi::Impl& im, const RouteCall& call, const std::string& id) {
  KASM_ASSIGN_OR_RETURN(auto rows, im.repo.list<AutoscaleDecision>(spi::Query().where("config_id", id)));
  KASM_ASSIGN_OR_RETURN(std::size_t limit, parseCount(call.queryValue("limit"), 100, "limit"));
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.value.at > b.value.at; });
  json::array items;
  for (std::size_t i = 0; i < rows.size() && i < std::min(limit, im.options.max_page); ++i) {
    KASM_ASSIGN_OR_RETURN(auto o, toObject(rows[i].value));
    items.push_back(std::move(o));
  }
  return reply(200, json::object{{"items", std::move(items)}, {"total", rows.size()}});
}

RouteResult machinesOf(RestApi::Impl& im, const std::string& id) {
  KASM_ASSIGN_OR_RETURN(auto rows, im.repo.list<AutoscaleVm>(spi::Query().where("config_id", id)));
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.value.created_at < b.value.created_at; });
  json::array items;
  for (const auto& r : rows) {
    KASM_ASSIGN_OR_RETURN(auto o, toObject(r.value));
    items.push_back(std::move(o));
  }
  return reply(200, json::object{{"items", std::move(items)}, {"total", rows.size()}});
}

}  // namespace

RouteResult rest::autoscaleRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  KASM_RETURN_IF_ERROR(require(call.principal, permissions::kAgentsManage));
  if (!im.options.autoscaler) return failedPrecondition("autoscaling is not enabled on this server");
  if (call.params.empty()) {
    if (method == "GET") return listOf<AutoscaleConfig>(im, call, {});
    if (method == "POST") {
      KASM_ASSIGN_OR_RETURN(AutoscaleConfig value, patched(AutoscaleConfig{}, *call.body));
      KASM_ASSIGN_OR_RETURN(auto saved, saveConfig(im, std::move(value), "{}"));
      KASM_ASSIGN_OR_RETURN(auto o, im.autoscaleJson(saved));
      return reply(201, o);
    }
    return methodNotAllowed(method, "/autoscale");
  }
  const std::string& id = call.params[0];
  if (call.params.size() == 2 && method == "GET") {
    KASM_RETURN_IF_ERROR(im.repo.get<AutoscaleConfig>(id));
    if (call.params[1] == "decisions") return decisionsOf(im, call, id);
    if (call.params[1] == "machines") return machinesOf(im, id);
  }
  if (call.params.size() != 1) return notFound("no such autoscale resource");
  if (method == "GET") {
    KASM_ASSIGN_OR_RETURN(auto c, im.repo.get<AutoscaleConfig>(id));
    KASM_ASSIGN_OR_RETURN(auto o, im.autoscaleJson(c.value));
    return reply(200, o);
  }
  if (method == "PUT" || method == "PATCH") {
    KASM_ASSIGN_OR_RETURN(auto existing, im.repo.get<AutoscaleConfig>(id));
    KASM_ASSIGN_OR_RETURN(AutoscaleConfig value, patched(existing.value, *call.body));
    value.id = existing.value.id;
    value.created_at = existing.value.created_at;
    KASM_ASSIGN_OR_RETURN(auto saved, saveConfig(im, std::move(value), existing.value.provider_config_json));
    KASM_ASSIGN_OR_RETURN(auto o, im.autoscaleJson(saved));
    return reply(200, o);
  }
  if (method == "DELETE") {
    KASM_ASSIGN_OR_RETURN(auto machines, im.repo.count<AutoscaleVm>(spi::Query().where("config_id", id)));
    if (machines > 0) {
      return failedPrecondition("autoscale configuration " + id + " still has " + std::to_string(machines) +
                                " machine(s); set its standby and min_instances to 0 and wait for them to go");
    }
    KASM_RETURN_IF_ERROR(im.repo.remove<AutoscaleConfig>(id));
    KASM_ASSIGN_OR_RETURN(auto decisions, im.repo.list<AutoscaleDecision>(spi::Query().where("config_id", id)));
    for (const auto& d : decisions) (void)im.repo.remove<AutoscaleDecision>(d.value.id.str());
    return noContent();
  }
  return methodNotAllowed(method, "/autoscale/{id}");
}

}  // namespace kasm::api
