// The Kasm-compatible developer API over the manager, the in-memory store and a fake agent link.

#include "kasm/api/developer_api.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <thread>

#include "fake_agent_link.hpp"
#include "kasm/api/session_access.hpp"
#include "kasm/auth/password.hpp"
#include "kasm/auth/secret.hpp"
#include "kasm/kasm.hpp"

namespace kasm::api {
namespace {

namespace json = boost::json;

class DeveloperApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = makeMemoryStore();
    Repository repo(*store_);
    manager_ = std::make_unique<Manager>(*store_, clock_, random_);
    ASSERT_TRUE(manager_->start().ok());
    Zone z;
    z.id = ZoneId("east");
    z.name = "East";
    ASSERT_TRUE(manager_->upsertZone(z).ok());
    Workspace w;
    w.id = WorkspaceId("desktop");
    w.friendly_name = "Desktop";
    w.image = "desktop:1";
    w.resources = Resources::fromCores(1, kGiB);
    ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
    Group g;
    g.id = GroupId("all");
    g.name = "All Users";
    g.settings.max_sessions_per_user = 0;
    g.settings.default_workspace = w.id;
    ASSERT_TRUE(repo.insert(g).ok());
    Group admins;
    admins.id = GroupId("admins");
    admins.name = "Admins";
    ASSERT_TRUE(repo.insert(admins).ok());
    User u;
    u.id = UserId("alice");
    u.username = "alice";
    u.group_ids = {g.id};
    ASSERT_TRUE(repo.insert(u).ok());
    ASSERT_EQ(
        testing::connectFakeAgent(*manager_, link_, "a1", z.id, Resources::fromCores(16, 16 * kGiB), {"desktop:1"}),
        "");
    addKey("admin-key", "admin-secret", {"admin"}, false);
    addKey("sessions-key", "sessions-secret", {"sessions:manage"}, false);
    addKey("ro-key", "ro-secret", {"admin"}, true);
    api_ = std::make_unique<DeveloperApi>(*manager_, *store_, clock_, signer_);
  }

  void addKey(const std::string& key, const std::string& secret, std::set<std::string> perms, bool read_only) {
    ApiKey k;
    k.id = ApiKeyId("id-" + key);
    k.name = key;
    k.key = key;
    k.secret_hash = auth::hashSecret(secret);
    k.permissions = std::move(perms);
    k.read_only = read_only;
    ASSERT_TRUE(Repository(*store_).insert(k).ok());
  }

  // Calls a verb with the admin key unless the body carries its own credentials.
  std::pair<int, json::object> call(const std::string& verb, json::object body, const std::string& key = "admin-key",
                                    const std::string& secret = "admin-secret") {
    if (!body.contains("api_key")) {
      body["api_key"] = key;
      body["api_key_secret"] = secret;
    }
    auto r = api_->handle(verb, json::serialize(body));
    auto parsed = json::parse(r.body);
    return {r.status, parsed.as_object()};
  }

  static constexpr std::int64_t kGiB = Resources::kGiB;
  ManualClock clock_;
  SeededRandom random_{4};
  std::unique_ptr<spi::Store> store_;
  std::unique_ptr<Manager> manager_;
  std::shared_ptr<testing::FakeAgentLink> link_ = std::make_shared<testing::FakeAgentLink>();
  auth::AccessTokenSigner signer_ = *auth::AccessTokenSigner::create(std::string(40, 's'), clock_);
  std::unique_ptr<DeveloperApi> api_;
};

TEST_F(DeveloperApiTest, SessionLifecycleThroughTheApi) {
  auto [status, out] = call("request_kasm", {{"user_id", "alice"}, {"image_id", "desktop"}});
  ASSERT_EQ(status, 200) << json::serialize(out);
  const std::string kasm_id(out["kasm_id"].as_string());
  EXPECT_EQ(out["status"].as_string(), "running");
  EXPECT_EQ(out["username"].as_string(), "alice");
  const std::string url(out["kasm_url"].as_string());
  EXPECT_EQ(url.rfind("/desktop/" + kasm_id + "/?token=", 0), 0u);
  auto claims = signer_.verifyFor(std::string(out["session_token"].as_string()), SessionId(kasm_id));
  ASSERT_TRUE(claims.ok());
  EXPECT_EQ(claims->user_id, UserId("alice"));

  auto [s2, st] = call("get_kasm_status", {{"kasm_id", kasm_id}, {"user_id", "alice"}});
  ASSERT_EQ(s2, 200);
  EXPECT_EQ(st["operational_status"].as_string(), "running");
  EXPECT_EQ(st["kasm"].as_object().at("container_id").as_string(), "c-" + kasm_id);

  clock_.advance(std::chrono::minutes(1));
  EXPECT_EQ(call("keepalive", {{"kasm_id", kasm_id}}).first, 200);
  auto [s3, list] = call("get_kasms", {});
  ASSERT_EQ(s3, 200);
  EXPECT_EQ(list["kasms"].as_array().size(), 1u);
  auto [s4, exec] = call("exec_command_kasm", {{"kasm_id", kasm_id}, {"exec_config", {{"cmd", "echo hi"}}}});
  ASSERT_EQ(s4, 200) << json::serialize(exec);
  EXPECT_EQ(exec["output"].as_string(), "ran: echo hi");

  // Another user's id does not reach this kasm.
  EXPECT_EQ(call("get_kasm_status", {{"kasm_id", kasm_id}, {"user_id", "bob"}}).first, 404);
  EXPECT_EQ(call("destroy_kasm", {{"kasm_id", kasm_id}, {"user_id", "alice"}}).first, 200);
  EXPECT_EQ(manager_->getSession(SessionId(kasm_id))->state, SessionState::kDestroyed);
  EXPECT_EQ(link_->count(), 0u);
}

TEST_F(DeveloperApiTest, DefaultsAnonymousUsersAndBasicAuth) {
  // No image_id: the group's default workspace. No user_id: an anonymous user is made.
  auto [status, out] = call("request_kasm", {});
  ASSERT_EQ(status, 200) << json::serialize(out);
  EXPECT_EQ(std::string(out["username"].as_string()).rfind("anonymous-", 0), 0u);
  // HTTP Basic credentials instead of body fields: base64("admin-key:admin-secret").
  auto r = api_->handle("get_images", "{}", "Basic YWRtaW4ta2V5OmFkbWluLXNlY3JldA==");
  EXPECT_EQ(r.status, 200) << r.body;
  auto images = json::parse(r.body).as_object()["images"].as_array();
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0].as_object().at("image_id").as_string(), "desktop");
}

TEST_F(DeveloperApiTest, AuthenticationAndAuthorization) {
  EXPECT_EQ(api_->handle("get_kasms", "{}").status, 401);
  EXPECT_EQ(call("get_kasms", {}, "admin-key", "wrong").first, 401);
  EXPECT_EQ(call("get_kasms", {}, "nobody", "x").first, 401);
  auto [s1, e1] = call("get_kasms", {}, "admin-key", "wrong");
  EXPECT_EQ(e1["error_message"].as_string(), "invalid api_key or api_key_secret");
  // Read-only keys read but do not write.
  EXPECT_EQ(call("get_kasms", {}, "ro-key", "ro-secret").first, 200);
  EXPECT_EQ(call("request_kasm", {{"user_id", "alice"}}, "ro-key", "ro-secret").first, 403);
  // A sessions key cannot manage users.
  EXPECT_EQ(call("get_kasms", {}, "sessions-key", "sessions-secret").first, 200);
  EXPECT_EQ(call("create_user", {{"target_user", {{"username", "eve"}}}}, "sessions-key", "sessions-secret").first,
            403);
  // Expired and disabled keys stop working.
  Repository repo(*store_);
  auto k = repo.get<ApiKey>("id-admin-key");
  k->value.expires_at = clock_.now() + std::chrono::minutes(1);
  ASSERT_TRUE(repo.update(k->value, k->version).ok());
  EXPECT_EQ(call("get_kasms", {}).first, 200);
  clock_.advance(std::chrono::minutes(2));
  auto [s2, e2] = call("get_kasms", {});
  EXPECT_EQ(s2, 401);
  EXPECT_NE(std::string(e2["error_message"].as_string()).find("expired"), std::string::npos);
}

TEST_F(DeveloperApiTest, BadInputGetsClearErrors) {
  auto bad = [&](std::string_view verb, std::string_view body) { return api_->handle(verb, body); };
  EXPECT_EQ(bad("request_kasm", "{not json").status, 400);
  EXPECT_EQ(bad("request_kasm", "[1,2]").status, 400);
  EXPECT_EQ(bad("no_such_verb", "{}").status, 404);
  auto wrong_type = call("request_kasm", {{"user_id", 5}});
  EXPECT_EQ(wrong_type.first, 400);
  EXPECT_EQ(wrong_type.second["error_message"].as_string(), "user_id must be a string");
  EXPECT_EQ(call("request_kasm", {{"user_id", "ghost"}}).first, 404);
  EXPECT_EQ(call("request_kasm", {{"user_id", "alice"}, {"image_id", "../etc"}}).first, 400);
  EXPECT_EQ(call("get_kasm_status", {}).first, 400);
  EXPECT_EQ(call("get_kasm_status", {{"kasm_id", "nope"}}).first, 404);
  EXPECT_EQ(call("exec_command_kasm", {{"kasm_id", "nope"}, {"exec_config", {{"cmd", 3}}}}).first, 404);
  const std::string huge(2 * 1024 * 1024, ' ');
  EXPECT_EQ(bad("get_kasms", huge).status, 400);
  EXPECT_TRUE(manager_->listSessions()->empty());  // Nothing was created by any of it.
}

TEST_F(DeveloperApiTest, UserManagement) {
  auto [s1, created] =
      call("create_user",
           {{"target_user", {{"username", "bob@example.com"}, {"first_name", "Bob"}, {"password", "s3cret-pass"}}}});
  ASSERT_EQ(s1, 200) << json::serialize(created);
  const std::string bob_id(created["user"].as_object().at("user_id").as_string());
  EXPECT_EQ(created["user"].as_object().at("groups").as_array().size(), 1u);  // Joined "All Users".
  auto stored = Repository(*store_).get<User>(bob_id);
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(auth::verifyPassword("s3cret-pass", stored->value.password_hash));
  EXPECT_EQ(stored->value.password_hash.find("s3cret"), std::string::npos);

  EXPECT_EQ(call("create_user", {{"target_user", {{"username", "bob@example.com"}}}}).first, 409);
  auto [s2, got] = call("get_user", {{"target_user", {{"username", "bob@example.com"}}}});
  ASSERT_EQ(s2, 200);
  EXPECT_EQ(got["user"].as_object().at("first_name").as_string(), "Bob");
  EXPECT_EQ(call("update_user", {{"target_user", {{"user_id", bob_id}, {"last_name", "Builder"}}}}).first, 200);
  EXPECT_EQ(Repository(*store_).get<User>(bob_id)->value.last_name, "Builder");
  EXPECT_EQ(call("add_user_group", {{"target_user", {{"user_id", bob_id}}}, {"target_group", {{"group_id", "admins"}}}})
                .first,
            200);
  EXPECT_EQ(Repository(*store_).get<User>(bob_id)->value.group_ids.size(), 2u);
  EXPECT_EQ(
      call("remove_user_group", {{"target_user", {{"user_id", bob_id}}}, {"target_group", {{"group_id", "admins"}}}})
          .first,
      200);
  EXPECT_EQ(Repository(*store_).get<User>(bob_id)->value.group_ids.size(), 1u);
  EXPECT_EQ(
      call("add_user_group", {{"target_user", {{"user_id", bob_id}}}, {"target_group", {{"group_id", "nope"}}}}).first,
      404);
  auto [s3, users] = call("get_users", {});
  ASSERT_EQ(s3, 200);
  EXPECT_EQ(users["users"].as_array().size(), 2u);

  // A user with a session is deleted only with force, and their session goes with them.
  ASSERT_EQ(call("request_kasm", {{"user_id", bob_id}}).first, 200);
  EXPECT_EQ(call("delete_user", {{"target_user", {{"user_id", bob_id}}}}).first, 409);
  EXPECT_EQ(call("delete_user", {{"target_user", {{"user_id", bob_id}}}, {"force", true}}).first, 200);
  EXPECT_EQ(Repository(*store_).get<User>(bob_id).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(link_->count(), 0u);
}

}  // namespace
}  // namespace kasm::api

namespace kasm::api {
namespace {

TEST_F(DeveloperApiTest, WithABackgroundExecutorRequestKasmAnswersStartingAndStatusShowsProgress) {
  std::vector<std::thread> threads;
  DeveloperApiOptions options;
  options.background = [&](std::function<void()> task) {
    threads.emplace_back(std::move(task));
    return true;
  };
  api_ = std::make_unique<DeveloperApi>(*manager_, *store_, clock_, signer_, options);
  auto [status, out] = call("request_kasm", {{"user_id", "alice"}, {"image_id", "desktop"}});
  ASSERT_EQ(status, 200) << json::serialize(out);
  EXPECT_EQ(out["status"].as_string(), "starting");
  const std::string kasm_id(out["kasm_id"].as_string());
  for (auto& t : threads) t.join();
  auto [s2, st] = call("get_kasm_status", {{"user_id", "alice"}, {"kasm_id", kasm_id}});
  ASSERT_EQ(s2, 200) << json::serialize(st);
  EXPECT_EQ(st["operational_status"].as_string(), "running");
  EXPECT_EQ(st["operational_progress"].as_int64(), 100);
  EXPECT_TRUE(st.contains("kasm_url"));
}

}  // namespace
}  // namespace kasm::api

// ---- the same rules as REST (issue 13) ----------------------------------------------------------

namespace kasm::api {
namespace {

class DeveloperApiSecurityTest : public DeveloperApiTest {
 protected:
  void SetUp() override {
    DeveloperApiTest::SetUp();
    Repository repo(*store_);
    Group root_group;
    root_group.id = GroupId("root-group");
    root_group.name = "Administrators";
    root_group.permissions = {"admin"};
    ASSERT_TRUE(repo.insert(root_group).ok());
    User root;
    root.id = UserId("root");
    root.username = "root";
    root.group_ids = {GroupId("all"), root_group.id};
    ASSERT_TRUE(repo.insert(root).ok());
    addKey("users-key", "users-secret", {"users:manage"}, false);
    DeveloperApiOptions options;
    options.on_access_revoked = [this](const UserId& u) { revoked_.push_back(u.str()); };
    api_ = std::make_unique<DeveloperApi>(*manager_, *store_, clock_, signer_, options);
  }

  int asUsersKey(const std::string& verb, json::object body) {
    return call(verb, std::move(body), "users-key", "users-secret").first;
  }

  std::vector<std::string> revoked_;
};

TEST_F(DeveloperApiSecurityTest, UsersManageKeysCannotEscalate) {
  const json::object to_admins = {{"target_user", {{"user_id", "alice"}}},
                                  {"target_group", {{"group_id", "root-group"}}}};
  EXPECT_EQ(asUsersKey("add_user_group", to_admins), 403) << "no joining a group with more permissions";
  EXPECT_EQ(Repository(*store_).get<User>("alice")->value.group_ids.size(), 1u);
  EXPECT_EQ(asUsersKey("update_user", {{"target_user", {{"user_id", "root"}, {"password", "owned-by-key"}}}}), 403);
  EXPECT_EQ(asUsersKey("update_user", {{"target_user", {{"user_id", "root"}, {"disabled", true}}}}), 403);
  EXPECT_EQ(asUsersKey("logout_user", {{"target_user", {{"user_id", "root"}}}}), 403);
  EXPECT_EQ(asUsersKey("delete_user", {{"target_user", {{"user_id", "root"}}}}), 403);
  EXPECT_EQ(asUsersKey("remove_user_group",
                       {{"target_user", {{"user_id", "root"}}}, {"target_group", {{"group_id", "root-group"}}}}),
            403);
  auto root = Repository(*store_).get<User>("root")->value;
  EXPECT_TRUE(root.password_hash.empty());
  EXPECT_FALSE(root.disabled);
  // Ordinary users and groups within the key's own permissions are fine.
  EXPECT_EQ(asUsersKey("update_user", {{"target_user", {{"user_id", "alice"}, {"password", "reset-by-key"}}}}), 200);
  EXPECT_EQ(asUsersKey("add_user_group",
                       {{"target_user", {{"user_id", "alice"}}}, {"target_group", {{"group_id", "admins"}}}}),
            200);
  // The admin key may do all of it.
  EXPECT_EQ(call("add_user_group", to_admins).first, 200);
}

TEST_F(DeveloperApiSecurityTest, ExecAsAnotherUserOrPrivilegedNeedsAnAdminKey) {
  auto [status, out] = call("request_kasm", {{"user_id", "alice"}, {"image_id", "desktop"}});
  ASSERT_EQ(status, 200);
  const std::string id(out["kasm_id"].as_string());
  auto exec = [&](json::object cfg, const std::string& key, const std::string& secret) {
    return call("exec_command_kasm", {{"kasm_id", id}, {"exec_config", std::move(cfg)}}, key, secret).first;
  };
  EXPECT_EQ(exec({{"cmd", "id"}, {"privileged", true}}, "sessions-key", "sessions-secret"), 403);
  EXPECT_EQ(exec({{"cmd", "id"}, {"user", "root"}}, "sessions-key", "sessions-secret"), 403);
  EXPECT_EQ(exec({{"cmd", "id"}}, "sessions-key", "sessions-secret"), 200);
  EXPECT_EQ(exec({{"cmd", "id"}, {"privileged", true}, {"user", "root"}}, "admin-key", "admin-secret"), 200);
}

TEST_F(DeveloperApiSecurityTest, SessionTokensGoOnlyToTheOwnersSideAndNeverToReadOnlyKeys) {
  auto [status, out] = call("request_kasm", {{"user_id", "alice"}, {"image_id", "desktop"}});
  ASSERT_EQ(status, 200);
  const std::string id(out["kasm_id"].as_string());
  auto ro = call("get_kasm_status", {{"kasm_id", id}, {"user_id", "alice"}}, "ro-key", "ro-secret");
  ASSERT_EQ(ro.first, 200);
  EXPECT_FALSE(ro.second.contains("kasm_url"));
  EXPECT_EQ(json::serialize(ro.second).find("token"), std::string::npos);
  EXPECT_FALSE(call("get_kasm_status", {{"kasm_id", id}}).second.contains("kasm_url"))
      << "a call that does not act for the owner gets no desktop";
  auto owner = call("get_kasm_status", {{"kasm_id", id}, {"user_id", "alice"}});
  ASSERT_TRUE(owner.second.contains("kasm_url"));
  const std::string url(owner.second["kasm_url"].as_string());
  EXPECT_EQ(signer_.verifyFor(url.substr(url.find("token=") + 6), SessionId(id))->user_id, UserId("alice"));
}

TEST_F(DeveloperApiSecurityTest, LogoutUserAndANewPasswordRevokeLoginsAndDesktops) {
  auto [status, out] = call("request_kasm", {{"user_id", "alice"}, {"image_id", "desktop"}});
  ASSERT_EQ(status, 200);
  const std::string id(out["kasm_id"].as_string());
  const std::string token(out["session_token"].as_string());
  auto open = [&](const std::string& t) {
    return authorizeSessionAccess(*manager_, *store_, signer_, t, SessionId(id));
  };
  ASSERT_TRUE(open(token).ok());
  clock_.advance(std::chrono::seconds(1));
  ASSERT_EQ(call("logout_user", {{"target_user", {{"user_id", "alice"}}}}).first, 200);
  EXPECT_TRUE(Repository(*store_).get<User>("alice")->value.revokedAt(clock_.now()));
  EXPECT_FALSE(open(token).ok());
  EXPECT_EQ(revoked_, std::vector<std::string>{"alice"});

  clock_.advance(std::chrono::seconds(1));
  auto status2 = call("get_kasm_status", {{"kasm_id", id}, {"user_id", "alice"}});
  const std::string url(status2.second["kasm_url"].as_string());
  const std::string fresh = url.substr(url.find("token=") + 6);
  ASSERT_TRUE(open(fresh).ok());
  clock_.advance(std::chrono::seconds(1));
  ASSERT_EQ(call("update_user", {{"target_user", {{"user_id", "alice"}, {"password", "brand-new-pass"}}}}).first, 200);
  EXPECT_FALSE(open(fresh).ok()) << "a new password ends the old logins";
  EXPECT_EQ(revoked_.size(), 2u);
}

TEST_F(DeveloperApiSecurityTest, DisablingAUserStopsTheirSessionsAndTheirKeys) {
  addKey("alices-key", "alices-secret", {"sessions:manage"}, false);
  auto k = Repository(*store_).get<ApiKey>("id-alices-key");
  k->value.owner = UserId("alice");
  ASSERT_TRUE(Repository(*store_).update(k->value, k->version).ok());
  EXPECT_EQ(call("get_kasms", {}, "alices-key", "alices-secret").first, 200);
  auto [status, out] = call("request_kasm", {{"user_id", "alice"}, {"image_id", "desktop"}});
  ASSERT_EQ(status, 200);
  ASSERT_EQ(call("update_user", {{"target_user", {{"user_id", "alice"}, {"disabled", true}}}}).first, 200);
  EXPECT_EQ(manager_->getSession(SessionId(std::string(out["kasm_id"].as_string())))->state, SessionState::kDestroyed);
  EXPECT_EQ(call("get_kasms", {}, "alices-key", "alices-secret").first, 401);
  EXPECT_EQ(revoked_, std::vector<std::string>{"alice"});
}

TEST_F(DeveloperApiSecurityTest, UsersGetOnlyWorkspacesAssignedToTheirGroups) {
  const json::object req = {{"user_id", "alice"}, {"image_id", "desktop"}};
  EXPECT_EQ(call("request_kasm", req, "sessions-key", "sessions-secret").first, 404) << "desktop has no group yet";
  Workspace w = Repository(*store_).get<Workspace>("desktop")->value;
  w.group_ids = {GroupId("all")};
  ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
  EXPECT_EQ(call("request_kasm", req, "sessions-key", "sessions-secret").first, 200);
}

}  // namespace
}  // namespace kasm::api

namespace kasm::api {
namespace {

// The request_kasm fields Kasm clients send: the browser's language and time zone reach the
// container as LANG and TZ (explicit environment wins), connection_info is accepted, a profile mode
// the workspace cannot serve is refused with a clear message, and malformed values are refused
// before anything runs.
TEST_F(DeveloperApiTest, RequestKasmTakesKasmsClientFields) {
  auto [status, out] = call("request_kasm", {{"user_id", "alice"},
                                             {"image_id", "desktop"},
                                             {"client_language", "pt-BR"},
                                             {"client_timezone", "America/Sao_Paulo"},
                                             {"connection_info", json::object{}},
                                             {"persistent_profile_mode", "Disabled"},
                                             {"environment", {{"TZ", "UTC"}, {"APP_MODE", "kiosk"}}}});
  ASSERT_EQ(status, 200) << json::serialize(out);
  const auto env = link_->environmentOf(SessionId(std::string(out["kasm_id"].as_string())));
  EXPECT_EQ(env.at("LANG"), "pt_BR.UTF-8");
  EXPECT_EQ(env.at("TZ"), "UTC");
  EXPECT_EQ(env.at("APP_MODE"), "kiosk");

  const std::size_t before = link_->count();
  const json::object bad_bodies[] = {
      {{"user_id", "alice"}, {"image_id", "desktop"}, {"client_timezone", "../../etc/passwd"}},
      {{"user_id", "alice"}, {"image_id", "desktop"}, {"client_language", "en US;rm"}},
      {{"user_id", "alice"}, {"image_id", "desktop"}, {"environment", {{"BAD=NAME", "x"}}}},
      {{"user_id", "alice"}, {"image_id", "desktop"}, {"environment", {{"N", 5}}}},
      {{"user_id", "alice"}, {"image_id", "desktop"}, {"connection_info", "not an object"}},
  };
  for (const auto& body : bad_bodies) {
    auto [s, e] = call("request_kasm", body);
    EXPECT_EQ(s, 400) << json::serialize(body) << " -> " << json::serialize(e);
    EXPECT_TRUE(e.contains("error_message"));
  }
  auto [s, e] =
      call("request_kasm", {{"user_id", "alice"}, {"image_id", "desktop"}, {"persistent_profile_mode", "Enabled"}});
  EXPECT_EQ(s, 409);  // FailedPrecondition: valid, but this workspace has no persistent profile.
  EXPECT_NE(std::string(e["error_message"].as_string()).find("has no persistent profile"), std::string::npos)
      << json::serialize(e);
  auto [reset, why] =
      call("request_kasm", {{"user_id", "alice"}, {"image_id", "desktop"}, {"persistent_profile_mode", "Reset"}});
  EXPECT_EQ(reset, 409);  // Reset is taken, but this workspace has no profile to reset.
  EXPECT_NE(std::string(why["error_message"].as_string()).find("has no persistent profile"), std::string::npos)
      << json::serialize(why);
  EXPECT_EQ(link_->count(), before);  // Nothing was started for a refused request.
  EXPECT_TRUE(link_->removed_profiles.empty());
}

// persistent_profile_mode Reset wipes the user's profile before the container starts; delete_user
// with delete_profiles removes the user's profiles too and says what was removed.
TEST_F(DeveloperApiTest, ResetAndDeleteUserWithProfiles) {
  Repository repo(*store_);
  Workspace w = repo.get<Workspace>("desktop")->value;
  w.persistent_profile_path = "/srv/homes/{username}";
  ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
  auto g = repo.get<Group>("all");
  g->value.settings.allow_persistent_profile = true;
  ASSERT_TRUE(repo.update(g->value, g->version).ok());

  auto [status, out] =
      call("request_kasm", {{"user_id", "alice"}, {"image_id", "desktop"}, {"persistent_profile_mode", "Reset"}});
  ASSERT_EQ(status, 200) << json::serialize(out);
  const std::string kasm_id(out["kasm_id"].as_string());
  EXPECT_EQ(link_->events, (std::vector<std::string>{"remove_profile /srv/homes/alice", "provision " + kasm_id}));

  EXPECT_EQ(call("delete_user", {{"target_user", {{"user_id", "alice"}}}, {"delete_profiles", "yes"}}).first, 400);
  // With a live session: refused without force, as before; with force the session ends first.
  EXPECT_EQ(call("delete_user", {{"target_user", {{"user_id", "alice"}}}, {"delete_profiles", true}}).first, 409);
  EXPECT_EQ(link_->removed_profiles.size(), 1u);
  auto [deleted, report] =
      call("delete_user", {{"target_user", {{"user_id", "alice"}}}, {"force", true}, {"delete_profiles", true}});
  ASSERT_EQ(deleted, 200) << json::serialize(report);
  EXPECT_EQ(repo.get<User>("alice").error().code(), ErrorCode::kNotFound);
  const auto& profiles = report["profiles"].as_object();
  ASSERT_EQ(profiles.at("removed").as_array().size(), 1u) << json::serialize(report);
  const auto& entry = profiles.at("removed").as_array()[0].as_object();
  EXPECT_EQ(entry.at("profile").as_string(), "/srv/homes/alice");
  EXPECT_EQ(entry.at("agent_id").as_string(), "a1");
  EXPECT_EQ(entry.at("workspace").as_string(), "Desktop");
  EXPECT_TRUE(profiles.at("failed").as_array().empty());
  EXPECT_EQ(link_->removed_profiles, (std::vector<std::string>{"/srv/homes/alice", "/srv/homes/alice"}));

  // A failing agent is reported, never hidden; without delete_profiles nothing is removed.
  User bob;
  bob.id = UserId("bob");
  bob.username = "bob";
  ASSERT_TRUE(repo.insert(bob).ok());
  link_->fail_remove_profile = "read-only file system";
  auto [s2, failing] = call("delete_user", {{"target_user", {{"user_id", "bob"}}}, {"delete_profiles", true}});
  ASSERT_EQ(s2, 200) << json::serialize(failing);
  const auto& failed = failing["profiles"].as_object().at("failed").as_array();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_NE(std::string(failed[0].as_object().at("error").as_string()).find("read-only file system"),
            std::string::npos);
  User carol;
  carol.id = UserId("carol");
  carol.username = "carol";
  ASSERT_TRUE(repo.insert(carol).ok());
  link_->fail_remove_profile.clear();
  auto [s3, plain] = call("delete_user", {{"target_user", {{"user_id", "carol"}}}});
  EXPECT_EQ(s3, 200);
  EXPECT_FALSE(plain.contains("profiles"));
  EXPECT_EQ(link_->removed_profiles.size(), 2u);
}

TEST_F(DeveloperApiTest, UserAttributesReadAndWrite) {
  auto [s1, got] = call("get_attributes", {{"target_user", {{"user_id", "alice"}}}});
  ASSERT_EQ(s1, 200) << json::serialize(got);
  EXPECT_EQ(got["user_attributes"].as_object().at("show_tips"), true);
  EXPECT_EQ(got["user_attributes"].as_object().at("default_image"), nullptr);

  auto [s2, set] = call("update_user_attributes", {{"target_user_attributes",
                                                    {{"user_id", "alice"},
                                                     {"show_tips", false},
                                                     {"default_image", "desktop"},
                                                     {"auto_login_kasm", true},
                                                     {"preferred_timezone", "Europe/Paris"},
                                                     {"ssh_public_key", "ssh-ed25519 AAAAC3Nza alice@laptop"}}}});
  ASSERT_EQ(s2, 200) << json::serialize(set);
  auto stored = Repository(*store_).get<User>("alice");
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->value.attributes.show_tips);
  EXPECT_EQ(stored->value.attributes.default_image, WorkspaceId("desktop"));
  EXPECT_EQ(stored->value.attributes.preferred_timezone, "Europe/Paris");
  EXPECT_EQ(call("get_attributes", {{"target_user", {{"user_id", "alice"}}}})
                .second["user_attributes"]
                .as_object()
                .at("auto_login_kasm"),
            true);

  // Bad values change nothing; unknown users and images are NotFound; a read-only key cannot write.
  EXPECT_EQ(call("update_user_attributes",
                 {{"target_user_attributes", {{"user_id", "alice"}, {"preferred_timezone", "/etc/shadow"}}}})
                .first,
            400);
  EXPECT_EQ(
      call("update_user_attributes", {{"target_user_attributes", {{"user_id", "alice"}, {"show_tips", "no"}}}}).first,
      400);
  EXPECT_EQ(
      call("update_user_attributes", {{"target_user_attributes", {{"user_id", "alice"}, {"default_image", "nope"}}}})
          .first,
      404);
  EXPECT_EQ(call("get_attributes", {{"target_user", {{"user_id", "nobody"}}}}).first, 404);
  EXPECT_EQ(call("update_user_attributes", {{"target_user_attributes", {{"user_id", "alice"}, {"chat_sfx", false}}}},
                 "ro-key", "ro-secret")
                .first,
            403);
  EXPECT_EQ(Repository(*store_).get<User>("alice")->value.attributes.preferred_timezone, "Europe/Paris");
  EXPECT_TRUE(Repository(*store_).get<User>("alice")->value.attributes.chat_sfx);
}

// Verbs of Kasm's API that come with later capabilities answer "not supported" (501) to an
// authenticated caller, 401 to anyone else; never an unknown-call 404.
TEST_F(DeveloperApiTest, PlannedVerbsAnswerNotSupported) {
  for (const char* verb : {"get_kasm_screenshot", "get_kasm_frame_stats"}) {
    auto [s, e] = call(verb, {});
    EXPECT_EQ(s, 501) << verb;
    EXPECT_NE(std::string(e["error_message"].as_string()).find("not supported"), std::string::npos) << verb;
    EXPECT_EQ(call(verb, {{"api_key", "admin-key"}, {"api_key_secret", "wrong"}}).first, 401) << verb;
  }
  EXPECT_EQ(call("no_such_verb", {}).first, 404);
}

}  // namespace
}  // namespace kasm::api

namespace kasm::api {
namespace {

// request_kasm without a user_id makes an anonymous user; a request refused after that (an unknown
// image, a refused profile mode) leaves no user behind, and an accepted one keeps it.
TEST_F(DeveloperApiTest, RefusedAnonymousRequestsLeaveNoUserBehind) {
  Repository repo(*store_);
  const auto users_before = *repo.count<User>();
  EXPECT_EQ(call("request_kasm", {{"image_id", "no-such-image"}}).first, 404);
  EXPECT_EQ(*repo.count<User>(), users_before);
  auto [status, out] = call("request_kasm", {{"image_id", "desktop"}});
  ASSERT_EQ(status, 200) << json::serialize(out);
  EXPECT_EQ(*repo.count<User>(), users_before + 1);
  EXPECT_TRUE(repo.get<User>(std::string(out["user_id"].as_string())).ok());
}

}  // namespace
}  // namespace kasm::api
