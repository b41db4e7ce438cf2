#pragma once

// The REST API test fixture: the API over the manager, the in-memory store and a fake agent link,
// with users alice and bob (All Users: sessions:launch) and root (also Administrators: admin), a
// read-only admin key, and a call() that checks every answer against the API's OpenAPI document.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "../support/openapi_validator.hpp"
#include "fake_agent_link.hpp"
#include "kasm/api/rest_api.hpp"
#include "kasm/auth/password.hpp"
#include "kasm/auth/secret.hpp"
#include "kasm/kasm.hpp"

namespace kasm::api::testing_rest {

namespace json = boost::json;

struct Reply {
  int status = 0;
  json::value body;
  RestResponse raw;
  std::string header(std::string_view name) const {
    for (const auto& [k, v] : raw.headers) {
      if (k == name) return v;
    }
    return {};
  }
  const json::object& obj() const { return body.as_object(); }
};

// A browser: keeps the login cookie and the CSRF token like the web application does.
struct Browser {
  std::string cookie;
  std::string csrf;
};

class RestApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = makeMemoryStore();
    Repository repo(*store_);
    ManagerOptions mo;
    mo.license = license::LicensePolicy::unlimited();
    manager_ = std::make_unique<Manager>(*store_, clock_, random_, mo);
    ASSERT_TRUE(manager_->start().ok());
    Zone z;
    z.id = ZoneId("east");
    z.name = "East";
    ASSERT_TRUE(manager_->upsertZone(z).ok());
    Workspace w;
    w.id = WorkspaceId("desktop");
    w.friendly_name = "Desktop";
    w.image = "desktop:1";
    w.resources = Resources::fromCores(1, Resources::kGiB);
    w.group_ids = {GroupId("all")};
    ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
    w.id = WorkspaceId("hidden");
    w.enabled = false;
    ASSERT_TRUE(manager_->upsertWorkspace(w).ok());

    Group all;
    all.id = GroupId("all");
    all.name = "All Users";
    all.permissions = {"sessions:launch"};
    all.settings.max_sessions_per_user = 0;
    ASSERT_TRUE(repo.insert(all).ok());
    Group admins;
    admins.id = GroupId("admins");
    admins.name = "Administrators";
    admins.permissions = {"admin"};
    ASSERT_TRUE(repo.insert(admins).ok());
    addUser("alice", {all.id});
    addUser("bob", {all.id});
    addUser("root", {all.id, admins.id});

    ASSERT_EQ(testing::connectFakeAgent(*manager_, link_, "a1", z.id, Resources::fromCores(16, 16 * Resources::kGiB),
                                        {"desktop:1"}),
              "");

    ApiKey k;
    k.id = ApiKeyId("ro");
    k.name = "read-only";
    k.key = "ro-key";
    k.secret_hash = auth::hashSecret("ro-secret");
    k.permissions = {"admin"};
    k.read_only = true;
    ASSERT_TRUE(repo.insert(k).ok());

    RestApiOptions options;
    options.login_limits.max_failures_per_user_at_address = 3;
    api_ = std::make_unique<RestApi>(*manager_, *store_, clock_, signer_, web_signer_, options);
    validator_ = std::make_unique<testing::OpenApiValidator>(api_->openApiDocument());
  }

  void addUser(const std::string& name, std::vector<GroupId> groups) {
    User u;
    u.id = UserId(name);
    u.username = name;
    u.password_hash = *auth::hashPassword(name + "-password", {.log2_n = 10});
    u.group_ids = std::move(groups);
    ASSERT_TRUE(Repository(*store_).insert(u).ok());
  }

  Reply call(const std::string& method, const std::string& path, const std::string& body = "",
             const Browser* browser = nullptr, std::string authorization = {}, bool with_csrf = true) {
    RestRequest req;
    req.method = method;
    const auto q = path.find('?');
    req.path = path.substr(0, q);
    if (q != std::string::npos) {
      std::string_view rest = std::string_view(path).substr(q + 1);
      while (!rest.empty()) {
        auto amp = rest.find('&');
        auto part = rest.substr(0, amp);
        auto eq = part.find('=');
        req.query.emplace_back(std::string(part.substr(0, eq)),
                               eq == std::string_view::npos ? "" : std::string(part.substr(eq + 1)));
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
      }
    }
    req.body = body;
    req.content_type = content_type_;
    req.idempotency_key = idempotency_key_;
    req.remote_address = remote_address_;
    req.authorization = std::move(authorization);
    if (browser) {
      req.cookie_token = browser->cookie;
      if (with_csrf) req.csrf_token = browser->csrf;
    }
    Reply r;
    r.raw = api_->handle(req);
    r.status = r.raw.status;
    if (!r.raw.body.empty()) r.body = json::parse(r.raw.body);
    std::string problem = validator_->check(method, req.path, r.status, r.raw.body);
    if (r.status == 404 && problem.starts_with("no operation")) problem.clear();  // Unknown routes.
    EXPECT_EQ(problem, "") << method << " " << path << " -> " << r.status << " " << r.raw.body;
    return r;
  }

  Browser login(const std::string& user) {
    Browser b;
    auto r = call("POST", "/api/v1/auth/login",
                  json::serialize(json::object{{"username", user}, {"password", user + "-password"}}));
    EXPECT_EQ(r.status, 200) << r.raw.body;
    const std::string set_cookie = r.header("Set-Cookie");
    EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos);
    EXPECT_NE(set_cookie.find("SameSite=Strict"), std::string::npos);
    b.cookie = set_cookie.substr(set_cookie.find('=') + 1, set_cookie.find(';') - set_cookie.find('=') - 1);
    if (r.body.is_object()) b.csrf = std::string(r.obj().at("csrf_token").as_string());
    return b;
  }

  // Adds an API key and answers its "Bearer key:secret" header.
  std::string addKey(const std::string& name, std::set<std::string> perms, std::optional<UserId> owner,
                     bool read_only = false) {
    ApiKey k;
    k.id = ApiKeyId("k-" + name);
    k.name = name;
    k.key = name + "-key";
    k.secret_hash = auth::hashSecret(name + "-secret");
    k.permissions = std::move(perms);
    k.owner = std::move(owner);
    k.read_only = read_only;
    EXPECT_TRUE(Repository(*store_).insert(k).ok());
    return "Bearer " + k.key + ":" + name + "-secret";
  }

  std::string remote_address_ = "127.0.0.1";
  std::string content_type_ = "application/json";
  std::string idempotency_key_;  // Sent as the Idempotency-Key header.
  ManualClock clock_;
  SeededRandom random_{7};
  std::unique_ptr<spi::Store> store_;
  std::unique_ptr<Manager> manager_;
  std::shared_ptr<testing::FakeAgentLink> link_ = std::make_shared<testing::FakeAgentLink>();
  auth::AccessTokenSigner signer_ = *auth::AccessTokenSigner::create(std::string(40, 's'), clock_);
  auth::WebSessionSigner web_signer_ = *auth::WebSessionSigner::create(std::string(40, 'w'), clock_);
  std::unique_ptr<RestApi> api_;
  std::unique_ptr<testing::OpenApiValidator> validator_;
};

}  // namespace kasm::api::testing_rest
