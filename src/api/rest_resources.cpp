// REST API: routes over the installation's resources (workspaces, zones, agents, staging pools,
// settings, licences) and the dispatcher; sessions are in rest_sessions.cpp, users, groups and api
// keys in rest_users.cpp.

#include "api/authorization.hpp"
#include "api/rest_collections.hpp"
#include "kasm/license/licensing.hpp"
#include "kasm/license/text.hpp"
#include "kasm/version.hpp"

namespace kasm::api {

using namespace rest;

Result<json::object> RestApi::Impl::workspaceJson(const Workspace& w, const Principal& p) {
  KASM_ASSIGN_OR_RETURN(auto o, toObject(w));
  if (!p.can(permissions::kWorkspacesManage)) {
    // How a container is built is the administrators' business: the run config and exec hooks can
    // carry credentials, and volume sources are host paths.
    for (auto field : {"run_config_json", "exec_config", "volumes"}) o.erase(field);
  }
  return o;
}

Result<json::object> RestApi::Impl::stagingJson(const StagingConfig& c) {
  KASM_ASSIGN_OR_RETURN(auto o, toObject(c));
  std::string why;
  if (!c.enabled) {
    why = "disabled";
  } else if (auto allowed = manager.licensing().requireFeature(license::features::kStaging); !allowed.ok()) {
    why = allowed.error().message();
  }
  o["active"] = why.empty();
  o["inactive_reason"] = why.empty() ? json::value(nullptr) : json::value(why);
  return o;
}

// ---- workspaces, zones, staging, agents -------------------------------------------------------

static RouteResult workspaces(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  const auto& p = call.principal;
  const bool manager = p.can(permissions::kWorkspacesManage);
  auto save = [&](Workspace w) { return im.manager.upsertWorkspace(std::move(w)); };
  // Without workspaces:manage, a caller sees the enabled workspaces its user may launch (Kasm's
  // group assignment); the launch itself checks the same.
  std::optional<User> user;
  if (!manager && method == "GET" && p.user) {
    auto u = im.repo.get<User>(p.user->str());
    if (u.ok()) user = u->value;
  }
  auto visible = [&](const Workspace& w) {
    return manager || (w.enabled && user && detail::mayLaunch(*user, w, p.permissions));
  };
  if (call.params.empty()) {
    if (method == "GET") {
      if (manager) return listOf<Workspace>(im, call, {});
      return listOf<Workspace>(im, call, spi::Query().where("enabled", "1"),
                               std::function<bool(const Workspace&)>(visible));
    }
    KASM_RETURN_IF_ERROR(require(p, permissions::kWorkspacesManage));
    if (method == "POST") return writeOne<Workspace>(im, call, std::nullopt, save);
    return methodNotAllowed(method, "/workspaces");
  }
  const std::string& id = call.params[0];
  if (method == "GET") {
    KASM_ASSIGN_OR_RETURN(auto w, im.repo.get<Workspace>(id));
    if (!visible(w.value)) return notFound("workspace " + id + " does not exist");
    KASM_ASSIGN_OR_RETURN(auto o, im.workspaceJson(w.value, p));
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
  auto save = [&](StagingConfig c) -> Result<StagingConfig> {
    // A pool the licence would leave empty is refused with the reason, not stored to stay silent.
    if (c.enabled && c.desired > 0) {
      if (auto allowed = im.manager.licensing().requireFeature(license::features::kStaging); !allowed.ok()) {
        return failedPrecondition("staging pools need a licence with the 'staging' feature: " +
                                  allowed.error().message());
      }
    }
    return saveInRepo<StagingConfig, StagingConfigId>(im, std::move(c));
  };
  if (call.params.empty()) {
    if (method == "GET") return listOf<StagingConfig>(im, call, {});
    if (method == "POST") return writeOne<StagingConfig>(im, call, std::nullopt, save);
    return methodNotAllowed(method, "/staging");
  }
  const std::string& id = call.params[0];
  if (method == "GET") {
    KASM_ASSIGN_OR_RETURN(auto c, im.repo.get<StagingConfig>(id));
    KASM_ASSIGN_OR_RETURN(auto o, im.stagingJson(c.value));
    return rest::reply(200, o);
  }
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

// ---- settings, licences, installation --------------------------------------------------------

static RouteResult settings(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  KASM_RETURN_IF_ERROR(require(call.principal, permissions::kSettingsManage));
  if (call.params.empty()) {
    if (method != "GET") return methodNotAllowed(method, "/settings");
    return listOf<Setting>(im, call, {}, [](const Setting& s) { return !settings::isSecret(s.key); });
  }
  const std::string& key = call.params[0];
  if (settings::isSecret(key)) return permissionDenied("setting '" + key + "' is managed by the server");
  if (method == "GET") return getOne<Setting>(im, key);
  if (method == "PUT") {
    // The server's own state (installation id, licence counters, the clock-rollback guard) lives
    // in the same table but is not a setting: it can be read, never written through the API.
    if (settings::isServerManaged(key)) return permissionDenied("setting '" + key + "' is managed by the server");
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
  const std::size_t max_params = root == "sessions" || root == "groups" || root == "servers" ? 3
                                 : root == "shares" || root == "autoscale"                   ? 2
                                                                                             : 1;
  if (call.params.size() > max_params) return notFound("no such route");
  if (root == "sessions") return sessionsRoute(*this, call, method);
  if (root == "shares") return sharesRoute(*this, call, method);
  if (root == "workspaces") return workspaces(*this, call, method);
  if (root == "zones") return zones(*this, call, method);
  if (root == "agents") return agents(*this, call, method);
  if (root == "users") return usersRoute(*this, call, method);
  if (root == "groups") return groupsRoute(*this, call, method);
  if (root == "api-keys") return apiKeysRoute(*this, call, method);
  if (root == "staging") return staging(*this, call, method);
  if (root == "autoscale") return autoscaleRoute(*this, call, method);
  if (root == "managers") return managersRoute(*this, call, method);
  if (root == "servers") return serversRoute(*this, call, method);
  if (root == "server-pools") return serverPoolsRoute(*this, call, method);
  if (root == "settings") return settings(*this, call, method);
  if (root == "licenses") return licenses(*this, call, method);
  return notFound("no such route: /api/v1/" + root);
}

}  // namespace kasm::api
