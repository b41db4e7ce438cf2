// Licences in the manager: community limits, concurrent-session and named-user licences, expiry,
// clock rollback, feature gates, bad input, and the limit under concurrent requests.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "fake_agent_link.hpp"
#include "kasm/api/developer_api.hpp"
#include "kasm/auth/secret.hpp"
#include "kasm/kasm.hpp"
#include "kasm/license/installation.hpp"
#include "kasm/license/text.hpp"
#include "kasm/manager/manager.hpp"

namespace kasm {
namespace {

using license::LicenseState;
using testing::FakeAgentLink;
constexpr std::int64_t kGiB = Resources::kGiB;
constexpr auto kDay = std::chrono::hours(24);

class LicenseManagerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    key_ = std::make_unique<license::SigningKey>(license::SigningKey::generate().value());
    other_key_ = std::make_unique<license::SigningKey>(license::SigningKey::generate().value());
  }
  static void TearDownTestSuite() {
    key_.reset();
    other_key_.reset();
  }

  void SetUp() override {
    store_ = makeMemoryStore();
    repo_ = std::make_unique<Repository>(*store_);
    options_.license.verifying_keys = {key_->verifyingKey()};
    manager_ = makeManager();
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
    g.name = "All users";
    g.settings.max_sessions_per_user = 0;
    ASSERT_TRUE(repo_->insert(g).ok());
    for (int i = 0; i < 10; ++i) {
      User u;
      u.id = UserId("u" + std::to_string(i));
      u.username = u.id.str();
      u.group_ids = {g.id};
      ASSERT_TRUE(repo_->insert(u).ok());
    }
    link_ = std::make_shared<FakeAgentLink>();
    ASSERT_EQ(testing::connectFakeAgent(*manager_, link_, "big", ZoneId("east"), Resources::fromCores(64, 64 * kGiB),
                                        {"desktop:1"}),
              "");
  }

  std::unique_ptr<Manager> makeManager() {
    auto m = std::make_unique<Manager>(*store_, clock_, random_, options_);
    EXPECT_TRUE(m->start().ok());
    return m;
  }

  license::LicenseDocument document(LicenseType type, std::int64_t limit, std::set<std::string> features = {},
                                    Duration valid_for = 365 * kDay) {
    license::LicenseDocument d;
    d.activation_id = "purchase-1";
    d.installation_id = manager_->licensing().installationId().value();
    d.id = license::licenseIdFor(d.activation_id, d.installation_id);
    d.customer = "ACME Corp.";
    d.type = type;
    d.limit = limit;
    d.features = std::move(features);
    d.issued_at = std::chrono::floor<std::chrono::seconds>(clock_.now());
    d.not_before = d.issued_at;
    d.expires_at = d.issued_at + valid_for;
    return d;
  }
  std::string text(const license::LicenseDocument& d, const license::SigningKey* key = nullptr) {
    return license::writeLicense(d, key ? *key : *key_).value();
  }
  void install(const license::LicenseDocument& d) {
    auto r = manager_->licensing().addLicense(text(d));
    ASSERT_TRUE(r.ok()) << r.error().toString();
  }

  Result<Session> request(const std::string& user, Manager* m = nullptr) {
    return (m ? *m : *manager_)
        .requestSession(SessionRequest{UserId(user), WorkspaceId("desktop"), ZoneId("east"), {}});
  }
  int live() {
    int n = 0;
    auto sessions = manager_->listSessions();
    EXPECT_TRUE(sessions.ok());
    if (sessions.ok()) {
      for (const auto& s : *sessions) n += holdsReservation(s.state) ? 1 : 0;
    }
    return n;
  }
  license::LicenseStatus status() { return manager_->licensing().status().value(); }

  static std::unique_ptr<license::SigningKey> key_;
  static std::unique_ptr<license::SigningKey> other_key_;
  ManagerOptions options_;
  ManualClock clock_;
  SeededRandom random_{11};
  std::unique_ptr<spi::Store> store_;
  std::unique_ptr<Repository> repo_;
  std::unique_ptr<Manager> manager_;
  std::shared_ptr<FakeAgentLink> link_;
};
std::unique_ptr<license::SigningKey> LicenseManagerTest::key_;
std::unique_ptr<license::SigningKey> LicenseManagerTest::other_key_;

TEST_F(LicenseManagerTest, CommunityEditionAllowsFiveSessions) {
  std::vector<SessionId> ids;
  for (int i = 0; i < 5; ++i) {
    auto s = request("u" + std::to_string(i));
    ASSERT_TRUE(s.ok()) << s.error().toString();
    ids.push_back(s->id);
  }
  auto sixth = request("u5");
  ASSERT_FALSE(sixth.ok());
  EXPECT_EQ(sixth.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(sixth.error().message().find("5 of 5 concurrent sessions"), std::string::npos) << sixth.error().message();
  EXPECT_NE(sixth.error().message().find("community edition"), std::string::npos) << sixth.error().message();
  EXPECT_EQ(live(), 5);
  EXPECT_EQ(link_->count(), 5u);  // Nothing started for the refused request.

  auto st = status();
  EXPECT_EQ(st.state, LicenseState::kCommunity);
  EXPECT_EQ(st.limit, 5);
  EXPECT_EQ(st.used, 5);

  ASSERT_TRUE(manager_->destroySession(ids.front()).ok());
  EXPECT_EQ(status().used, 4);
  EXPECT_TRUE(request("u5").ok());
}

// The developer API passes the licence refusal through as its error_message.
TEST_F(LicenseManagerTest, TheDeveloperApiShowsTheRefusal) {
  ApiKey k;
  k.id = ApiKeyId("k1");
  k.name = "k1";
  k.key = "k1";
  k.secret_hash = auth::hashSecret("s1");
  k.permissions = {"admin"};
  ASSERT_TRUE(repo_->insert(k).ok());
  auto signer = auth::AccessTokenSigner::create(std::string(40, 's'), clock_);
  ASSERT_TRUE(signer.ok());
  api::DeveloperApi dev(*manager_, *store_, clock_, *signer);
  const std::string body = R"({"api_key":"k1","api_key_secret":"s1","user_id":"u1","image_id":"desktop"})";
  for (int i = 0; i < 5; ++i) ASSERT_EQ(dev.handle("request_kasm", body).status, 200);
  auto refused = dev.handle("request_kasm", body);
  EXPECT_EQ(refused.status, 429);
  EXPECT_NE(refused.body.find("license limit reached: 5 of 5 concurrent sessions"), std::string::npos) << refused.body;
}

TEST_F(LicenseManagerTest, UnlimitedPolicyHasNoLimitAndEveryFeature) {
  options_.license = license::LicensePolicy::unlimited();
  auto m = makeManager();
  m->attachAgentLink(AgentId("big"), link_);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(request("u1", m.get()).ok());
  EXPECT_TRUE(m->licensing().requireFeature(license::features::kSharing).ok());
}

TEST_F(LicenseManagerTest, ConcurrentSessionLicenseCapsLiveSessions) {
  install(document(LicenseType::kConcurrentSessions, 7));
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(request("u" + std::to_string(i)).ok());
  auto over = request("u8");
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(over.error().message().find("7 of 7"), std::string::npos) << over.error().message();
  EXPECT_NE(over.error().message().find("ACME Corp."), std::string::npos) << over.error().message();
  auto st = status();
  EXPECT_EQ(st.state, LicenseState::kValid);
  EXPECT_EQ(st.limit, 7);
  EXPECT_EQ(st.used, 7);
  EXPECT_EQ(st.days_left, 365);
  ASSERT_TRUE(st.active.has_value());
  EXPECT_EQ(st.active->customer, "ACME Corp.");
}

TEST_F(LicenseManagerTest, NamedUserLicenseCountsDistinctUsersForTheLicensePeriod) {
  install(document(LicenseType::kNamedUsers, 2));
  std::vector<SessionId> u0;
  for (int i = 0; i < 6; ++i) u0.push_back(request("u0").value().id);  // Sessions are not the limit.
  ASSERT_TRUE(request("u1").ok());
  auto third = request("u2");
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(third.error().message().find("named users"), std::string::npos) << third.error().message();
  EXPECT_NE(third.error().message().find("'u2'"), std::string::npos) << third.error().message();
  // A named user stays counted for the period even without sessions.
  for (const auto& id : u0) ASSERT_TRUE(manager_->destroySession(id).ok());
  EXPECT_FALSE(request("u2").ok());
  EXPECT_TRUE(request("u0").ok());
  auto st = status();
  EXPECT_EQ(st.type, LicenseType::kNamedUsers);
  EXPECT_EQ(st.used, 2);
  EXPECT_EQ(st.sessions_in_use, 2);
}

TEST_F(LicenseManagerTest, ExpiryWarnsThenRefusesNewSessionsAndLeavesRunningOnes) {
  install(document(LicenseType::kConcurrentSessions, 10, {}, 40 * kDay));
  auto running = request("u0");
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(status().state, LicenseState::kValid);

  clock_.advance(15 * kDay);
  auto warn = status();
  EXPECT_EQ(warn.state, LicenseState::kExpiring);
  EXPECT_EQ(warn.days_left, 25);
  EXPECT_NE(warn.message.find("expires in 25 day(s)"), std::string::npos) << warn.message;
  EXPECT_TRUE(request("u1").ok());  // Still in force.

  clock_.advance(26 * kDay);
  auto refused = request("u2");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.error().message().find("expired on"), std::string::npos) << refused.error().message();
  EXPECT_EQ(manager_->getSession(running->id)->state, SessionState::kRunning);
  EXPECT_TRUE(manager_->keepalive(running->id).ok());
  auto st = status();
  EXPECT_EQ(st.state, LicenseState::kExpired);
  EXPECT_EQ(st.days_left, 0);
  EXPECT_TRUE(st.features.empty());
}

TEST_F(LicenseManagerTest, RenewalTtlEndsALicenseUntilItIsRenewed) {
  auto doc = document(LicenseType::kConcurrentSessions, 10, {}, 365 * kDay);
  doc.renewal_ttl = 7 * kDay;
  install(doc);
  EXPECT_EQ(status().days_left, 7);
  clock_.advance(8 * kDay);
  auto refused = request("u0");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("renewal"), std::string::npos) << refused.error().message();
  // The vendor re-activates: same licence id, issued now; adding it replaces the old one.
  auto renewed = doc;
  renewed.issued_at = std::chrono::floor<std::chrono::seconds>(clock_.now());
  install(renewed);
  EXPECT_EQ(manager_->licensing().listLicenses()->size(), 1u);
  EXPECT_TRUE(request("u0").ok());
}

TEST_F(LicenseManagerTest, ClockSetBackIsDetected) {
  install(document(LicenseType::kConcurrentSessions, 10));
  ASSERT_TRUE(request("u0").ok());
  clock_.advance(std::chrono::hours(2));
  ASSERT_TRUE(request("u1").ok());  // Moves the high-water mark.
  const TimePoint seen = clock_.now();

  clock_.set(seen - kDay);
  auto refused = request("u2");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.error().message().find("clock"), std::string::npos) << refused.error().message();
  EXPECT_EQ(status().state, LicenseState::kClockBehind);

  clock_.set(seen - std::chrono::minutes(2));  // Within the tolerance: an NTP step, not a rollback.
  EXPECT_TRUE(request("u2").ok());
  clock_.set(seen + std::chrono::minutes(5));
  EXPECT_TRUE(request("u3").ok());
  EXPECT_EQ(status().state, LicenseState::kValid);
}

TEST_F(LicenseManagerTest, BadInputIsRefusedClearlyAndTheCurrentLicenseStays) {
  auto& lic = manager_->licensing();
  install(document(LicenseType::kConcurrentSessions, 7));
  auto refused = [&](std::string_view t, ErrorCode code, std::string_view needle) {
    auto r = lic.addLicense(t);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), code) << r.error().toString();
    EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
  };
  refused("my license is 1234-5678", ErrorCode::kInvalidArgument, "-----BEGIN KASM LICENSE-----");
  const std::string good = text(document(LicenseType::kConcurrentSessions, 50));
  refused(good.substr(0, good.size() - 40), ErrorCode::kInvalidArgument, "cut off");
  refused(good.substr(0, 200), ErrorCode::kInvalidArgument, "cut off");

  auto foreign = document(LicenseType::kConcurrentSessions, 50);
  foreign.installation_id = "ffffffffffffffffffffffffffffffff";
  refused(text(foreign), ErrorCode::kInvalidArgument, "ffffffffffffffffffffffffffffffff");
  refused(text(foreign), ErrorCode::kInvalidArgument, lic.installationId().value());

  refused(text(document(LicenseType::kConcurrentSessions, 50), other_key_.get()), ErrorCode::kUnauthenticated,
          "signature");
  auto old = document(LicenseType::kConcurrentSessions, 50, {}, kDay);
  old.issued_at -= 10 * kDay;
  old.not_before -= 10 * kDay;
  old.expires_at -= 5 * kDay;
  refused(text(old), ErrorCode::kFailedPrecondition, "expired");

  auto st = status();
  EXPECT_EQ(st.state, LicenseState::kValid);
  EXPECT_EQ(st.limit, 7);
  EXPECT_EQ(lic.listLicenses()->size(), 1u);
}

TEST_F(LicenseManagerTest, NoVerifyingKeyMeansNoLicenseCanBeAdded) {
  options_.license.verifying_keys.clear();
  auto m = makeManager();
  auto r = m->licensing().addLicense(text(document(LicenseType::kConcurrentSessions, 50)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(r.error().message().find("no license verifying key is configured"), std::string::npos);
}

TEST_F(LicenseManagerTest, StoredLicensesThatDoNotApplyAreReportedAndIgnored) {
  // A database copied from another installation: its licence row is bound elsewhere.
  auto foreign = document(LicenseType::kConcurrentSessions, 50);
  foreign.installation_id = "ffffffffffffffffffffffffffffffff";
  LicenseRecord rec;
  rec.id = foreign.id;
  rec.armored = text(foreign);
  rec.customer = foreign.customer;
  rec.installation_id = foreign.installation_id;
  rec.limit = foreign.limit;
  rec.not_before = foreign.not_before;
  rec.expires_at = foreign.expires_at;
  ASSERT_TRUE(repo_->insert(rec).ok());
  auto st = status();
  EXPECT_EQ(st.state, LicenseState::kCommunity);
  EXPECT_EQ(st.limit, 5);
  ASSERT_EQ(st.problems.size(), 1u);
  EXPECT_NE(st.problems[0].message.find("bound to installation ffff"), std::string::npos);
}

TEST_F(LicenseManagerTest, ALicenseThatStartsLaterAppliesFromItsStart) {
  auto doc = document(LicenseType::kConcurrentSessions, 9);
  doc.not_before += 10 * kDay;
  install(doc);
  auto st = status();
  EXPECT_EQ(st.state, LicenseState::kCommunity);
  EXPECT_NE(st.message.find("starts on"), std::string::npos) << st.message;
  clock_.advance(11 * kDay);
  st = status();
  EXPECT_EQ(st.state, LicenseState::kValid);
  EXPECT_EQ(st.limit, 9);
}

TEST_F(LicenseManagerTest, AddIsIdempotentRenewalsReplaceAndRemoveFallsBackToCommunity) {
  auto& lic = manager_->licensing();
  auto doc = document(LicenseType::kConcurrentSessions, 7);
  install(doc);
  install(doc);  // The same text again: nothing changes.
  auto older = doc;
  older.issued_at -= kDay;
  auto r = lic.addLicense(text(older));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  auto newer = doc;
  newer.issued_at += std::chrono::hours(1);
  newer.limit = 12;
  install(newer);
  ASSERT_EQ(lic.listLicenses()->size(), 1u);
  EXPECT_EQ(status().limit, 12);
  ASSERT_TRUE(lic.removeLicense(doc.id).ok());
  EXPECT_EQ(status().state, LicenseState::kCommunity);
  EXPECT_EQ(lic.removeLicense(doc.id).error().code(), ErrorCode::kNotFound);
}

TEST_F(LicenseManagerTest, StagingPoolsNeedTheStagingFeature) {
  StagingConfig cfg;
  cfg.id = StagingConfigId("pool");
  cfg.workspace_id = WorkspaceId("desktop");
  cfg.zone_id = ZoneId("east");
  cfg.desired = 2;
  ASSERT_TRUE(repo_->insert(cfg).ok());
  EXPECT_EQ(manager_->tick()->staged_launched, 0);
  EXPECT_EQ(manager_->licensing().requireFeature(license::features::kStaging).error().code(),
            ErrorCode::kPermissionDenied);

  install(document(LicenseType::kConcurrentSessions, 3, {std::string(license::features::kStaging)}));
  EXPECT_TRUE(manager_->licensing().requireFeature(license::features::kStaging).ok());
  EXPECT_EQ(manager_->tick()->staged_launched, 2);
  EXPECT_EQ(status().used, 2);  // Staged sessions run containers: they count.
  // Claiming one keeps the count; the pool refills up to the limit only.
  ASSERT_TRUE(request("u0").ok());
  EXPECT_EQ(status().used, 2);
  (void)manager_->tick();
  EXPECT_EQ(status().used, 3);
  EXPECT_LE(live(), 3);
}

TEST_F(LicenseManagerTest, FeatureChecksNameTheFeatureAndTheLicense) {
  auto r = manager_->licensing().requireFeature(license::features::kSharing);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("'sharing'"), std::string::npos);
  EXPECT_NE(r.error().message().find("community edition"), std::string::npos);
  install(document(LicenseType::kConcurrentSessions, 3, {std::string(license::features::kSharing)}));
  EXPECT_TRUE(manager_->licensing().requireFeature(license::features::kSharing).ok());
  EXPECT_FALSE(manager_->licensing().requireFeature(license::features::kAutoscaling).ok());
}

TEST_F(LicenseManagerTest, AFailedLaunchReleasesItsLicenseSlot) {
  link_->fail_provision = true;
  for (int i = 0; i < 8; ++i) EXPECT_EQ(request("u0").error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(status().sessions_in_use, 0);
  link_->fail_provision = false;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(request("u0").ok());
}

TEST_F(LicenseManagerTest, InstallationIdIsCreatedOnceAndShared) {
  auto id = manager_->licensing().installationId();
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->size(), 32u);
  EXPECT_EQ(manager_->licensing().installationId().value(), *id);
  EXPECT_EQ(license::installationId(*store_, clock_).value(), *id);
  EXPECT_EQ(repo_->get<Setting>(std::string(settings::kInstallationId))->value.value, *id);
  EXPECT_EQ(makeManager()->licensing().installationId().value(), *id);
}

// 50 threads on two managers sharing one store race for 7 licensed sessions on an agent with room
// for 64: the licence, not the agent, is the limit, and it is never overshot, not even briefly.
// Several rounds, each starting from no sessions, so a race that only sometimes overshoots shows.
TEST_F(LicenseManagerTest, FiftyConcurrentRequestsNeverOvershootTheLimit) {
  install(document(LicenseType::kConcurrentSessions, 7));
  auto other = makeManager();
  other->attachAgentLink(AgentId("big"), link_);
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::atomic<bool> done{false};
    std::atomic<int> ok{0}, refused{0}, max_live{0};
    std::thread monitor([&] {
      while (!done.load()) {
        const int n = live();
        int prev = max_live.load();
        while (n > prev && !max_live.compare_exchange_weak(prev, n)) {
        }
      }
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < 50; ++t) {
      threads.emplace_back([&, t] {
        auto r = request("u" + std::to_string(t % 10), t % 2 ? other.get() : manager_.get());
        if (r.ok()) {
          ++ok;
        } else {
          EXPECT_EQ(r.error().code(), ErrorCode::kResourceExhausted) << r.error().toString();
          ++refused;
        }
      });
    }
    for (auto& th : threads) th.join();
    done = true;
    monitor.join();
    EXPECT_EQ(ok.load(), 7);
    EXPECT_EQ(refused.load(), 43);
    EXPECT_LE(max_live.load(), 7);
    EXPECT_EQ(live(), 7);
    EXPECT_EQ(link_->count(), 7u);
    EXPECT_EQ(status().used, 7);
    EXPECT_EQ(repo_->get<Agent>("big")->value.session_count, 7);
    auto sessions = manager_->listSessions();
    ASSERT_TRUE(sessions.ok());
    for (const auto& s : *sessions) {
      if (holdsReservation(s.state)) {
        ASSERT_TRUE(manager_->destroySession(s.id).ok());
      }
    }
    EXPECT_EQ(status().used, 0);
  }
}

}  // namespace
}  // namespace kasm
