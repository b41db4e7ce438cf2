// The REST API over the manager, the in-memory store and a fake agent link: logins, CSRF, rate
// limiting, API keys, ownership, pagination and bad input. Every response is checked against the
// API's own OpenAPI document.

#include "kasm/api/rest_api.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <thread>

#include "rest_api_fixture.hpp"

namespace kasm::api {
namespace {

using namespace testing_rest;
namespace json = boost::json;

TEST_F(RestApiTest, LoginGivesAnHttpOnlyCookieAndMeAnswersWithIt) {
  Browser alice = login("alice");
  ASSERT_FALSE(alice.cookie.empty());
  auto me = call("GET", "/api/v1/auth/me", "", &alice);
  ASSERT_EQ(me.status, 200);
  EXPECT_EQ(me.obj().at("user").at("username").as_string(), "alice");
  EXPECT_FALSE(me.obj().at("user").as_object().contains("password_hash")) << "hashes never leave the server";
  EXPECT_EQ(me.obj().at("csrf_token").as_string(), alice.csrf);
  EXPECT_EQ(call("GET", "/api/v1/auth/me").status, 401);
}

TEST_F(RestApiTest, WrongPasswordsAreRefusedAndThenRateLimited) {
  const std::string wrong = json::serialize(json::object{{"username", "alice"}, {"password", "nope-nope"}});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(call("POST", "/api/v1/auth/login", wrong).status, 401);
  auto limited = call("POST", "/api/v1/auth/login",
                      json::serialize(json::object{{"username", "alice"}, {"password", "alice-password"}}));
  EXPECT_EQ(limited.status, 429) << "even the right password waits once the limit is hit";
  EXPECT_FALSE(limited.header("Retry-After").empty());
  // An unknown user gets the same answer as a wrong password.
  auto unknown = call("POST", "/api/v1/auth/login",
                      json::serialize(json::object{{"username", "mallory"}, {"password", "whatever1"}}));
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(unknown.obj().at("error_message").as_string(), "wrong user name or password");
  clock_.advance(std::chrono::minutes(6));
  login("alice");
}

TEST_F(RestApiTest, CookieWritesNeedTheCsrfTokenAndExpiredOrForgedCookiesAreRefused) {
  Browser alice = login("alice");
  const std::string body = json::serialize(json::object{{"workspace_id", "desktop"}});
  auto no_csrf = call("POST", "/api/v1/sessions", body, &alice, {}, /*with_csrf=*/false);
  EXPECT_EQ(no_csrf.status, 403);
  EXPECT_EQ(link_->count(), 0u) << "a refused request starts nothing";
  Browser forged = alice;
  forged.cookie.back() = forged.cookie.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(call("GET", "/api/v1/auth/me", "", &forged).status, 401);
  clock_.advance(std::chrono::hours(13));
  EXPECT_EQ(call("GET", "/api/v1/auth/me", "", &alice).status, 401) << "logins expire";
}

TEST_F(RestApiTest, LogoutEndsEveryBrowserOfTheUser) {
  Browser one = login("alice");
  clock_.advance(std::chrono::seconds(1));
  Browser two = login("alice");
  auto out = call("POST", "/api/v1/auth/logout", "", &one);
  EXPECT_EQ(out.status, 204);
  EXPECT_NE(out.header("Set-Cookie").find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(call("GET", "/api/v1/auth/me", "", &one).status, 401);
  EXPECT_EQ(call("GET", "/api/v1/auth/me", "", &two).status, 401);
  clock_.advance(std::chrono::seconds(1));
  Browser three = login("alice");
  EXPECT_EQ(call("GET", "/api/v1/auth/me", "", &three).status, 200);
}

TEST_F(RestApiTest, UsersSeeEnabledWorkspacesAndOnlyTheirOwnSessions) {
  Browser alice = login("alice");
  Browser bob = login("bob");
  Browser root = login("root");
  auto list = call("GET", "/api/v1/workspaces", "", &alice);
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.obj().at("total").as_int64(), 1) << "the disabled workspace is hidden from users";
  EXPECT_EQ(call("GET", "/api/v1/workspaces", "", &root).obj().at("total").as_int64(), 2);

  auto started = call("POST", "/api/v1/sessions", json::serialize(json::object{{"workspace_id", "desktop"}}), &alice);
  ASSERT_EQ(started.status, 201) << started.raw.body;
  const std::string id(started.obj().at("id").as_string());
  EXPECT_EQ(started.obj().at("state").as_string(), "running");
  const std::string url(started.obj().at("url").as_string());
  EXPECT_EQ(url.rfind("/desktop/" + id + "/?token=", 0), 0u);
  EXPECT_TRUE(signer_.verifyFor(url.substr(url.find("token=") + 6), SessionId(id)).ok());
  EXPECT_FALSE(started.obj().contains("upstream"));

  EXPECT_EQ(call("GET", "/api/v1/sessions/" + id, "", &bob).status, 404) << "bob cannot see alice's session";
  EXPECT_EQ(call("DELETE", "/api/v1/sessions/" + id, "", &bob).status, 404);
  EXPECT_EQ(call("GET", "/api/v1/sessions", "", &bob).obj().at("total").as_int64(), 0);
  EXPECT_EQ(call("GET", "/api/v1/sessions?all=true", "", &bob).status, 403);
  auto everyone = call("GET", "/api/v1/sessions?all=true", "", &root);
  EXPECT_EQ(everyone.obj().at("total").as_int64(), 1);
  EXPECT_FALSE(everyone.obj().at("items").at(0).as_object().contains("url")) << "tokens only for the owner";

  EXPECT_EQ(call("POST", "/api/v1/sessions/" + id + "/keepalive", "", &alice).status, 200);
  auto deleted = call("DELETE", "/api/v1/sessions/" + id, "", &alice);
  EXPECT_EQ(deleted.status, 200);
  EXPECT_EQ(link_->count(), 0u) << "the container is gone";
  EXPECT_EQ(call("GET", "/api/v1/sessions", "", &alice).obj().at("total").as_int64(), 0);
}

TEST_F(RestApiTest, AdministrationNeedsPermissionsAndGroupsNeedAnAdmin) {
  Browser alice = login("alice");
  Browser root = login("root");
  const std::string ws =
      json::serialize(json::object{{"friendly_name", "Firefox"},
                                   {"image", "firefox:1"},
                                   {"resources", json::object{{"millicores", 1000}, {"memory_bytes", 1 << 30}}}});
  EXPECT_EQ(call("POST", "/api/v1/workspaces", ws, &alice).status, 403);
  auto created = call("POST", "/api/v1/workspaces", ws, &root);
  ASSERT_EQ(created.status, 201) << created.raw.body;
  const std::string wid(created.obj().at("id").as_string());
  auto patched = call("PATCH", "/api/v1/workspaces/" + wid,
                      json::serialize(json::object{{"description", "a browser"}, {"id", "hijack"}}), &root);
  ASSERT_EQ(patched.status, 200);
  EXPECT_EQ(patched.obj().at("id").as_string(), wid) << "ids cannot be changed by a patch";
  EXPECT_EQ(patched.obj().at("image").as_string(), "firefox:1") << "fields not in the patch are kept";
  EXPECT_EQ(patched.obj().at("description").as_string(), "a browser");

  // Alice may edit her own profile but not give herself a group.
  EXPECT_EQ(call("PATCH", "/api/v1/users/alice", json::serialize(json::object{{"first_name", "Alice"}}), &alice).status,
            200);
  EXPECT_EQ(
      call("PATCH", "/api/v1/users/alice", json::serialize(json::object{{"group_ids", json::array{"admins"}}}), &alice)
          .status,
      403);
  EXPECT_EQ(call("GET", "/api/v1/users/bob", "", &alice).status, 403);
  EXPECT_EQ(call("POST", "/api/v1/groups/admins/users/alice", "", &root).status, 204);
  Browser alice_again = login("alice");
  EXPECT_EQ(call("GET", "/api/v1/users/bob", "", &alice_again).status, 200) << "membership grants permissions";

  auto agent = call("PATCH", "/api/v1/agents/a1", json::serialize(json::object{{"draining", true}}), &root);
  ASSERT_EQ(agent.status, 200) << agent.raw.body;
  EXPECT_TRUE(agent.obj().at("draining").as_bool());
  EXPECT_TRUE(manager_->schedulerView(AgentId("a1"))->draining);
}

TEST_F(RestApiTest, ApiKeysAuthenticateAndReadOnlyKeysOnlyRead) {
  Browser root = login("root");
  auto key = call("POST", "/api/v1/api-keys",
                  json::serialize(json::object{{"name", "ci"}, {"permissions", json::array{"users:manage"}}}), &root);
  ASSERT_EQ(key.status, 201) << key.raw.body;
  const std::string bearer = "Bearer " + std::string(key.obj().at("api_key").as_string()) + ":" +
                             std::string(key.obj().at("api_key_secret").as_string());
  EXPECT_FALSE(key.obj().contains("secret_hash"));
  EXPECT_EQ(call("GET", "/api/v1/users", "", nullptr, bearer).status, 200);
  EXPECT_EQ(call("GET", "/api/v1/agents", "", nullptr, bearer).status, 403);
  EXPECT_EQ(call("GET", "/api/v1/users", "", nullptr, "Bearer ro-key:wrong").status, 401);
  EXPECT_EQ(call("GET", "/api/v1/users", "", nullptr, "Bearer ro-key:ro-secret").status, 200);
  EXPECT_EQ(call("POST", "/api/v1/zones", R"({"name":"West"})", nullptr, "Bearer ro-key:ro-secret").status, 403);
  auto created =
      call("POST", "/api/v1/users",
           json::serialize(json::object{{"username", "carol"}, {"password", "carol-password"}}), nullptr, bearer);
  ASSERT_EQ(created.status, 201) << created.raw.body;
  login("carol");
}

TEST_F(RestApiTest, ListsPageWithLimitOffsetAndCursor) {
  Browser root = login("root");
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(
        call("POST", "/api/v1/zones", json::serialize(json::object{{"name", "z" + std::to_string(i)}}), &root).status,
        201);
  }
  auto first = call("GET", "/api/v1/zones?limit=2", "", &root);
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.obj().at("total").as_int64(), 6);
  ASSERT_EQ(first.obj().at("items").as_array().size(), 2u);
  ASSERT_TRUE(first.obj().at("next").is_string());
  std::set<std::string> seen;
  std::string after(first.obj().at("next").as_string());
  for (const auto& z : first.obj().at("items").as_array()) seen.insert(std::string(z.at("id").as_string()));
  for (int page = 0; page < 5 && !after.empty(); ++page) {
    auto next = call("GET", "/api/v1/zones?limit=2&after=" + after, "", &root);
    for (const auto& z : next.obj().at("items").as_array()) seen.insert(std::string(z.at("id").as_string()));
    after = next.obj().at("next").is_string() ? std::string(next.obj().at("next").as_string()) : "";
  }
  EXPECT_EQ(seen.size(), 6u);
  auto offset = call("GET", "/api/v1/zones?limit=2&offset=4", "", &root);
  EXPECT_EQ(offset.obj().at("items").as_array().size(), 2u);
  EXPECT_EQ(call("GET", "/api/v1/zones?limit=x", "", &root).status, 400);
}

TEST_F(RestApiTest, BadInputGetsAClearErrorAndChangesNothing) {
  Browser root = login("root");
  auto malformed = call("POST", "/api/v1/zones", "{not json", &root);
  EXPECT_EQ(malformed.status, 400);
  EXPECT_NE(std::string(malformed.obj().at("error_message").as_string()).find("malformed JSON"), std::string::npos);
  auto wrong_type = call("POST", "/api/v1/workspaces", R"({"friendly_name": 5})", &root);
  EXPECT_EQ(wrong_type.status, 400);
  EXPECT_NE(std::string(wrong_type.obj().at("error_message").as_string()).find("friendly_name"), std::string::npos);
  EXPECT_EQ(call("POST", "/api/v1/sessions", R"({"workspace_id": "nope"})", &root).status, 404);
  EXPECT_EQ(call("GET", "/api/v1/nothing", "", &root).status, 404);
  EXPECT_EQ(call("GET", "/api/v1/sessions/a/b/c", "", &root).status, 404);
  EXPECT_EQ(call("PUT", "/api/v1/settings/access_token_key", R"({"value":"x"})", &root).status, 403);
  EXPECT_EQ(call("GET", "/api/v1/zones", "", &root).obj().at("total").as_int64(), 1);
  EXPECT_EQ(link_->count(), 0u);
  RestRequest big;
  big.method = "POST";
  big.path = "/api/v1/zones";
  big.body = std::string(2 * 1024 * 1024, ' ');
  big.cookie_token = root.cookie;
  big.csrf_token = root.csrf;
  EXPECT_EQ(api_->handle(big).status, 400);
}

// Operators are told, not left guessing: on the community edition (no staging feature) a staging
// pool that would fill is refused with the reason, and one stored before is shown inactive, why.
TEST_F(RestApiTest, StagingPoolsTheLicenceDoesNotAllowAreRefusedOrShownInactive) {
  Browser root = login("root");
  StagingConfig old;
  old.id = StagingConfigId("old");
  old.workspace_id = WorkspaceId("desktop");
  old.zone_id = ZoneId("east");
  old.desired = 2;
  ASSERT_TRUE(Repository(*store_).insert(old).ok());
  EXPECT_EQ(call("GET", "/api/v1/staging/old", "", &root).obj().at("active"), true);
  Manager community(*store_, clock_, random_, ManagerOptions{});
  ASSERT_TRUE(community.start().ok());
  auto unlimited = std::move(api_);
  api_ = std::make_unique<RestApi>(community, *store_, clock_, signer_, web_signer_, RestApiOptions{});
  auto refused = call("POST", "/api/v1/staging", R"({"workspace_id":"desktop","zone_id":"east","desired":1})", &root);
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(std::string(refused.obj().at("error_message").as_string()).find("'staging' feature"), std::string::npos)
      << refused.raw.body;
  // A pool kept empty on purpose (disabled, or nothing desired) may still be written.
  EXPECT_EQ(call("POST", "/api/v1/staging", R"({"workspace_id":"desktop","zone_id":"east","desired":0})", &root).status,
            201);
  auto shown = call("GET", "/api/v1/staging/old", "", &root);
  EXPECT_EQ(shown.obj().at("active"), false);
  EXPECT_NE(std::string(shown.obj().at("inactive_reason").as_string()).find("staging"), std::string::npos)
      << shown.raw.body;
  api_ = std::move(unlimited);
}

TEST_F(RestApiTest, WithABackgroundExecutorStartsAnswer202AndFinishInTheBackground) {
  std::vector<std::thread> threads;
  RestApiOptions options;
  options.background = [&](std::function<void()> task) {
    threads.emplace_back(std::move(task));
    return true;
  };
  api_ = std::make_unique<RestApi>(*manager_, *store_, clock_, signer_, web_signer_, options);
  Browser alice = login("alice");
  auto started = call("POST", "/api/v1/sessions", json::serialize(json::object{{"workspace_id", "desktop"}}), &alice);
  ASSERT_EQ(started.status, 202) << started.raw.body;
  EXPECT_EQ(started.obj().at("state").as_string(), "provisioning");
  EXPECT_FALSE(started.obj().contains("url")) << "no access token before the session runs";
  const std::string id(started.obj().at("id").as_string());
  for (auto& t : threads) t.join();
  auto now = call("GET", "/api/v1/sessions/" + id, "", &alice);
  EXPECT_EQ(now.obj().at("state").as_string(), "running");
  EXPECT_EQ(now.obj().at("progress").as_int64(), 100);
  EXPECT_TRUE(now.obj().contains("url"));
  // Refusals before placement still answer at once, with the reason.
  auto refused = call("POST", "/api/v1/sessions", json::serialize(json::object{{"workspace_id", "hidden"}}), &alice);
  EXPECT_EQ(refused.status, 404);
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

TEST_F(RestApiTest, TheOpenApiDocumentDescribesEveryEntity) {
  auto doc = json::parse(api_->openApiDocument()).as_object();
  EXPECT_EQ(doc.at("openapi").as_string(), "3.1.0");
  const auto& schemas = doc.at("components").at("schemas").as_object();
  for (auto name : {"Workspace", "Zone", "Agent", "Session", "User", "Group", "ApiKey", "StagingConfig", "Error"}) {
    EXPECT_TRUE(schemas.contains(name)) << name;
  }
  EXPECT_FALSE(schemas.at("User").at("properties").as_object().contains("password_hash"));
  EXPECT_TRUE(doc.at("paths").as_object().contains("/api/v1/sessions/{id}/keepalive"));
}

// persistent_profile_mode Reset through POST /sessions, and DELETE /users/{id}?delete_profiles=true:
// refused while a session still holds a profile, then 200 with what was removed (every answer is
// checked against the OpenAPI document).
TEST_F(RestApiTest, ResetAndDeletingAUserWithTheirProfiles) {
  Repository repo(*store_);
  Workspace w = repo.get<Workspace>("desktop")->value;
  w.persistent_profile_path = "kasm-home-{username}";
  ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
  auto g = repo.get<Group>("all");
  g->value.settings.allow_persistent_profile = true;
  ASSERT_TRUE(repo.update(g->value, g->version).ok());
  Browser alice = login("alice");
  Browser root = login("root");
  auto started =
      call("POST", "/api/v1/sessions",
           json::serialize(json::object{{"workspace_id", "desktop"}, {"persistent_profile_mode", "Reset"}}), &alice);
  ASSERT_EQ(started.status, 201) << started.raw.body;
  EXPECT_EQ(started.obj().at("profile").as_string(), "kasm-home-alice");
  EXPECT_EQ(link_->removed_profiles, std::vector<std::string>{"kasm-home-alice"});

  EXPECT_EQ(call("DELETE", "/api/v1/users/alice?delete_profiles=maybe", "", &root).status, 400);
  // The agent does not answer: the session cannot end, so the user is kept and nothing is removed.
  link_->unreachable = true;
  auto refused = call("DELETE", "/api/v1/users/alice?delete_profiles=true", "", &root);
  EXPECT_EQ(refused.status, 409) << refused.raw.body;
  EXPECT_TRUE(repo.get<User>("alice").ok());
  EXPECT_EQ(link_->removed_profiles.size(), 1u);
  link_->unreachable = false;
  auto deleted = call("DELETE", "/api/v1/users/alice?delete_profiles=true", "", &root);
  ASSERT_EQ(deleted.status, 200) << deleted.raw.body;
  EXPECT_EQ(repo.get<User>("alice").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(deleted.obj().at("user_id").as_string(), "alice");
  const auto& removed = deleted.obj().at("removed").as_array();
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].at("profile").as_string(), "kasm-home-alice");
  EXPECT_EQ(removed[0].at("agent_id").as_string(), "a1");
  EXPECT_TRUE(deleted.obj().at("failed").as_array().empty());
  EXPECT_EQ(link_->removed_profiles, (std::vector<std::string>{"kasm-home-alice", "kasm-home-alice"}));
  EXPECT_EQ(link_->count(), 0u);
  // Without the flag: 204, and the profiles stay.
  EXPECT_EQ(call("DELETE", "/api/v1/users/bob", "", &root).status, 204);
  EXPECT_EQ(link_->removed_profiles.size(), 2u);
}

}  // namespace
}  // namespace kasm::api
