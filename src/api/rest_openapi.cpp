// REST API: the OpenAPI 3.1 document. Entity schemas come from the model's field lists
// (jsonSchema<T>()), so the document cannot drift from what the API writes.

#include <tuple>

#include "api/rest_impl.hpp"
#include "kasm/model/json.hpp"
#include "kasm/version.hpp"

namespace kasm::api::rest {

namespace json = boost::json;

namespace {

json::object ref(std::string_view name) {
  return json::object{{"$ref", "#/components/schemas/" + std::string(name)}};
}

template <class T>
json::object entitySchema() {
  json::object s = json::parse(jsonSchema<T>()).as_object();
  // What the API never sends (see redact()).
  auto& props = s["properties"].as_object();
  for (auto field : {"password_hash", "secret_hash", "token_hash", "connection_password_sealed",
                     "connection_private_key_sealed", "connection_sealed", "registration_token_sealed", "launch_key"}) {
    props.erase(field);
  }
  s["required"] = json::array{"id"};
  return s;
}

json::object listSchema(std::string_view item) {
  json::object props;
  props["items"] = json::object{{"type", "array"}, {"items", ref(item)}};
  props["total"] = json::object{{"type", "integer"}};
  props["limit"] = json::object{{"type", "integer"}};
  props["offset"] = json::object{{"type", "integer"}};
  props["next"] = json::object{{"type", json::array{"string", "null"}}};
  return json::object{{"type", "object"},
                      {"required", json::array{"items", "total", "limit", "offset", "next"}},
                      {"properties", std::move(props)}};
}

struct Op {
  std::string method;
  std::string summary;
  // Needed to act on anything the route reaches (x-kasm-permission); empty: any authenticated
  // caller. Routes that also serve the caller's own things say so with x-kasm-owner-permission.
  std::string permission;
  int status = 200;
  json::object response;  // Schema; empty for 204.
  json::object request;   // Schema of the body; empty when none.
  bool is_list = false;
  int alt_status = 0;  // A second success status with the same body (202 for a started session).
};

json::object operation(const Op& op, bool has_id, std::string_view id_name = "id") {
  json::object o;
  o["summary"] = op.summary;
  if (!op.permission.empty()) o["x-kasm-permission"] = op.permission;
  json::array params;
  if (has_id) {
    params.push_back(json::object{
        {"name", id_name}, {"in", "path"}, {"required", true}, {"schema", json::object{{"type", "string"}}}});
  }
  if (op.is_list) {
    for (auto [name, type] :
         {std::pair{"limit", "integer"}, std::pair{"offset", "integer"}, std::pair{"after", "string"}}) {
      params.push_back(json::object{{"name", name}, {"in", "query"}, {"schema", json::object{{"type", type}}}});
    }
  }
  if (!params.empty()) o["parameters"] = std::move(params);
  if (!op.request.empty()) {
    o["requestBody"] = json::object{
        {"required", true}, {"content", json::object{{"application/json", json::object{{"schema", op.request}}}}}};
  }
  json::object responses;
  json::object ok{{"description", "success"}};
  if (!op.response.empty()) {
    ok["content"] = json::object{{"application/json", json::object{{"schema", op.response}}}};
  }
  if (op.alt_status != 0) responses[std::to_string(op.alt_status)] = ok;
  responses[std::to_string(op.status)] = std::move(ok);
  responses["default"] =
      json::object{{"description", "an error"},
                   {"content", json::object{{"application/json", json::object{{"schema", ref("Error")}}}}}};
  o["responses"] = std::move(responses);
  return o;
}

void addPath(json::object& paths, const std::string& path, const std::vector<Op>& ops, bool has_id,
             std::string_view id_name = "id") {
  json::object item;
  for (const auto& op : ops) {
    std::string m = op.method;
    std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::tolower(c); });
    item[m] = operation(op, has_id, id_name);
  }
  paths[path] = std::move(item);
}

// The usual five routes of a collection of `schema` under `path`.
void addCollection(json::object& paths, const std::string& path, std::string_view schema, std::string_view noun,
                   const std::string& read_perm, const std::string& write_perm, bool put = true) {
  addPath(paths, path,
          {{"GET", "List " + std::string(noun) + "s", read_perm, 200, listSchema(schema), {}, true},
           {"POST", "Create a " + std::string(noun), write_perm, 201, ref(schema), ref(schema)}},
          false);
  std::vector<Op> item_ops = {{"GET", "Get a " + std::string(noun), read_perm, 200, ref(schema)},
                              {"PATCH", "Change a " + std::string(noun) + " (JSON merge patch)", write_perm, 200,
                               ref(schema), json::object{{"type", "object"}}},
                              {"DELETE", "Delete a " + std::string(noun), write_perm, 204}};
  if (put) {
    item_ops.push_back(
        {"PUT", "Change a " + std::string(noun) + " (same as PATCH)", write_perm, 200, ref(schema), ref(schema)});
  }
  addPath(paths, path + "/{id}", item_ops, true);
}

}  // namespace

std::string buildOpenApi() {
  json::object schemas;
  schemas["Workspace"] = entitySchema<Workspace>();
  schemas["Zone"] = entitySchema<Zone>();
  schemas["Agent"] = entitySchema<Agent>();
  schemas["User"] = entitySchema<User>();
  schemas["Group"] = entitySchema<Group>();
  {
    json::object s = entitySchema<ApiKey>();
    auto& props = s["properties"].as_object();
    props["api_key"] = json::object{{"type", "string"}, {"description", "in the answer to POST only"}};
    props["api_key_secret"] = json::object{{"type", "string"}, {"description", "in the answer to POST only"}};
    schemas["ApiKey"] = std::move(s);
  }
  schemas["StagingConfig"] = entitySchema<StagingConfig>();
  schemas["StagingConfig"].as_object()["properties"].as_object()["active"] =
      json::object{{"type", "boolean"}, {"description", "false when the pool cannot fill (see inactive_reason)"}};
  schemas["StagingConfig"].as_object()["properties"].as_object()["inactive_reason"] =
      json::object{{"type", json::array{"string", "null"}}};
  {
    json::object srv = entitySchema<Server>();
    auto& props = srv["properties"].as_object();
    props["has_password"] = json::object{{"type", "boolean"}};
    props["has_private_key"] = json::object{{"type", "boolean"}};
    props["prompts_for_credentials"] =
        json::object{{"type", "boolean"}, {"description", "no stored credentials: users give theirs at launch"}};
    schemas["Server"] = std::move(srv);
    // Written, never read: the server's secrets (sealed at rest).
    json::object write = schemas["Server"].as_object();
    auto& wprops = write["properties"].as_object();
    for (auto field : {"has_password", "has_private_key", "prompts_for_credentials", "slots", "status", "status_reason",
                       "last_checked_at", "last_seen_at"}) {
      wprops.erase(field);
    }
    wprops["connection_password"] = json::object{{"type", json::array{"string", "null"}}, {"writeOnly", true}};
    wprops["connection_private_key"] = json::object{{"type", json::array{"string", "null"}}, {"writeOnly", true}};
    write.erase("required");
    schemas["ServerWrite"] = std::move(write);
  }
  schemas["ServerPool"] = entitySchema<ServerPool>();
  schemas["AutoscaleConfig"] = entitySchema<AutoscaleConfig>();
  schemas["AutoscaleConfig"].as_object()["properties"].as_object()["status"] = json::object{
      {"type", "object"},
      {"description", "The autoscaler's latest word: summary (why it did or did not act), error, backoff_until"}};
  schemas["AutoscaleVm"] = entitySchema<AutoscaleVm>();
  schemas["AutoscaleDecision"] = entitySchema<AutoscaleDecision>();
  {
    json::object s = entitySchema<ManagerNode>();
    s["properties"].as_object()["alive"] = json::object{
        {"type", "boolean"}, {"description", "heartbeat within 10 s; a manager that is not alive leads nothing"}};
    schemas["ManagerNode"] = std::move(s);
  }
  schemas["LicenseRecord"] = entitySchema<LicenseRecord>();
  schemas["SessionPermission"] = json::parse(jsonSchema<SessionPermission>()).as_object();
  {
    json::object s = json::parse(jsonSchema<Setting>()).as_object();
    s["required"] = json::array{"key", "value"};
    schemas["Setting"] = std::move(s);
  }
  {
    json::object s = entitySchema<Session>();
    auto& props = s["properties"].as_object();
    props.erase("upstream");
    props.erase("share");
    props["share_id"] = json::object{{"type", json::array{"string", "null"}},
                                     {"description", "the share link's id while the session is shared"}};
    props["protocol"] = json::object{{"type", "string"}};
    props["url"] = json::object{{"type", "string"}, {"description", "the session page, with an access token"}};
    props["ws_url"] =
        json::object{{"type", "string"}, {"description", "WebSocket path bridged to the session's VNC server"}};
    s["required"] = json::array{"id", "user_id", "workspace_id", "state"};
    schemas["Session"] = std::move(s);
  }
  schemas["Error"] = json::object{{"type", "object"},
                                  {"required", json::array{"error_message", "code"}},
                                  {"properties", json::object{{"error_message", json::object{{"type", "string"}}},
                                                              {"code", json::object{{"type", "string"}}}}}};
  schemas["Me"] = json::object{
      {"type", "object"},
      {"required", json::array{"user", "permissions"}},
      {"properties",
       json::object{{"user", ref("User")},
                    {"permissions", json::object{{"type", "array"}, {"items", json::object{{"type", "string"}}}}},
                    {"csrf_token", json::object{{"type", "string"}}},
                    {"expires_at", json::object{{"type", "integer"}}}}}};
  schemas["Login"] = json::object{{"type", "object"},
                                  {"required", json::array{"username", "password"}},
                                  {"properties", json::object{{"username", json::object{{"type", "string"}}},
                                                              {"password", json::object{{"type", "string"}}}}}};
  schemas["NewSession"] = json::object{
      {"type", "object"},
      {"required", json::array{"workspace_id"}},
      {"properties",
       json::object{
           {"workspace_id", json::object{{"type", "string"}}},
           {"zone_id", json::object{{"type", "string"}}},
           {"user_id", json::object{{"type", "string"}}},
           {"connection_username", json::object{{"type", "string"}}},
           {"connection_password", json::object{{"type", "string"}}},
           {"idempotency_key",
            json::object{{"type", "string"},
                         {"maxLength", 255},
                         {"description",
                          "As the Idempotency-Key header; when both are sent they must be equal (400 otherwise)"}}},
           {"persistent_profile_mode",
            json::object{{"type", "string"},
                         {"enum", json::array{"", "Enabled", "Disabled", "Reset"}},
                         {"description", "Reset: the user's own profile is removed, then mounted empty"}}}}}};
  {
    // DELETE /users/{id}?delete_profiles=true answers what was removed, and what was not and why.
    const json::object string_type{{"type", "string"}};
    json::object entry{{"type", "object"},
                       {"required", json::array{"workspace_id", "workspace", "profile", "agent_id"}},
                       {"properties", json::object{{"workspace_id", string_type},
                                                   {"workspace", string_type},
                                                   {"profile", string_type},
                                                   {"agent_id", json::object{{"type", json::array{"string", "null"}}}},
                                                   {"error", string_type}}}};
    json::object list{{"type", "array"}, {"items", ref("ProfileRemovalEntry")}};
    schemas["ProfileRemovalEntry"] = std::move(entry);
    schemas["ProfileRemoval"] =
        json::object{{"type", "object"},
                     {"required", json::array{"removed", "failed"}},
                     {"properties", json::object{{"user_id", string_type}, {"removed", list}, {"failed", list}}}};
  }
  schemas["AgentRegistration"] =
      json::object{{"type", "object"},
                   {"required", json::array{"agent", "token"}},
                   {"properties", json::object{{"agent", ref("Agent")}, {"token", json::object{{"type", "string"}}}}}};
  schemas["Installation"] =
      json::object{{"type", "object"},
                   {"required", json::array{"installation_id", "version"}},
                   {"properties", json::object{{"installation_id", json::object{{"type", "string"}}},
                                               {"version", json::object{{"type", "string"}}}}}};
  schemas["LicenseStatus"] = json::object{
      {"type", "object"},
      {"required", json::array{"state", "limit", "used", "sessions_in_use", "features", "message"}},
      {"properties",
       json::object{{"state", json::object{{"type", "string"}}},
                    {"installation_id", json::object{{"type", "string"}}},
                    {"type", json::object{{"type", "string"}}},
                    {"limit", json::object{{"type", "integer"}}},
                    {"used", json::object{{"type", "integer"}}},
                    {"sessions_in_use", json::object{{"type", "integer"}}},
                    {"features", json::object{{"type", "array"}, {"items", json::object{{"type", "string"}}}}},
                    {"valid_until", json::object{{"type", json::array{"integer", "null"}}}},
                    {"days_left", json::object{{"type", json::array{"integer", "null"}}}},
                    {"message", json::object{{"type", "string"}}},
                    {"problems", json::object{{"type", "array"}}}}}};
  schemas["Licenses"] = json::object{
      {"type", "object"},
      {"required", json::array{"status", "items"}},
      {"properties", json::object{{"status", ref("LicenseStatus")},
                                  {"items", json::object{{"type", "array"}, {"items", ref("LicenseRecord")}}}}}};

  json::object paths;
  const std::string p = "/api/v1";
  addPath(paths, p + "/auth/login",
          {{"POST", "Log in; sets the HttpOnly login cookie", "", 200, ref("Me"), ref("Login")}}, false);
  addPath(paths, p + "/auth/logout", {{"POST", "Log out every browser of this user", "", 204}}, false);
  addPath(paths, p + "/auth/me", {{"GET", "Who is logged in, with the CSRF token", "", 200, ref("Me")}}, false);
  addPath(paths, p + "/installation", {{"GET", "Installation id and version", "", 200, ref("Installation")}}, false);
  addCollection(paths, p + "/workspaces", "Workspace", "workspace", "", "workspaces:manage");
  addCollection(paths, p + "/zones", "Zone", "zone", "", "agents:manage");
  addCollection(paths, p + "/staging", "StagingConfig", "staging pool", "workspaces:manage", "workspaces:manage");
  addPath(paths, p + "/servers",
          {{"GET", "List fixed servers (RDP, VNC, SSH, KasmVNC)", "agents:manage", 200, listSchema("Server"), {}, true},
           {"POST", "Add a fixed server; secrets are sealed and never returned", "agents:manage", 201, ref("Server"),
            ref("ServerWrite")}},
          false);
  addPath(paths, p + "/servers/{id}",
          {{"GET", "Get a fixed server", "agents:manage", 200, ref("Server")},
           {"PATCH", "Change a fixed server (merge patch; disabled = drain)", "agents:manage", 200, ref("Server"),
            ref("ServerWrite")},
           {"PUT", "Change a fixed server (same as PATCH)", "agents:manage", 200, ref("Server"), ref("ServerWrite")},
           {"DELETE", "Remove a fixed server that serves no session", "agents:manage", 204}},
          true);
  addPath(paths, p + "/servers/{id}/assigned-users",
          {{"POST", "Assign a user to the server (Kasm's assign_user_server)", "agents:manage", 200, ref("Server"),
            json::object{{"type", "object"},
                         {"required", json::array{"user_id"}},
                         {"properties", json::object{{"user_id", json::object{{"type", "string"}}}}}}}},
          true);
  addPath(paths, p + "/servers/{id}/assigned-users/{user_id}",
          {{"DELETE", "Unassign the user from the server", "agents:manage", 204}}, true);
  paths[p + "/servers/{id}/assigned-users/{user_id}"].as_object()["parameters"] = json::array{json::object{
      {"name", "user_id"}, {"in", "path"}, {"required", true}, {"schema", json::object{{"type", "string"}}}}};
  addCollection(paths, p + "/server-pools", "ServerPool", "server pool", "agents:manage", "agents:manage");
  addCollection(paths, p + "/autoscale", "AutoscaleConfig", "autoscale configuration", "agents:manage",
                "agents:manage");
  addPath(paths, p + "/autoscale/{id}/decisions",
          {{"GET", "The configuration's decisions, newest first, each with its reason", "agents:manage", 200,
            listSchema("AutoscaleDecision")}},
          true);
  addPath(paths, p + "/managers",
          {{"GET",
            "List the managers (servers) of the installation and the zones each leads",
            "agents:manage",
            200,
            listSchema("ManagerNode"),
            {},
            true}},
          false);
  addPath(paths, p + "/managers/{id}",
          {{"GET", "Get a manager", "agents:manage", 200, ref("ManagerNode")},
           {"PATCH", "Enable or disable a manager ({\"enabled\": false}: it leads no zone)", "agents:manage", 200,
            ref("ManagerNode"), json::object{{"type", "object"}}},
           {"DELETE", "Forget a manager that is gone (no heartbeat for a minute)", "agents:manage", 204}},
          true);
  addPath(paths, p + "/autoscale/{id}/machines",
          {{"GET", "The machines made for the configuration, with their phase and why", "agents:manage", 200,
            listSchema("AutoscaleVm")}},
          true);
  addCollection(paths, p + "/users", "User", "user", "users:manage", "users:manage");
  {
    json::object del = operation({"DELETE",
                                  "Delete a user and end their sessions; with delete_profiles=true also their per-user "
                                  "persistent profiles on every agent (200 with what was and was not removed)",
                                  "users:manage", 200, ref("ProfileRemoval")},
                                 true);
    del["responses"].as_object()["204"] = json::object{{"description", "deleted (without delete_profiles)"}};
    del["parameters"].as_array().push_back(
        json::object{{"name", "delete_profiles"}, {"in", "query"}, {"schema", json::object{{"type", "boolean"}}}});
    paths[p + "/users/{id}"].as_object()["delete"] = std::move(del);
  }
  addCollection(paths, p + "/groups", "Group", "group", "users:manage", "admin");
  addPath(paths, p + "/groups/{id}/users/{user_id}",
          {{"POST", "Add a user to a group whose permissions the caller holds", "users:manage", 204},
           {"DELETE", "Remove a user from a group", "users:manage", 204}},
          true);
  paths[p + "/groups/{id}/users/{user_id}"].as_object()["parameters"] = json::array{json::object{
      {"name", "user_id"}, {"in", "path"}, {"required", true}, {"schema", json::object{{"type", "string"}}}}};
  addPath(paths, p + "/agents",
          {{"GET", "List agents", "agents:manage", 200, listSchema("Agent"), {}, true},
           {"POST", "Register an agent; the token is shown once", "agents:manage", 201, ref("AgentRegistration"),
            ref("Agent")}},
          false);
  addPath(paths, p + "/agents/{id}",
          {{"GET", "Get an agent", "agents:manage", 200, ref("Agent")},
           {"PATCH", "Enable, disable, drain or override an agent", "agents:manage", 200, ref("Agent"),
            json::object{{"type", "object"}}}},
          true);
  addPath(paths, p + "/sessions",
          {{"GET",
            "List own sessions (all=true: everyone's, with sessions:manage)",
            "sessions:manage",
            200,
            listSchema("Session"),
            {},
            true},
           {"POST", "Start a session (201 running, 202 starting, 200 a replay of an earlier launch)", "sessions:launch",
            201, ref("Session"), ref("NewSession"), false, 202}},
          false);
  {
    // Idempotent launches: a retry with the key of a launch that made a session answers that session.
    auto& post = paths[p + "/sessions"].as_object()["post"].as_object();
    post["parameters"] = json::array{
        json::object{{"name", "Idempotency-Key"},
                     {"in", "header"},
                     {"required", false},
                     {"description",
                      "Makes the launch idempotent per user: a launch with the key of an earlier one starts "
                      "nothing and answers 200 with that session as it is now (any state). At most 255 "
                      "printable ASCII characters; the same key with another workspace is a 409."},
                     {"schema", json::object{{"type", "string"}, {"maxLength", 255}}}}};
    auto& responses = post["responses"].as_object();
    json::object replay = responses["201"].as_object();
    replay["description"] = "a replay: the session an earlier launch with this Idempotency-Key made";
    replay["headers"] =
        json::object{{"Idempotent-Replayed",
                      json::object{{"schema", json::object{{"type", "string"}, {"enum", json::array{"true"}}}}}}};
    responses["200"] = std::move(replay);
  }
  addPath(paths, p + "/sessions/{id}",
          {{"GET", "Get a session", "sessions:manage", 200, ref("Session")},
           {"DELETE", "Delete a session", "sessions:manage", 200, ref("Session")}},
          true);
  for (auto action : {"keepalive", "pause", "resume", "stop"}) {
    addPath(paths, p + "/sessions/{id}/" + action,
            {{"POST", std::string("Session action: ") + action, "sessions:manage", 200, ref("Session")}}, true);
  }
  // Sharing: the owner (or sessions:manage) shares and says who may do what; anyone joins by id.
  const json::object share_schema = {{"type", "object"}};
  addPath(paths, p + "/sessions/{id}/share",
          {{"GET", "The session's share link and who it is shared with", "sessions:manage", 200, share_schema},
           {"POST", "Share the session (or get its link); body {expires_at?}", "sessions:manage", 200, share_schema,
            json::object{{"type", "object"}}},
           {"DELETE", "Revoke the share link and everyone who joined by it", "sessions:manage", 204}},
          true);
  addPath(paths, p + "/sessions/{id}/permissions",
          {{"GET", "Who else may open the session, and how (r: watch, rw: control)", "sessions:manage", 200,
            listSchema("SessionPermission")}},
          true);
  addPath(
      paths, p + "/sessions/{id}/permissions/{user_id}",
      {{"PUT", "Give a user access r or rw", "sessions:manage", 200, ref("SessionPermission"),
        json::object{{"type", "object"},
                     {"properties",
                      json::object{{"access", json::object{{"type", "string"}, {"enum", json::array{"r", "rw"}}}}}}}},
       {"DELETE", "Take a user's access away (their connections close at once)", "sessions:manage", 204}},
      true);
  paths[p + "/sessions/{id}/permissions/{user_id}"].as_object()["parameters"] = json::array{json::object{
      {"name", "user_id"}, {"in", "path"}, {"required", true}, {"schema", json::object{{"type", "string"}}}}};
  addPath(paths, p + "/shares/{share_id}/join",
          {{"POST", "Join a shared session; answers the viewer's url, ws_url and chat_url", "sessions:manage", 200,
            json::object{{"type", "object"}}, json::object{{"type", "object"}}}},
          true, "share_id");
  // One's own things: a login needs nothing more, an API key acting for its owner the permission
  // named here (a key acts within its own permission set).
  for (const auto& [path, method, owner] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"/sessions", "get", "sessions:launch"},
           {"/sessions/{id}", "get", "sessions:launch"},
           {"/sessions/{id}", "delete", "sessions:launch"},
           {"/sessions/{id}/keepalive", "post", "sessions:launch"},
           {"/sessions/{id}/pause", "post", "sessions:launch"},
           {"/sessions/{id}/resume", "post", "sessions:launch"},
           {"/sessions/{id}/stop", "post", "sessions:launch"},
           {"/sessions/{id}/share", "get", "sessions:launch"},
           {"/sessions/{id}/share", "post", "sessions:launch"},
           {"/sessions/{id}/share", "delete", "sessions:launch"},
           {"/sessions/{id}/permissions", "get", "sessions:launch"},
           {"/sessions/{id}/permissions/{user_id}", "put", "sessions:launch"},
           {"/sessions/{id}/permissions/{user_id}", "delete", "sessions:launch"},
           {"/shares/{share_id}/join", "post", "sessions:launch"},
           {"/users/{id}", "get", ""},
           {"/users/{id}", "patch", "users:manage"},
           {"/users/{id}", "put", "users:manage"}}) {
    paths[p + path].as_object()[method].as_object()["x-kasm-owner-permission"] = owner;
  }
  addPath(paths, p + "/api-keys",
          {{"GET", "List api keys", "admin", 200, listSchema("ApiKey"), {}, true},
           {"POST", "Create an api key; api_key_secret is shown once", "admin", 201, ref("ApiKey"), ref("ApiKey")}},
          false);
  addPath(paths, p + "/api-keys/{id}",
          {{"GET", "Get an api key", "admin", 200, ref("ApiKey")}, {"DELETE", "Delete an api key", "admin", 204}},
          true);
  addPath(paths, p + "/settings", {{"GET", "List settings", "settings:manage", 200, listSchema("Setting"), {}, true}},
          false);
  addPath(
      paths, p + "/settings/{key}",
      {{"GET", "Get a setting", "settings:manage", 200, ref("Setting")},
       {"PUT", "Set a setting", "settings:manage", 200, ref("Setting"),
        json::object{{"type", "object"}, {"properties", json::object{{"value", json::object{{"type", "string"}}}}}}}},
      true, "key");
  addPath(
      paths, p + "/licenses",
      {{"GET", "Licence status and licences", "licenses:manage", 200, ref("Licenses")},
       {"POST", "Add a licence (armoured text in 'license')", "licenses:manage", 201, ref("LicenseRecord"),
        json::object{{"type", "object"}, {"properties", json::object{{"license", json::object{{"type", "string"}}}}}}}},
      false);
  addPath(paths, p + "/licenses/{id}", {{"DELETE", "Remove a licence", "licenses:manage", 204}}, true);

  json::object doc;
  doc["openapi"] = "3.1.0";
  doc["info"] = json::object{{"title", "kasm REST API"}, {"version", std::string(kasm::version())}};
  doc["components"] =
      json::object{{"schemas", std::move(schemas)},
                   {"securitySchemes",
                    json::object{{"cookie", json::object{{"type", "apiKey"}, {"in", "cookie"}, {"name", "kasm_auth"}}},
                                 {"apiKey", json::object{{"type", "http"},
                                                         {"scheme", "bearer"},
                                                         {"description", "Bearer <api_key>:<api_key_secret>"}}}}}};
  doc["security"] = json::array{json::object{{"cookie", json::array{}}}, json::object{{"apiKey", json::array{}}}};
  doc["paths"] = std::move(paths);
  return json::serialize(doc);
}

}  // namespace kasm::api::rest
