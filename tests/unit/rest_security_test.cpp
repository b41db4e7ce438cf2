// Security properties of the REST API (issue 13): no escalation through user management, API keys
// confined to their own permissions and to their owner's state, immediate revocation of logins and
// desktop access, workspaces by group, server state that is not a setting, and the login's
// defences. Each test states an attack and checks that it fails.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "kasm/api/session_access.hpp"
#include "rest_api_fixture.hpp"

namespace kasm::api {
namespace {

using namespace testing_rest;
namespace json = boost::json;

class RestSecurityTest : public RestApiTest {
 protected:
  void SetUp() override {
    RestApiTest::SetUp();
    Repository repo(*store_);
    Group helpdesk;
    helpdesk.id = GroupId("helpdesk");
    helpdesk.name = "Helpdesk";
    helpdesk.permissions = {"users:manage"};
    ASSERT_TRUE(repo.insert(helpdesk).ok());
    addUser("helen", {GroupId("all"), helpdesk.id});
    // The server's hook: who lost access, in order.
    rebuildApi({});
  }

  void rebuildApi(RestApiOptions options) {
    options.login_limits.max_failures_per_user_at_address = 3;
    options.on_access_revoked = [this](const UserId& u) { revoked_.push_back(u.str()); };
    api_ = std::make_unique<RestApi>(*manager_, *store_, clock_, signer_, web_signer_, options);
  }

  std::string body(json::object o) { return json::serialize(o); }

  // Starts a session for `who` and answers its id and access token.
  std::pair<std::string, std::string> startDesktop(const Browser& who) {
    auto started = call("POST", "/api/v1/sessions", body({{"workspace_id", "desktop"}}), &who);
    EXPECT_EQ(started.status, 201) << started.raw.body;
    if (started.status != 201) return {};
    const std::string url(started.obj().at("url").as_string());
    return {std::string(started.obj().at("id").as_string()), url.substr(url.find("token=") + 6)};
  }

  Result<SessionAccess> openDesktop(const std::string& id, const std::string& token) {
    return authorizeSessionAccess(*manager_, *store_, signer_, token, SessionId(id));
  }

  std::vector<std::string> revoked_;
};

// ---- no escalation through user management -----------------------------------------------------

TEST_F(RestSecurityTest, UsersManageCannotTouchAdministratorsOrHandOutPermissionsItLacks) {
  Browser helen = login("helen");
  // An administrator's password, state and existence are out of reach.
  EXPECT_EQ(call("PATCH", "/api/v1/users/root", body({{"password", "owned-by-helen"}}), &helen).status, 403);
  EXPECT_EQ(call("PATCH", "/api/v1/users/root", body({{"disabled", true}}), &helen).status, 403);
  EXPECT_EQ(call("DELETE", "/api/v1/users/root", "", &helen).status, 403);
  login("root");  // Still the old password.
  // Nor can she put anyone, herself included, in a group that carries more than she holds.
  EXPECT_EQ(call("POST", "/api/v1/groups/admins/users/helen", "", &helen).status, 403);
  EXPECT_EQ(
      call("PATCH", "/api/v1/users/helen", body({{"group_ids", json::array{"all", "helpdesk", "admins"}}}), &helen)
          .status,
      403);
  EXPECT_EQ(
      call("POST", "/api/v1/users",
           body({{"username", "mallory"}, {"password", "mallory-password"}, {"group_ids", json::array{"admins"}}}),
           &helen)
          .status,
      403);
  // Ordinary users are hers to manage, and groups within her own permissions hers to hand out.
  EXPECT_EQ(call("PATCH", "/api/v1/users/bob", body({{"password", "reset-by-helen"}}), &helen).status, 200);
  EXPECT_EQ(call("POST", "/api/v1/groups/helpdesk/users/bob", "", &helen).status, 204);
  EXPECT_EQ(Repository(*store_).get<User>("bob")->value.group_ids.size(), 2u);
  // Once bob holds users:manage too he is her peer, still manageable; root never is.
  EXPECT_EQ(call("DELETE", "/api/v1/groups/helpdesk/users/bob", "", &helen).status, 204);
  EXPECT_EQ(call("DELETE", "/api/v1/groups/all/users/root", "", &helen).status, 403);
}

TEST_F(RestSecurityTest, AnApiKeyActsWithinItsOwnPermissionsOnItsOwnerToo) {
  const std::string launch = addKey("launcher", {"sessions:launch"}, UserId("alice"));
  const std::string settings = addKey("settings", {"settings:manage"}, UserId("alice"));
  // A key made to start desktops cannot take over the account that owns it.
  EXPECT_EQ(call("PATCH", "/api/v1/users/alice", body({{"password", "stolen-by-key"}}), nullptr, launch).status, 403);
  EXPECT_EQ(call("PATCH", "/api/v1/users/alice", body({{"first_name", "Mallory"}}), nullptr, launch).status, 403);
  login("alice");
  // It does what it is for: the owner's sessions.
  auto started = call("POST", "/api/v1/sessions", body({{"workspace_id", "desktop"}}), nullptr, launch);
  ASSERT_EQ(started.status, 201) << started.raw.body;
  const std::string id(started.obj().at("id").as_string());
  EXPECT_TRUE(started.obj().contains("url"));
  // A key without a session permission neither lists nor opens its owner's sessions.
  EXPECT_EQ(call("GET", "/api/v1/sessions", "", nullptr, settings).status, 403);
  EXPECT_EQ(call("GET", "/api/v1/sessions/" + id, "", nullptr, settings).status, 403);
  EXPECT_EQ(call("DELETE", "/api/v1/sessions/" + id, "", nullptr, settings).status, 403);
  // A read-only key reads the session but never gets its access token.
  const std::string reader = addKey("reader", {"sessions:launch"}, UserId("alice"), /*read_only=*/true);
  auto read = call("GET", "/api/v1/sessions/" + id, "", nullptr, reader);
  ASSERT_EQ(read.status, 200);
  EXPECT_FALSE(read.obj().contains("url"));
  EXPECT_EQ(read.raw.body.find("token"), std::string::npos);
}

TEST_F(RestSecurityTest, KeysOfDisabledOrDeletedOwnersStopWorking) {
  const std::string key = addKey("bobs", {"sessions:launch"}, UserId("bob"));
  Browser root = login("root");
  EXPECT_EQ(call("GET", "/api/v1/sessions", "", nullptr, key).status, 200);
  ASSERT_EQ(call("PATCH", "/api/v1/users/bob", body({{"disabled", true}}), &root).status, 200);
  EXPECT_EQ(call("GET", "/api/v1/sessions", "", nullptr, key).status, 401);
  ASSERT_EQ(call("PATCH", "/api/v1/users/bob", body({{"disabled", false}}), &root).status, 200);
  EXPECT_EQ(call("GET", "/api/v1/sessions", "", nullptr, key).status, 200);
  ASSERT_EQ(call("PATCH", "/api/v1/users/bob", body({{"locked", true}}), &root).status, 200);
  EXPECT_EQ(call("GET", "/api/v1/sessions", "", nullptr, key).status, 401);
  ASSERT_EQ(call("DELETE", "/api/v1/users/bob", "", &root).status, 204);
  EXPECT_EQ(call("GET", "/api/v1/sessions", "", nullptr, key).status, 401);
}

// ---- revocation is immediate ------------------------------------------------------------------

TEST_F(RestSecurityTest, DisablingAUserEndsTheirLoginsDesktopsAndSessionsAtOnce) {
  Browser alice = login("alice");
  Browser root = login("root");
  auto [id, token] = startDesktop(alice);
  ASSERT_TRUE(openDesktop(id, token).ok());
  ASSERT_EQ(call("PATCH", "/api/v1/users/alice", body({{"disabled", true}}), &root).status, 200);
  EXPECT_EQ(call("GET", "/api/v1/auth/me", "", &alice).status, 403);
  EXPECT_FALSE(openDesktop(id, token).ok());
  // The group's keepalive policy (delete, for All Users) ends the running session.
  EXPECT_EQ(manager_->getSession(SessionId(id))->state, SessionState::kDestroyed);
  EXPECT_EQ(link_->count(), 0u);
  EXPECT_EQ(revoked_, std::vector<std::string>{"alice"}) << "the server is told to cut open connections";
}

TEST_F(RestSecurityTest, LockingEndsLoginsAndDesktopAccess) {
  Browser alice = login("alice");
  Browser root = login("root");
  auto [id, token] = startDesktop(alice);
  ASSERT_EQ(call("PATCH", "/api/v1/users/alice", body({{"locked", true}}), &root).status, 200);
  EXPECT_EQ(call("GET", "/api/v1/auth/me", "", &alice).status, 403);
  auto refused = openDesktop(id, token);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(revoked_, std::vector<std::string>{"alice"});
}

TEST_F(RestSecurityTest, LogoutEverywhereAndANewPasswordRevokeDesktopTokens) {
  Browser alice = login("alice");
  auto [id, token] = startDesktop(alice);
  ASSERT_TRUE(openDesktop(id, token).ok());
  clock_.advance(std::chrono::seconds(1));
  ASSERT_EQ(call("POST", "/api/v1/auth/logout", "", &alice).status, 204);
  auto refused = openDesktop(id, token);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(revoked_, std::vector<std::string>{"alice"});

  // A fresh login gets a fresh token that works, until an administrator sets a new password.
  clock_.advance(std::chrono::seconds(1));
  alice = login("alice");
  auto again = call("GET", "/api/v1/sessions/" + id, "", &alice);
  const std::string url(again.obj().at("url").as_string());
  const std::string fresh = url.substr(url.find("token=") + 6);
  ASSERT_TRUE(openDesktop(id, fresh).ok());
  clock_.advance(std::chrono::seconds(1));
  Browser root = login("root");
  ASSERT_EQ(call("PATCH", "/api/v1/users/alice", body({{"password", "a-new-password"}}), &root).status, 200);
  EXPECT_FALSE(openDesktop(id, fresh).ok());
  EXPECT_EQ(call("GET", "/api/v1/auth/me", "", &alice).status, 401);
  EXPECT_EQ(revoked_.size(), 2u);
}

// ---- workspaces by group ----------------------------------------------------------------------

TEST_F(RestSecurityTest, UsersLaunchOnlyWorkspacesAssignedToTheirGroups) {
  Repository repo(*store_);
  Group lab;
  lab.id = GroupId("lab");
  lab.name = "Lab";
  ASSERT_TRUE(repo.insert(lab).ok());
  auto bob = repo.get<User>("bob");
  bob->value.group_ids.push_back(lab.id);
  ASSERT_TRUE(repo.update(bob->value, bob->version).ok());
  Workspace w = Repository(*store_).get<Workspace>("desktop")->value;
  w.id = WorkspaceId("lab-desktop");
  w.group_ids = {lab.id};
  ASSERT_TRUE(manager_->upsertWorkspace(w).ok());

  Browser alice = login("alice");
  Browser bobs = login("bob");
  Browser root = login("root");
  auto list = call("GET", "/api/v1/workspaces", "", &alice);
  ASSERT_EQ(list.status, 200);
  for (const auto& item : list.obj().at("items").as_array()) EXPECT_NE(item.at("id").as_string(), "lab-desktop");
  EXPECT_EQ(call("GET", "/api/v1/workspaces/lab-desktop", "", &alice).status, 404);
  const std::string launch = body({{"workspace_id", "lab-desktop"}});
  EXPECT_EQ(call("POST", "/api/v1/sessions", launch, &alice).status, 404);
  EXPECT_EQ(call("GET", "/api/v1/workspaces/lab-desktop", "", &bobs).status, 200);
  EXPECT_EQ(call("POST", "/api/v1/sessions", launch, &bobs).status, 201);
  EXPECT_EQ(call("POST", "/api/v1/sessions", launch, &root).status, 201) << "workspace managers launch anything";
  EXPECT_EQ(link_->count(), 2u);
}

TEST_F(RestSecurityTest, OnlyWorkspaceManagersSeeHowContainersAreBuilt) {
  Workspace w = Repository(*store_).get<Workspace>("desktop")->value;
  w.run_config_json = R"({"Env":["DB_PASSWORD=hunter2"]})";
  w.exec_config.first_launch.cmd = "setup.sh";
  w.exec_config.first_launch.environment = {{"TOKEN", "exec-secret"}};
  w.volumes.push_back(VolumeMapping{"/srv/host-secrets", "/secrets"});
  ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
  Browser alice = login("alice");
  Browser root = login("root");
  for (const std::string path : {"/api/v1/workspaces/desktop", "/api/v1/workspaces"}) {
    auto seen = call("GET", path, "", &alice);
    ASSERT_EQ(seen.status, 200);
    for (auto secret : {"hunter2", "exec-secret", "/srv/host-secrets", "run_config_json", "exec_config", "volumes"}) {
      EXPECT_EQ(seen.raw.body.find(secret), std::string::npos) << path << " shows " << secret;
    }
  }
  auto admin_view = call("GET", "/api/v1/workspaces/desktop", "", &root);
  EXPECT_NE(admin_view.raw.body.find("/srv/host-secrets"), std::string::npos);
}

// ---- server state is not a setting ------------------------------------------------------------

TEST_F(RestSecurityTest, SettingsManageCannotRewriteTheServersOwnState) {
  const std::string key = addKey("settings", {"settings:manage"}, std::nullopt);
  auto stored = [&](const std::string& k) {
    auto row = Repository(*store_).get<Setting>(k);
    return row.ok() ? row->value.value : std::string("(none)");
  };
  const std::string in_use = stored("license_sessions_in_use");
  const std::string installation = stored("installation_id");
  for (auto internal : {"installation_id", "license_sessions_in_use", "last_seen_time", "license_user_0123abcd",
                        "local_agent_id", "access_token_key"}) {
    EXPECT_EQ(call("PUT", std::string("/api/v1/settings/") + internal, R"({"value":"0"})", nullptr, key).status, 403)
        << internal;
  }
  EXPECT_EQ(stored("license_sessions_in_use"), in_use);
  EXPECT_EQ(stored("installation_id"), installation);
  EXPECT_EQ(call("PUT", "/api/v1/settings/default_zone", R"({"value":"east"})", nullptr, key).status, 200);
  EXPECT_EQ(call("PUT", "/api/v1/settings/login_banner", R"({"value":"hello"})", nullptr, key).status, 200);
}

// ---- login ------------------------------------------------------------------------------------

TEST_F(RestSecurityTest, LoginTakesJsonOnlySoCrossSiteFormsCannotLogABrowserIn) {
  const std::string creds = body({{"username", "alice"}, {"password", "alice-password"}});
  for (auto type : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""}) {
    content_type_ = type;
    auto r = call("POST", "/api/v1/auth/login", creds);
    EXPECT_EQ(r.status, 400) << type;
    EXPECT_EQ(r.header("Set-Cookie"), "") << type;
  }
  content_type_ = "Application/JSON; charset=utf-8";
  EXPECT_EQ(call("POST", "/api/v1/auth/login", creds).status, 200);
}

TEST_F(RestSecurityTest, UnknownUserNamesCostAPasswordCheckLikeWrongPasswords) {
  std::vector<std::string> checked;
  RestApiOptions options;
  options.verify_password = [&](std::string_view pw, std::string_view phc) {
    checked.emplace_back(phc);
    return auth::verifyPassword(pw, phc);
  };
  rebuildApi(options);
  User nopw;
  nopw.id = UserId("nopw");
  nopw.username = "nopw";
  ASSERT_TRUE(Repository(*store_).insert(nopw).ok());
  for (auto name : {"alice", "nobody-here", "nopw"}) {
    checked.clear();
    auto r = call("POST", "/api/v1/auth/login", body({{"username", name}, {"password", "wrong-password"}}));
    EXPECT_EQ(r.status, 401) << name;
    EXPECT_EQ(r.obj().at("error_message").as_string(), "wrong user name or password");
    ASSERT_EQ(checked.size(), 1u) << name << ": one scrypt check, whether or not the user exists";
  }
  // The stand-in hash costs what a real password of this installation costs.
  const std::string real = *auth::hashPassword("x");
  EXPECT_EQ(checked.back().substr(0, checked.back().find('$', 8)), real.substr(0, real.find('$', 8)));
}

TEST_F(RestSecurityTest, FailedLoginsElsewhereCannotKeepAnAdministratorOut) {
  const std::string wrong = body({{"username", "root"}, {"password", "guess-guess"}});
  remote_address_ = "203.0.113.9";
  for (int i = 0; i < 3; ++i) EXPECT_EQ(call("POST", "/api/v1/auth/login", wrong).status, 401);
  EXPECT_EQ(call("POST", "/api/v1/auth/login", wrong).status, 429) << "the guessing address is slowed down";
  remote_address_ = "10.0.0.2";
  login("root");
}

}  // namespace
}  // namespace kasm::api
