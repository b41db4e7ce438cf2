// The authorization matrix: every REST route of the OpenAPI document and every developer API verb,
// called by every kind of principal (anonymous, a user, another user, an administrator, an API key
// of each permission, a read-only key, an expired key, a key whose owner is disabled), each call on
// a fresh installation, with the status the documented rules predict.
//
// The expectation is computed from the document itself (`x-kasm-permission`,
// `x-kasm-owner-permission`, the success statuses) and from DeveloperApi::verbs(), never written per
// cell; what this file adds per route is only how to call it (ids, body) and whose thing it reaches.
// A route or verb without such a row fails the test, so nothing new escapes the matrix.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <functional>
#include <map>

#include "fake_agent_link.hpp"
#include "kasm/api/developer_api.hpp"
#include "kasm/api/rest_api.hpp"
#include "kasm/auth/password.hpp"
#include "kasm/auth/secret.hpp"
#include "kasm/autoscale/autoscaler.hpp"
#include "kasm/command/command_provider.hpp"
#include "kasm/kasm.hpp"
#include "kasm/share/sharing.hpp"

namespace kasm::api {
namespace {

namespace json = boost::json;

// Who calls. Keys belong to alice unless said otherwise.
struct Who {
  std::string name;
  enum Kind { kAnonymous, kLogin, kKey } kind = kAnonymous;
  std::string user;  // The login's user or the key's owner.
  std::set<std::string> permissions;
  bool read_only = false;
  bool valid = true;  // False for an expired key or one whose owner is disabled.
};

std::vector<Who> principals() {
  std::vector<Who> out;
  out.push_back({"anonymous"});
  out.push_back({"user alice", Who::kLogin, "alice", {"sessions:launch"}});
  out.push_back({"other user bob", Who::kLogin, "bob", {"sessions:launch"}});
  out.push_back({"admin root", Who::kLogin, "root", {"sessions:launch", "admin"}});
  out.push_back({"key admin", Who::kKey, "alice", {"admin"}});
  for (auto perm : permissions::all())
    out.push_back({"key " + std::string(perm), Who::kKey, "alice", {std::string(perm)}});
  out.push_back({"read-only key", Who::kKey, "alice", {"admin"}, true});
  out.push_back({"expired key", Who::kKey, "alice", {"admin"}, false, false});
  out.push_back({"key of a disabled owner", Who::kKey, "dave", {"admin"}, false, false});
  return out;
}

// A fresh installation: zones east (agent a1) and west (empty), the workspace desktop assigned to
// All Users, users alice, bob, carol (All Users), root (also Administrators) and dave (disabled),
// a group staff without permissions, alice's running session, a staging pool, an api key, a key per
// principal, and the default_zone setting.
struct World {
  ManualClock clock;
  SeededRandom random{11};
  std::unique_ptr<spi::Store> store = makeMemoryStore();
  std::unique_ptr<Manager> manager;
  std::shared_ptr<testing::FakeAgentLink> link = std::make_shared<testing::FakeAgentLink>();
  auth::AccessTokenSigner signer = *auth::AccessTokenSigner::create(std::string(40, 's'), clock);
  auth::WebSessionSigner web_signer = *auth::WebSessionSigner::create(std::string(40, 'w'), clock);
  std::unique_ptr<RestApi> rest;
  std::unique_ptr<DeveloperApi> developer;
  std::unique_ptr<share::Sharing> sharing;
  spi::VmProviderRegistry vm_providers;
  std::unique_ptr<autoscale::Autoscaler> autoscaler;
  std::string session;   // Alice's.
  std::string share_id;  // Alice's session is shared as this.

  static const std::string& passwordHash() {
    static const std::string kHash = *auth::hashPassword("alice-password", {.log2_n = 10});
    return kHash;
  }

  World() {
    Repository repo(*store);
    ManagerOptions mo;
    mo.license = license::LicensePolicy::unlimited();
    manager = std::make_unique<Manager>(*store, clock, random, mo);
    EXPECT_TRUE(manager->start().ok());
    for (auto [id, name] : {std::pair{"east", "East"}, std::pair{"west", "West"}}) {
      Zone z;
      z.id = ZoneId(id);
      z.name = name;
      EXPECT_TRUE(manager->upsertZone(z).ok());
    }
    auto group = [&](const char* id, const char* name, std::set<std::string> perms) {
      Group g;
      g.id = GroupId(id);
      g.name = name;
      g.permissions = std::move(perms);
      g.settings.max_sessions_per_user = 0;
      g.settings.allow_sharing = true;
      g.settings.shared_session_full_control = true;
      EXPECT_TRUE(repo.insert(g).ok());
    };
    group("all", "All Users", {"sessions:launch"});
    group("admins", "Administrators", {"admin"});
    group("staff", "Staff", {});
    Workspace w;
    w.id = WorkspaceId("desktop");
    w.friendly_name = "Desktop";
    w.image = "desktop:1";
    w.resources = Resources::fromCores(1, Resources::kGiB);
    w.group_ids = {GroupId("all")};
    EXPECT_TRUE(manager->upsertWorkspace(w).ok());
    for (auto name : {"alice", "bob", "carol", "root", "dave"}) {
      User u;
      u.id = UserId(name);
      u.username = name;
      u.password_hash = passwordHash();
      u.group_ids = {GroupId("all")};
      if (u.username == "root") u.group_ids.push_back(GroupId("admins"));
      u.disabled = u.username == "dave";
      EXPECT_TRUE(repo.insert(u).ok());
    }
    EXPECT_EQ(testing::connectFakeAgent(*manager, link, "a1", ZoneId("east"),
                                        Resources::fromCores(64, 64 * Resources::kGiB), {"desktop:1"}),
              "");
    EXPECT_TRUE(repo.insert(Setting{"default_zone", "east", clock.now()}).ok());
    SessionRequest req;
    req.user_id = UserId("alice");
    req.workspace_id = w.id;
    auto s = manager->requestSession(req);
    EXPECT_TRUE(s.ok()) << s.error().toString();
    if (s.ok()) session = s->id.str();
    StagingConfig stage;
    stage.id = StagingConfigId("stage1");
    stage.workspace_id = w.id;
    stage.zone_id = ZoneId("east");
    stage.desired = 0;
    EXPECT_TRUE(repo.insert(stage).ok());
    ServerPool pool;
    pool.id = ServerPoolId("pool1");
    pool.name = "Pool one";
    EXPECT_TRUE(repo.insert(pool).ok());
    Server server;
    server.id = ServerId("srv1");
    server.friendly_name = "RDP host";
    server.hostname = "127.0.0.1";
    server.zone_id = ZoneId("east");
    EXPECT_TRUE(repo.insert(server).ok());
    addKey({"existing", Who::kKey, "alice", {"sessions:launch"}});
    for (const auto& who : principals()) {
      if (who.kind == Who::kKey) addKey(who);
    }
    sharing = std::move(*share::Sharing::create(*manager, *store, clock, {.secret_key = std::string(40, 'k')}));
    auto shared = sharing->createShare(SessionId(session), std::nullopt);
    EXPECT_TRUE(shared.ok()) << shared.error().toString();
    if (shared.ok()) share_id = *shared;
    EXPECT_TRUE(command::registerCommandProvider(vm_providers).ok());
    autoscale::AutoscalerOptions ao;
    ao.installation_id = "matrix";
    ao.secret_key = std::string(32, 'a');
    autoscaler = std::make_unique<autoscale::Autoscaler>(*store, *manager, vm_providers, clock, ao);
    AutoscaleConfig scale;
    scale.id = AutoscaleConfigId("as1");
    scale.name = "East machines";
    scale.zone_id = ZoneId("east");
    scale.provider = "command";
    scale.provider_config_json = R"({"create":["/bin/true"],"destroy":["/bin/true"],"list":["/bin/true"]})";
    EXPECT_TRUE(repo.insert(scale).ok());
    ManagerNode node;
    node.id = ManagerNodeId("m1");
    node.hostname = "gone.local";
    node.heartbeat_at = clock.now() - std::chrono::hours(1);
    EXPECT_TRUE(repo.insert(node).ok());
    RestApiOptions ro;
    ro.sharing = sharing.get();
    ro.autoscaler = autoscaler.get();
    rest = std::make_unique<RestApi>(*manager, *store, clock, signer, web_signer, ro);
    DeveloperApiOptions dopts;
    dopts.sharing = sharing.get();
    // A stand-in picture: what is checked here is who may ask for it.
    dopts.screenshot = [](const Session&, int) -> Result<std::string> { return std::string("\x89PNG stand-in"); };
    developer = std::make_unique<DeveloperApi>(*manager, *store, clock, signer, std::move(dopts));
  }

  static std::string keyName(const Who& who) {
    std::string n = who.name;
    for (auto& c : n) {
      if (c == ' ' || c == ':') c = '-';
    }
    return n;
  }

  void addKey(const Who& who) {
    ApiKey k;
    k.id = ApiKeyId(keyName(who));
    k.name = who.name;
    k.key = keyName(who);
    k.secret_hash = auth::hashSecret("secret");
    k.permissions = who.permissions;
    k.read_only = who.read_only;
    k.owner = UserId(who.user);
    if (who.name == "expired key") k.expires_at = clock.now() - std::chrono::minutes(1);
    EXPECT_TRUE(Repository(*store).insert(k).ok());
  }

  RestResponse callRest(const Who& who, const std::string& method, const std::string& path, const std::string& body) {
    RestRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    r.content_type = "application/json";
    r.remote_address = "192.0.2.1";
    if (who.kind == Who::kLogin) {
      r.cookie_token = web_signer.issue(UserId(who.user), std::chrono::hours(1), "n");
      r.csrf_token = web_signer.csrfToken(r.cookie_token);
    } else if (who.kind == Who::kKey) {
      r.authorization = "Bearer " + keyName(who) + ":secret";
    }
    return rest->handle(r);
  }

  ApiResponse callVerb(const Who& who, std::string_view verb, json::object body) {
    // The developer API knows only keys; a browser login is not a credential there.
    if (who.kind == Who::kKey) {
      body["api_key"] = keyName(who);
      body["api_key_secret"] = "secret";
    }
    return developer->handle(verb, json::serialize(body));
  }
};

// How to call one route, and whose thing it reaches.
struct RouteRow {
  std::string path;  // Concrete, "{session}" replaced by alice's session id.
  std::string body;
  enum Owner { kNobody, kAlice, kCaller } owner = kNobody;
  int denied = 403;    // The answer to a caller who may not, on someone else's thing.
  int authorized = 0;  // When nonzero: the answer to an allowed caller (else a success).
  std::function<void(World&)> prepare;
};

const std::map<std::string, RouteRow>& routeRows() {
  using R = RouteRow;
  const auto pause = [](World& w) { ASSERT_TRUE(w.manager->pauseSession(SessionId(w.session)).ok()); };
  const auto share_with_carol = [](World& w) {
    ASSERT_TRUE(w.sharing->setPermission(SessionId(w.session), UserId("carol"), ShareAccess::kRead).ok());
  };
  static const std::map<std::string, RouteRow> kRows = {
      {"POST /api/v1/auth/login", {"/api/v1/auth/login", R"({"username":"alice","password":"alice-password"})"}},
      {"POST /api/v1/auth/logout", {"/api/v1/auth/logout", ""}},
      {"GET /api/v1/auth/me", {"/api/v1/auth/me", ""}},
      {"GET /api/v1/installation", {"/api/v1/installation", ""}},
      {"GET /api/v1/workspaces", {"/api/v1/workspaces", ""}},
      {"POST /api/v1/workspaces",
       {"/api/v1/workspaces",
        R"({"friendly_name":"Firefox","image":"firefox:1","resources":{"millicores":1000,"memory_bytes":1073741824}})"}},
      {"GET /api/v1/workspaces/{id}", {"/api/v1/workspaces/desktop", ""}},
      {"PATCH /api/v1/workspaces/{id}", {"/api/v1/workspaces/desktop", R"({"description":"d"})"}},
      {"PUT /api/v1/workspaces/{id}", {"/api/v1/workspaces/desktop", R"({"description":"d"})"}},
      {"DELETE /api/v1/workspaces/{id}", {"/api/v1/workspaces/desktop", ""}},
      {"GET /api/v1/zones", {"/api/v1/zones", ""}},
      {"POST /api/v1/zones", {"/api/v1/zones", R"({"name":"North"})"}},
      {"GET /api/v1/zones/{id}", {"/api/v1/zones/east", ""}},
      {"PATCH /api/v1/zones/{id}", {"/api/v1/zones/east", R"({"name":"East 2"})"}},
      {"PUT /api/v1/zones/{id}", {"/api/v1/zones/east", R"({"name":"East 2"})"}},
      {"DELETE /api/v1/zones/{id}", {"/api/v1/zones/west", ""}},
      {"GET /api/v1/servers", {"/api/v1/servers", ""}},
      {"POST /api/v1/servers",
       {"/api/v1/servers", R"({"friendly_name":"h","hostname":"127.0.0.1","port":3389,"zone_id":"east"})"}},
      {"GET /api/v1/servers/{id}", {"/api/v1/servers/srv1", ""}},
      {"PATCH /api/v1/servers/{id}", {"/api/v1/servers/srv1", R"({"enabled":false})"}},
      {"PUT /api/v1/servers/{id}", {"/api/v1/servers/srv1", R"({"enabled":false})"}},
      {"DELETE /api/v1/servers/{id}", {"/api/v1/servers/srv1", ""}},
      {"POST /api/v1/servers/{id}/assigned-users", {"/api/v1/servers/srv1/assigned-users", R"({"user_id":"alice"})"}},
      {"DELETE /api/v1/servers/{id}/assigned-users/{user_id}",
       {"/api/v1/servers/srv1/assigned-users/alice", "", R::kNobody, 403, 0,
        [](World& w) { ASSERT_TRUE(w.manager->assignUserServer(ServerId("srv1"), UserId("alice")).ok()); }}},
      {"GET /api/v1/autoscale", {"/api/v1/autoscale", ""}},
      {"POST /api/v1/autoscale",
       {"/api/v1/autoscale",
        R"({"name":"West machines","zone_id":"west","provider":"command",)"
        R"("provider_config_json":"{\"create\":[\"/bin/true\"],\"destroy\":[\"/bin/true\"],\"list\":[\"/bin/true\"]}"})"}},
      {"GET /api/v1/autoscale/{id}", {"/api/v1/autoscale/as1", ""}},
      {"PATCH /api/v1/autoscale/{id}", {"/api/v1/autoscale/as1", R"({"max_instances":4})"}},
      {"PUT /api/v1/autoscale/{id}", {"/api/v1/autoscale/as1", R"({"max_instances":4})"}},
      {"DELETE /api/v1/autoscale/{id}", {"/api/v1/autoscale/as1", ""}},
      {"GET /api/v1/autoscale/{id}/decisions", {"/api/v1/autoscale/as1/decisions", ""}},
      {"GET /api/v1/autoscale/{id}/machines", {"/api/v1/autoscale/as1/machines", ""}},
      {"GET /api/v1/managers", {"/api/v1/managers", ""}},
      {"GET /api/v1/managers/{id}", {"/api/v1/managers/m1", ""}},
      {"PATCH /api/v1/managers/{id}", {"/api/v1/managers/m1", R"({"enabled":false})"}},
      {"DELETE /api/v1/managers/{id}", {"/api/v1/managers/m1", ""}},
      {"GET /api/v1/server-pools", {"/api/v1/server-pools", ""}},
      {"POST /api/v1/server-pools", {"/api/v1/server-pools", R"({"name":"Another pool"})"}},
      {"GET /api/v1/server-pools/{id}", {"/api/v1/server-pools/pool1", ""}},
      {"PATCH /api/v1/server-pools/{id}", {"/api/v1/server-pools/pool1", R"({"name":"Renamed"})"}},
      {"PUT /api/v1/server-pools/{id}", {"/api/v1/server-pools/pool1", R"({"name":"Renamed"})"}},
      {"DELETE /api/v1/server-pools/{id}", {"/api/v1/server-pools/pool1", ""}},
      {"GET /api/v1/staging", {"/api/v1/staging", ""}},
      {"POST /api/v1/staging", {"/api/v1/staging", R"({"workspace_id":"desktop","zone_id":"east","desired":0})"}},
      {"GET /api/v1/staging/{id}", {"/api/v1/staging/stage1", ""}},
      {"PATCH /api/v1/staging/{id}", {"/api/v1/staging/stage1", R"({"enabled":false})"}},
      {"PUT /api/v1/staging/{id}", {"/api/v1/staging/stage1", R"({"enabled":false})"}},
      {"DELETE /api/v1/staging/{id}", {"/api/v1/staging/stage1", ""}},
      {"GET /api/v1/users", {"/api/v1/users", ""}},
      {"POST /api/v1/users", {"/api/v1/users", R"({"username":"erin","password":"erin-password"})"}},
      {"GET /api/v1/users/{id}", {"/api/v1/users/carol", ""}},
      {"PATCH /api/v1/users/{id}", {"/api/v1/users/carol", R"({"first_name":"Carol"})"}},
      {"PUT /api/v1/users/{id}", {"/api/v1/users/carol", R"({"first_name":"Carol"})"}},
      {"DELETE /api/v1/users/{id}", {"/api/v1/users/carol", ""}},
      {"GET /api/v1/groups", {"/api/v1/groups", ""}},
      {"POST /api/v1/groups", {"/api/v1/groups", R"({"name":"New"})"}},
      {"GET /api/v1/groups/{id}", {"/api/v1/groups/staff", ""}},
      {"PATCH /api/v1/groups/{id}", {"/api/v1/groups/staff", R"({"description":"d"})"}},
      {"PUT /api/v1/groups/{id}", {"/api/v1/groups/staff", R"({"description":"d"})"}},
      {"DELETE /api/v1/groups/{id}", {"/api/v1/groups/staff", ""}},
      {"POST /api/v1/groups/{id}/users/{user_id}", {"/api/v1/groups/staff/users/carol", ""}},
      {"DELETE /api/v1/groups/{id}/users/{user_id}", {"/api/v1/groups/staff/users/carol", ""}},
      {"GET /api/v1/agents", {"/api/v1/agents", ""}},
      {"POST /api/v1/agents", {"/api/v1/agents", R"({"hostname":"host2","zone_id":"east"})"}},
      {"GET /api/v1/agents/{id}", {"/api/v1/agents/a1", ""}},
      {"PATCH /api/v1/agents/{id}", {"/api/v1/agents/a1", R"({"draining":true})"}},
      {"GET /api/v1/sessions", {"/api/v1/sessions", "", R::kCaller}},
      {"POST /api/v1/sessions", {"/api/v1/sessions", R"({"workspace_id":"desktop"})"}},
      {"GET /api/v1/sessions/{id}", {"/api/v1/sessions/{session}", "", R::kAlice, 404}},
      {"DELETE /api/v1/sessions/{id}", {"/api/v1/sessions/{session}", "", R::kAlice, 404}},
      {"POST /api/v1/sessions/{id}/keepalive", {"/api/v1/sessions/{session}/keepalive", "", R::kAlice, 404}},
      {"POST /api/v1/sessions/{id}/pause", {"/api/v1/sessions/{session}/pause", "", R::kAlice, 404}},
      {"POST /api/v1/sessions/{id}/resume", {"/api/v1/sessions/{session}/resume", "", R::kAlice, 404, 0, pause}},
      {"POST /api/v1/sessions/{id}/stop", {"/api/v1/sessions/{session}/stop", "", R::kAlice, 404}},
      {"GET /api/v1/sessions/{id}/share", {"/api/v1/sessions/{session}/share", "", R::kAlice, 404}},
      {"POST /api/v1/sessions/{id}/share", {"/api/v1/sessions/{session}/share", "{}", R::kAlice, 404}},
      {"DELETE /api/v1/sessions/{id}/share", {"/api/v1/sessions/{session}/share", "", R::kAlice, 404}},
      {"GET /api/v1/sessions/{id}/permissions", {"/api/v1/sessions/{session}/permissions", "", R::kAlice, 404}},
      {"PUT /api/v1/sessions/{id}/permissions/{user_id}",
       {"/api/v1/sessions/{session}/permissions/carol", R"({"access":"rw"})", R::kAlice, 404}},
      {"DELETE /api/v1/sessions/{id}/permissions/{user_id}",
       {"/api/v1/sessions/{session}/permissions/carol", "", R::kAlice, 404, 0, share_with_carol}},
      // Joining as oneself: a login, or a key acting for its owner with sessions:launch.
      {"POST /api/v1/shares/{share_id}/join", {"/api/v1/shares/{share}/join", "{}", R::kCaller}},
      {"GET /api/v1/api-keys", {"/api/v1/api-keys", ""}},
      {"POST /api/v1/api-keys", {"/api/v1/api-keys", R"({"name":"new","permissions":["sessions:launch"]})"}},
      {"GET /api/v1/api-keys/{id}", {"/api/v1/api-keys/existing", ""}},
      {"DELETE /api/v1/api-keys/{id}", {"/api/v1/api-keys/existing", ""}},
      {"GET /api/v1/settings", {"/api/v1/settings", ""}},
      {"GET /api/v1/settings/{key}", {"/api/v1/settings/default_zone", ""}},
      {"PUT /api/v1/settings/{key}", {"/api/v1/settings/default_zone", R"({"value":"west"})"}},
      {"GET /api/v1/licenses", {"/api/v1/licenses", ""}},
      // Allowed callers reach the licence parser, which refuses the text.
      {"POST /api/v1/licenses", {"/api/v1/licenses", R"({"license":"not a licence"})", R::kNobody, 403, 400}},
      {"DELETE /api/v1/licenses/{id}", {"/api/v1/licenses/missing", "", R::kNobody, 403, 404}},
  };
  return kRows;
}

// What the documented rules predict: 0 stands for "one of the operation's success statuses".
int expectedRestStatus(const json::object& op, const RouteRow& row, const Who& who, bool write, bool is_public) {
  if (is_public) return row.authorized;
  if (who.kind == Who::kAnonymous || !who.valid) return 401;
  if (write && who.read_only) return 403;
  const std::string permission =
      op.contains("x-kasm-permission") ? std::string(op.at("x-kasm-permission").as_string()) : "";
  if (permissions::grants(who.permissions, permission)) return row.authorized;
  if (const auto* owner_permission = op.if_contains("x-kasm-owner-permission")) {
    const bool owns = row.owner == RouteRow::kCaller || (row.owner == RouteRow::kAlice && who.user == "alice");
    if (owns) {
      const bool may =
          who.kind == Who::kLogin || permissions::grants(who.permissions, std::string(owner_permission->as_string()));
      return may ? row.authorized : 403;
    }
  }
  return row.denied;
}

TEST(AuthorizationMatrix, EveryRouteAgainstEveryPrincipal) {
  const auto doc = json::parse(World().rest->openApiDocument()).as_object();
  std::set<std::string> seen;
  int cells = 0;
  for (const auto& [path, item] : doc.at("paths").as_object()) {
    for (const auto& [method_lower, op_value] : item.as_object()) {
      if (method_lower == "parameters") continue;
      std::string method(method_lower);
      for (auto& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      const std::string route = method + " " + std::string(path);
      seen.insert(route);
      auto row_it = routeRows().find(route);
      if (row_it == routeRows().end()) {
        ADD_FAILURE() << route << " is not in the authorization matrix: add a row to routeRows()";
        continue;
      }
      const RouteRow& row = row_it->second;
      const auto& op = op_value.as_object();
      std::set<int> success;
      for (const auto& [status, r] : op.at("responses").as_object()) {
        if (status != "default") success.insert(std::stoi(std::string(status)));
      }
      const bool write = method != "GET";
      const bool is_public = !op.contains("x-kasm-permission") && route == "POST /api/v1/auth/login";
      for (const auto& who : principals()) {
        World world;
        if (row.prepare) row.prepare(world);
        std::string concrete = row.path;
        if (auto at = concrete.find("{session}"); at != std::string::npos) concrete.replace(at, 9, world.session);
        if (auto at = concrete.find("{share}"); at != std::string::npos) concrete.replace(at, 7, world.share_id);
        const RestResponse r = world.callRest(who, method, concrete, row.body);
        const int expected = expectedRestStatus(op, row, who, write, is_public);
        ++cells;
        if (expected == 0) {
          EXPECT_TRUE(success.count(r.status))
              << route << " as " << who.name << ": expected success, got " << r.status << " " << r.body;
        } else {
          EXPECT_EQ(r.status, expected) << route << " as " << who.name << ": " << r.body;
        }
        if (who.read_only) {
          EXPECT_EQ(r.body.find("token="), std::string::npos) << route << ": a read-only key got an access token";
        }
      }
    }
  }
  for (const auto& [route, row] : routeRows()) {
    EXPECT_TRUE(seen.count(route)) << route << " is in the matrix but not in the OpenAPI document";
  }
  EXPECT_GT(cells, 500);
}

// The developer API: only keys authenticate; the verb table says what each verb needs.
struct VerbRow {
  json::object body;       // "{session}" in kasm_id is replaced by alice's session id.
  std::string permission;  // When set: needed beyond the verb's own permission (arguments that ask more).
};

const std::map<std::string, std::vector<VerbRow>>& verbRows() {
  const json::object carol = {{"user_id", "carol"}};
  static const std::map<std::string, std::vector<VerbRow>> kRows = {
      {"request_kasm", {{{{"user_id", "alice"}, {"image_id", "desktop"}}}}},
      {"get_kasm_status", {{{{"kasm_id", "{session}"}, {"user_id", "alice"}}}}},
      {"destroy_kasm", {{{{"kasm_id", "{session}"}}}}},
      {"keepalive", {{{{"kasm_id", "{session}"}}}}},
      {"get_kasms", {{json::object{}}}},
      {"get_kasm_screenshot", {{{{"kasm_id", "{session}"}, {"width", 200}}}}},
      {"exec_command_kasm",
       {{{{"kasm_id", "{session}"}, {"exec_config", {{"cmd", "true"}}}}},
        {{{"kasm_id", "{session}"}, {"exec_config", {{"cmd", "true"}, {"privileged", true}}}}, "admin"},
        {{{"kasm_id", "{session}"}, {"exec_config", {{"cmd", "true"}, {"user", "root"}}}}, "admin"}}},
      {"get_user", {{{{"target_user", carol}}}}},
      {"get_users", {{json::object{}}}},
      {"create_user", {{{{"target_user", {{"username", "erin"}}}}}}},
      {"update_user", {{{{"target_user", {{"user_id", "carol"}, {"first_name", "Carol"}}}}}}},
      {"delete_user", {{{{"target_user", carol}}}}},
      {"logout_user", {{{{"target_user", carol}}}}},
      {"get_images", {{json::object{}}}},
      {"add_user_group", {{{{"target_user", carol}, {"target_group", {{"group_id", "staff"}}}}}}},
      {"remove_user_group", {{{{"target_user", carol}, {"target_group", {{"group_id", "staff"}}}}}}},
      {"get_attributes", {{{{"target_user", carol}}}}},
      {"update_user_attributes", {{{{"target_user_attributes", {{"user_id", "carol"}, {"show_tips", false}}}}}}},
      {"join_kasm", {{{{"share_id", "{share}"}, {"user_id", "carol"}}}}},
      {"create_kasm_share_id", {{{{"kasm_id", "{session}"}}}}},
      {"get_kasm_share_id", {{{{"kasm_id", "{session}"}}}}},
      {"delete_kasm_share_id", {{{{"kasm_id", "{session}"}}}}},
      {"get_session_permissions", {{{{"kasm_id", "{session}"}}}}},
      {"set_session_permissions",
       {{{{"kasm_id", "{session}"},
          {"session_permissions", json::array{json::object{{"user_id", "carol"}, {"access", "r"}}}}}}}},
      {"delete_session_permissions", {{{{"kasm_id", "{session}"}}}}},
      {"assign_user_server", {{{{"target_server", {{"server_id", "srv1"}}}, {"target_user", {{"user_id", "carol"}}}}}}},
      {"unassign_user_server", {{{{"target_server", {{"server_id", "srv1"}}}}}}},
  };
  return kRows;
}

int expectedVerbStatus(const DeveloperApiVerb& verb, const VerbRow& row, const Who& who) {
  if (who.kind != Who::kKey || !who.valid) return 401;
  if (who.read_only && !verb.read) return 403;
  const bool holds =
      verb.permission.empty() ? !who.permissions.empty() : permissions::grants(who.permissions, verb.permission);
  if (!holds) return 403;
  if (!row.permission.empty() && !permissions::grants(who.permissions, row.permission)) return 403;
  return 200;
}

TEST(AuthorizationMatrix, EveryDeveloperApiVerbAgainstEveryPrincipal) {
  std::set<std::string> seen;
  for (const auto& verb : DeveloperApi::verbs()) {
    const std::string name(verb.name);
    seen.insert(name);
    auto rows = verbRows().find(name);
    if (rows == verbRows().end()) {
      ADD_FAILURE() << name << " is not in the authorization matrix: add a row to verbRows()";
      continue;
    }
    for (const auto& row : rows->second) {
      for (const auto& who : principals()) {
        World world;
        json::object body = row.body;
        if (auto* id = body.if_contains("kasm_id"); id && id->as_string() == "{session}") *id = world.session;
        if (auto* id = body.if_contains("share_id"); id && id->as_string() == "{share}") *id = world.share_id;
        const ApiResponse r = world.callVerb(who, verb.name, body);
        EXPECT_EQ(r.status, expectedVerbStatus(verb, row, who))
            << name << " " << json::serialize(row.body) << " as " << who.name << ": " << r.body;
        if (who.read_only) {
          EXPECT_EQ(r.body.find("token"), std::string::npos) << name << ": a read-only key got an access token";
        }
      }
    }
  }
  for (const auto& [name, rows] : verbRows()) EXPECT_TRUE(seen.count(name)) << name << " is not a verb any more";
}

}  // namespace
}  // namespace kasm::api
