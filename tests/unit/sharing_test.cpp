// Session sharing: the rules of kasm::share::Sharing (who may share, join, watch or control, and
// what ends a share), through the library and through Kasm's developer API verbs.

#include "kasm/share/sharing.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "fake_agent_link.hpp"
#include "kasm/api/developer_api.hpp"
#include "kasm/api/session_access.hpp"
#include "kasm/auth/seal.hpp"
#include "kasm/auth/secret.hpp"
#include "kasm/kasm.hpp"

namespace kasm::share {
namespace {

namespace json = boost::json;

class SharingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ManagerOptions mo;
    mo.license = license::LicensePolicy::unlimited();
    manager_ = std::make_unique<Manager>(*store_, clock_, random_, mo);
    ASSERT_TRUE(manager_->start().ok());
    Zone z;
    z.id = ZoneId("east");
    z.name = "East";
    ASSERT_TRUE(manager_->upsertZone(z).ok());
    Group g;
    g.id = GroupId("all");
    g.name = "All Users";
    g.permissions = {"sessions:launch"};
    g.settings.max_sessions_per_user = 0;
    g.settings.allow_sharing = true;
    ASSERT_TRUE(repo_.insert(g).ok());
    Workspace w;
    w.id = WorkspaceId("desktop");
    w.friendly_name = "Desktop";
    w.image = "desktop:1";
    w.protocol = SessionProtocol::kVnc;
    w.resources = Resources::fromCores(1, Resources::kGiB);
    w.group_ids = {GroupId("all")};
    ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
    for (auto name : {"alice", "bob", "carol"}) {
      User u;
      u.id = UserId(name);
      u.username = name;
      u.group_ids = {GroupId("all")};
      ASSERT_TRUE(repo_.insert(u).ok());
    }
    ASSERT_EQ(testing::connectFakeAgent(*manager_, link_, "a1", ZoneId("east"),
                                        Resources::fromCores(64, 64 * Resources::kGiB), {"desktop:1"}),
              "");
    SessionRequest req;
    req.user_id = UserId("alice");
    req.workspace_id = w.id;
    req.zone_id = ZoneId("east");
    auto s = manager_->requestSession(req);
    ASSERT_TRUE(s.ok()) << s.error().toString();
    ASSERT_EQ(s->state, SessionState::kRunning);
    session_ = s->id;
    sharing_ = std::move(*Sharing::create(*manager_, *store_, clock_, {.secret_key = kKey}));
    sharing_->setListener([this](const ViewerChange& c) { changes_.push_back(c); });
  }

  void setGroup(auto&& edit) {
    auto g = repo_.get<Group>("all");
    ASSERT_TRUE(g.ok());
    edit(g->value.settings);
    ASSERT_TRUE(repo_.update(g->value, g->version).ok());
  }

  Session session() { return *manager_->getSession(session_); }

  const std::string kKey = std::string(40, 'k');
  ManualClock clock_;
  SeededRandom random_{3};
  std::unique_ptr<spi::Store> store_ = makeMemoryStore();
  Repository repo_{*store_};
  std::unique_ptr<Manager> manager_;
  std::shared_ptr<testing::FakeAgentLink> link_ = std::make_shared<testing::FakeAgentLink>();
  std::unique_ptr<Sharing> sharing_;
  SessionId session_;
  std::vector<ViewerChange> changes_;
};

TEST_F(SharingTest, AShareIdHas128RandomBitsAndIsStoredOnlySealedAndHashed) {
  auto id = sharing_->createShare(session_, std::nullopt);
  ASSERT_TRUE(id.ok()) << id.error().toString();
  EXPECT_EQ(id->size(), 32u);
  EXPECT_EQ(id->find_first_not_of("0123456789abcdef"), std::string::npos);
  // Asking again gives the same link; another session gets another.
  EXPECT_EQ(*sharing_->createShare(session_, std::nullopt), *id);
  // Nowhere in the store in clear.
  for (int t = 0; t < spi::kTableCount; ++t) {
    auto rows = store_->list(static_cast<spi::Table>(t), {});
    ASSERT_TRUE(rows.ok());
    for (const auto& r : *rows) {
      EXPECT_EQ(r.data.find(*id), std::string::npos) << "table " << t;
      EXPECT_EQ(r.id.find(*id), std::string::npos) << "table " << t;
    }
  }
  // The sealed form opens only under the installation's key.
  const auto sealed = session().share->sealed_id;
  EXPECT_EQ(*auth::unseal(kKey, "share-id", sealed), *id);
  EXPECT_EQ(auth::unseal(std::string(40, 'x'), "share-id", sealed).error().code(), ErrorCode::kDataLoss);
  EXPECT_EQ(auth::unseal(kKey, "server-credentials", sealed).error().code(), ErrorCode::kDataLoss);
  std::string tampered = sealed;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'a' ? 'b' : 'a';
  EXPECT_EQ(auth::unseal(kKey, "share-id", tampered).error().code(), ErrorCode::kDataLoss);
}

TEST_F(SharingTest, SharingNeedsTheGroupSettingAndTheLicensedFeature) {
  setGroup([](GroupSettings& s) { s.allow_sharing = false; });
  auto r = sharing_->createShare(session_, std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);
  setGroup([](GroupSettings& s) { s.allow_sharing = true; });
  // The community edition has no licensed features.
  ManagerOptions mo;
  Manager community(*store_, clock_, random_, mo);
  auto plain = Sharing::create(community, *store_, clock_, {.secret_key = kKey});
  ASSERT_TRUE(plain.ok());
  auto refused = (*plain)->createShare(session_, std::nullopt);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(refused.error().message().find("sharing"), std::string::npos) << refused.error().message();
  EXPECT_FALSE(Sharing::create(*manager_, *store_, clock_, {.secret_key = "short"}).ok());
}

TEST_F(SharingTest, JoinersWatchUntilTheOwnerGivesThemControlWhichTheirGroupMustAllow) {
  auto id = *sharing_->createShare(session_, std::nullopt);
  auto joined = sharing_->join(id, UserId("bob"));
  ASSERT_TRUE(joined.ok()) << joined.error().toString();
  EXPECT_EQ(joined->access, ShareAccess::kRead);
  EXPECT_EQ(*Sharing::roleOf(session(), UserId("bob")), Role::kWatch);
  EXPECT_EQ(*Sharing::roleOf(session(), UserId("alice")), Role::kOwner);
  EXPECT_EQ(Sharing::roleOf(session(), UserId("carol")).error().code(), ErrorCode::kPermissionDenied);
  // Joining twice changes nothing.
  EXPECT_EQ(sharing_->join(id, UserId("bob"))->access, ShareAccess::kRead);
  EXPECT_EQ(session().permissions.size(), 1u);
  // Control needs shared_session_full_control.
  auto rw = sharing_->setPermission(session_, UserId("bob"), ShareAccess::kReadWrite);
  ASSERT_FALSE(rw.ok());
  EXPECT_EQ(rw.error().code(), ErrorCode::kPermissionDenied);
  setGroup([](GroupSettings& s) { s.shared_session_full_control = true; });
  ASSERT_TRUE(sharing_->setPermission(session_, UserId("bob"), ShareAccess::kReadWrite).ok());
  EXPECT_EQ(*Sharing::roleOf(session(), UserId("bob")), Role::kControl);
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_EQ(changes_[0].user, UserId("bob"));
  EXPECT_EQ(changes_[0].access, ShareAccess::kReadWrite);
  // The owner is never a joiner.
  EXPECT_EQ(sharing_->setPermission(session_, UserId("alice"), ShareAccess::kRead).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(sharing_->join(id, UserId("alice"))->access, ShareAccess::kReadWrite);
}

TEST_F(SharingTest, UnknownRevokedAndExpiredShareIdsAreTheSameNotFound) {
  EXPECT_EQ(sharing_->join("nonsense", UserId("bob")).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(sharing_->join(std::string(32, 'a'), UserId("bob")).error().code(), ErrorCode::kNotFound);
  auto id = *sharing_->createShare(session_, clock_.now() + std::chrono::minutes(5));
  ASSERT_TRUE(sharing_->join(id, UserId("bob")).ok());
  clock_.advance(std::chrono::minutes(6));
  EXPECT_EQ(sharing_->join(id, UserId("carol")).error().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(*sharing_->shareId(session_));
  // A new link replaces the expired one; the old one stays dead.
  auto fresh = *sharing_->createShare(session_, std::nullopt);
  EXPECT_NE(fresh, id);
  EXPECT_EQ(sharing_->join(id, UserId("carol")).error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(sharing_->join(fresh, UserId("carol")).ok());
  EXPECT_EQ(sharing_->createShare(session_, clock_.now() - std::chrono::minutes(1)).error().code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(SharingTest, RevokingTheShareEndsEveryJoinerAndTheProxyIsTold) {
  auto id = *sharing_->createShare(session_, std::nullopt);
  ASSERT_TRUE(sharing_->join(id, UserId("bob")).ok());
  ASSERT_TRUE(sharing_->join(id, UserId("carol")).ok());
  ASSERT_TRUE(sharing_->deleteShare(session_).ok());
  EXPECT_TRUE(session().permissions.empty());
  EXPECT_FALSE(session().share);
  ASSERT_EQ(changes_.size(), 2u);
  for (const auto& c : changes_) EXPECT_FALSE(c.access) << c.user.str();
  EXPECT_EQ(sharing_->join(id, UserId("bob")).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(*store_->count(spi::Table::kShareIndex, {}), 0);
  // One joiner alone.
  auto again = *sharing_->createShare(session_, std::nullopt);
  ASSERT_TRUE(sharing_->join(again, UserId("bob")).ok());
  changes_.clear();
  ASSERT_TRUE(sharing_->removePermission(session_, UserId("bob")).ok());
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_EQ(sharing_->removePermission(session_, UserId("bob")).error().code(), ErrorCode::kNotFound);
}

TEST_F(SharingTest, AnEndedSessionCannotBeSharedOrJoined) {
  auto id = *sharing_->createShare(session_, std::nullopt);
  ASSERT_TRUE(manager_->destroySession(session_).ok());
  EXPECT_EQ(sharing_->join(id, UserId("bob")).error().code(), ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(sharing_->endSession(session_).ok());
  EXPECT_EQ(sharing_->join(id, UserId("bob")).error().code(), ErrorCode::kNotFound);
}

TEST_F(SharingTest, TheProxySeesJoinersAsViewOnlyAndStrangersAsRefused) {
  auto signer = *auth::AccessTokenSigner::create(std::string(40, 's'), clock_);
  auto id = *sharing_->createShare(session_, std::nullopt);
  ASSERT_TRUE(sharing_->join(id, UserId("bob")).ok());
  auto bob = api::authorizeSessionAccess(*manager_, *store_, signer,
                                         signer.issue(session_, UserId("bob"), std::chrono::hours(1)), session_);
  ASSERT_TRUE(bob.ok()) << bob.error().toString();
  EXPECT_TRUE(bob->view_only);
  EXPECT_EQ(bob->user, UserId("bob"));
  auto alice = api::authorizeSessionAccess(*manager_, *store_, signer,
                                           signer.issue(session_, UserId("alice"), std::chrono::hours(1)), session_);
  ASSERT_TRUE(alice.ok());
  EXPECT_FALSE(alice->view_only);
  auto carol = api::authorizeSessionAccess(*manager_, *store_, signer,
                                           signer.issue(session_, UserId("carol"), std::chrono::hours(1)), session_);
  EXPECT_EQ(carol.error().code(), ErrorCode::kPermissionDenied);
  ASSERT_TRUE(sharing_->deleteShare(session_).ok());
  EXPECT_EQ(api::authorizeSessionAccess(*manager_, *store_, signer,
                                        signer.issue(session_, UserId("bob"), std::chrono::hours(1)), session_)
                .error()
                .code(),
            ErrorCode::kPermissionDenied);
}

TEST_F(SharingTest, DeveloperApiVerbsWithKasmsShapes) {
  auto signer = *auth::AccessTokenSigner::create(std::string(40, 's'), clock_);
  ApiKey k;
  k.id = ApiKeyId("k");
  k.name = "k";
  k.key = "k";
  k.secret_hash = auth::hashSecret("secret");
  k.permissions = {"sessions:manage"};
  ASSERT_TRUE(repo_.insert(k).ok());
  api::DeveloperApiOptions o;
  o.sharing = sharing_.get();
  api::DeveloperApi dev(*manager_, *store_, clock_, signer, o);
  auto call = [&](std::string_view verb, json::object body) {
    body["api_key"] = "k";
    body["api_key_secret"] = "secret";
    auto r = dev.handle(verb, json::serialize(body));
    return std::pair{r.status, json::parse(r.body).as_object()};
  };
  auto [cs, created] = call("create_kasm_share_id", {{"kasm_id", session_.str()}});
  ASSERT_EQ(cs, 200) << json::serialize(created);
  const std::string id(created["share_id"].as_string());
  auto [gs, got] = call("get_kasm_share_id", {{"kasm_id", session_.str()}});
  EXPECT_EQ(got["share_id"].as_string(), id);
  auto [st, status] = call("get_kasm_status", {{"kasm_id", session_.str()}});
  EXPECT_EQ(status["kasm"].as_object()["share_id"].as_string(), id);
  auto [js, joined] = call("join_kasm", {{"share_id", id}, {"user_id", "bob"}});
  ASSERT_EQ(js, 200) << json::serialize(joined);
  EXPECT_EQ(joined["access"].as_string(), "r");
  const std::string url(joined["kasm_url"].as_string());
  EXPECT_TRUE(url.starts_with("/desktop/" + session_.str() + "/?token=")) << url;
  auto claims = signer.verifyFor(url.substr(url.find("token=") + 6), session_);
  ASSERT_TRUE(claims.ok());
  EXPECT_EQ(claims->user_id, UserId("bob"));
  auto [ps, perms] =
      call("get_session_permissions", {{"target_session_permissions", json::object{{"kasm_id", session_.str()}}}});
  ASSERT_EQ(ps, 200);
  ASSERT_EQ(perms["session_permissions"].as_array().size(), 1u);
  EXPECT_EQ(perms["session_permissions"].as_array()[0].as_object().at("username").as_string(), "bob");
  // Checked before anything changes: one bad entry refuses the whole call.
  auto entry = [](const char* user, const char* access) {
    json::object e;
    e["user_id"] = user;
    if (access) e["access"] = access;
    return e;
  };
  json::object bad_body;
  bad_body["kasm_id"] = session_.str();
  bad_body["session_permissions"] = json::array{entry("carol", "r"), entry("bob", "x")};
  EXPECT_EQ(call("set_session_permissions", bad_body).first, 400);
  EXPECT_EQ(session().permissions.size(), 1u);
  json::object set_body;
  set_body["kasm_id"] = session_.str();
  set_body["session_permissions"] = json::array{entry("carol", "r")};
  auto [ss, set] = call("set_session_permissions", set_body);
  ASSERT_EQ(ss, 200) << json::serialize(set);
  EXPECT_EQ(set["session_permissions"].as_array().size(), 2u);
  json::object del_body;
  del_body["kasm_id"] = session_.str();
  del_body["session_permissions"] = json::array{entry("bob", nullptr)};
  auto [ds, del] = call("delete_session_permissions", del_body);
  ASSERT_EQ(ds, 200);
  EXPECT_EQ(del["session_permissions"].as_array().size(), 1u);
  auto [xs, x] = call("delete_kasm_share_id", {{"kasm_id", session_.str()}});
  EXPECT_EQ(xs, 200);
  EXPECT_TRUE(call("get_kasm_share_id", {{"kasm_id", session_.str()}}).second["share_id"].is_null());
  EXPECT_EQ(call("join_kasm", {{"share_id", id}, {"user_id", "bob"}}).first, 404);
  // request_kasm with enable_sharing answers a share id.
  auto [rs, req] = call("request_kasm", {{"user_id", "carol"}, {"image_id", "desktop"}, {"enable_sharing", true}});
  ASSERT_EQ(rs, 200) << json::serialize(req);
  EXPECT_EQ(req["share_id"].as_string().size(), 32u);
}

}  // namespace
}  // namespace kasm::share
