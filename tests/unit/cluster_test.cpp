// Scale-out: zone leases and the managers' membership (kasm/cluster/membership.hpp) on one store,
// and background work that runs on each zone's primary only.

#include <gtest/gtest.h>

#include "kasm/cluster/membership.hpp"
#include "manager_fixture.hpp"

namespace kasm {
namespace {

using cluster::Membership;
using std::chrono::seconds;

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = makeMemoryStore();
    Repository repo(*store_);
    for (const char* z : {"east", "west"}) {
      Zone zone;
      zone.id = ZoneId(z);
      zone.name = z;
      ASSERT_TRUE(repo.insert(zone).ok());
    }
  }
  std::unique_ptr<Membership> member(const std::string& id, std::vector<ZoneId> zones = {}) {
    cluster::MembershipOptions o;
    o.id = ManagerNodeId(id);
    o.hostname = id + ".local";
    o.zones = std::move(zones);
    return std::make_unique<Membership>(*store_, clock_, o);
  }

  ManualClock clock_;
  std::unique_ptr<spi::Store> store_;
};

TEST_F(ClusterTest, OnePrimaryPerZoneAndATakeoverOnceItsLeaseExpires) {
  auto a = member("a"), b = member("b");
  ASSERT_TRUE(a->beat().ok());
  ASSERT_TRUE(b->beat().ok());
  EXPECT_EQ(a->leading(), (std::set<ZoneId>{ZoneId("east"), ZoneId("west")}));
  EXPECT_TRUE(b->leading().empty());
  // a stops beating (killed): b takes over once the lease has expired, and not before.
  clock_.advance(seconds(7));
  ASSERT_TRUE(b->beat().ok());
  EXPECT_TRUE(b->leading().empty());
  EXPECT_FALSE(a->leads(ZoneId("east"))) << "a primary that could not renew stops acting before its lease ends";
  clock_.advance(seconds(2));
  ASSERT_TRUE(b->beat().ok());
  EXPECT_EQ(b->leading().size(), 2u);
  // a comes back: the zones stay with b.
  ASSERT_TRUE(a->beat().ok());
  EXPECT_TRUE(a->leading().empty());
  Repository repo(*store_);
  auto lease = repo.get<Lease>("zone:east");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->value.holder, ManagerNodeId("b"));
  EXPECT_EQ(lease->value.epoch, 2);
  auto node = repo.get<ManagerNode>("b");
  ASSERT_TRUE(node.ok());
  EXPECT_EQ(node->value.leading.size(), 2u);
}

TEST_F(ClusterTest, ASteppedDownOrDisabledManagerHandsItsZonesOverAtOnce) {
  auto a = member("a"), b = member("b");
  ASSERT_TRUE(a->beat().ok());
  a->stepDown();
  EXPECT_TRUE(a->leading().empty());
  ASSERT_TRUE(b->beat().ok());
  EXPECT_EQ(b->leading().size(), 2u) << "no wait for the lease to expire";

  // An administrator disables b: it releases at its next beat, and a (no longer stepped down: a
  // new process) takes over.
  Repository repo(*store_);
  auto row = repo.get<ManagerNode>("b");
  row->value.enabled = false;
  ASSERT_TRUE(repo.update(row->value, row->version).ok());
  ASSERT_TRUE(b->beat().ok());
  EXPECT_TRUE(b->leading().empty());
  auto c = member("c");
  ASSERT_TRUE(c->beat().ok());
  EXPECT_EQ(c->leading().size(), 2u);
}

TEST_F(ClusterTest, AManagerLeadsOnlyTheZonesItMayLead) {
  auto east = member("e", {ZoneId("east")}), any = member("any");
  ASSERT_TRUE(east->beat().ok());
  ASSERT_TRUE(any->beat().ok());
  EXPECT_EQ(east->leading(), std::set<ZoneId>{ZoneId("east")});
  EXPECT_EQ(any->leading(), std::set<ZoneId>{ZoneId("west")});
}

TEST_F(ClusterTest, ConcurrentManagersNeverHoldOneLeaseTogether) {
  std::vector<std::unique_ptr<Membership>> members;
  for (int i = 0; i < 4; ++i) members.push_back(member("m" + std::to_string(i)));
  std::atomic<int> overlaps{0};
  std::vector<std::thread> threads;
  for (auto& m : members) {
    threads.emplace_back([&, mp = m.get()] {
      for (int i = 0; i < 200; ++i) {
        (void)mp->beat();
        int holders = 0;
        for (auto& other : members) holders += other->leads(ZoneId("east")) ? 1 : 0;
        if (holders > 1) ++overlaps;
        if (i % 50 == 49) mp->stepDown();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(overlaps.load(), 0);
}

// Two managers on one store, each ticking the zones it leads: every expired session is ended
// exactly once (counted by the agent's destroy calls), by the primary of its zone.
TEST_F(ClusterTest, BackgroundWorkRunsOnTheZonesPrimaryOnly) {
  SeededRandom random(3);
  ManagerOptions mo;
  Manager m1(*store_, clock_, random, mo), m2(*store_, clock_, random, mo);
  ASSERT_TRUE(m1.start().ok());
  ASSERT_TRUE(m2.start().ok());
  auto link = std::make_shared<testing::FakeAgentLink>();
  ASSERT_EQ(testing::connectFakeAgent(m1, link, "a1", ZoneId("east"), Resources::fromCores(16, 16 * Resources::kGiB),
                                      {"desktop:1"}),
            "");
  m2.attachAgentLink(AgentId("a1"), link);
  Repository repo(*store_);
  Workspace w;
  w.id = WorkspaceId("desktop");
  w.friendly_name = "Desktop";
  w.image = "desktop:1";
  w.resources = Resources::fromCores(1, Resources::kGiB);
  ASSERT_TRUE(m1.upsertWorkspace(w).ok());
  Group g;
  g.id = GroupId("all");
  g.name = "All";
  g.settings.max_sessions_per_user = 0;
  g.settings.keepalive_expiration = std::chrono::minutes(1);
  ASSERT_TRUE(repo.insert(g).ok());
  User u;
  u.id = UserId("alice");
  u.username = "alice";
  u.group_ids = {g.id};
  ASSERT_TRUE(repo.insert(u).ok());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(m1.requestSession(SessionRequest{u.id, w.id, ZoneId("east"), {}}).ok());
  }
  auto p1 = member("p1"), p2 = member("p2");
  ASSERT_TRUE(p1->beat().ok());
  ASSERT_TRUE(p2->beat().ok());
  clock_.advance(std::chrono::minutes(2));  // Every keepalive has expired.
  int expired = 0;
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(p1->beat().ok());
    ASSERT_TRUE(p2->beat().ok());
    auto r1 = m1.tick(p1->leading());
    auto r2 = m2.tick(p2->leading());
    ASSERT_TRUE(r1.ok() && r2.ok());
    expired += r1->sessions_expired + r2->sessions_expired;
    EXPECT_EQ(r2->sessions_expired, 0) << "the manager that leads no zone did background work";
  }
  EXPECT_EQ(expired, 4);
  EXPECT_EQ(link->destroy_calls, 4);
}

}  // namespace
}  // namespace kasm

namespace kasm {
namespace {

// Every way a session stops serving reaches ManagerOptions::on_session_closed once its state is
// stored: the hook a server uses to close the session's connections everywhere at once.
TEST(SessionClosedHook, EveryEndOfServingIsReported) {
  std::vector<std::pair<std::string, SessionState>> seen;
  std::mutex mu;
  class Fixture : public testing::ManagerTest {
   public:
    void TestBody() override {}
    using ManagerTest::checkIn;
    using ManagerTest::request;
    using ManagerTest::SetUp;
    using ManagerTest::TearDown;
    ManagerOptions& options() { return options_; }
    Manager& manager() { return *manager_; }
    std::map<std::string, std::shared_ptr<testing::FakeAgentLink>>& links() { return links_; }
    ManualClock& clock() { return clock_; }
  } f;
  f.options().on_session_closed = [&](const SessionId& id, SessionState st) {
    std::lock_guard lock(mu);
    seen.emplace_back(id.str(), st);
  };
  f.SetUp();
  auto a = f.request("alice");
  auto b = f.request("bob");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(seen.empty()) << "launches are not ends";
  ASSERT_TRUE(f.manager().pauseSession(a->id).ok());
  ASSERT_TRUE(f.manager().destroySession(a->id).ok());
  f.links()["a1"]->containers.clear();  // b's container vanished: reconciliation fails it.
  ASSERT_TRUE(f.manager().reconcileAgent(AgentId("a1")).ok());
  std::map<std::string, std::vector<SessionState>> by;
  for (const auto& [id, st] : seen) by[id].push_back(st);
  EXPECT_NE(std::find(by[a->id.str()].begin(), by[a->id.str()].end(), SessionState::kPaused), by[a->id.str()].end());
  EXPECT_NE(std::find(by[a->id.str()].begin(), by[a->id.str()].end(), SessionState::kDestroyed), by[a->id.str()].end());
  EXPECT_NE(std::find(by[b->id.str()].begin(), by[b->id.str()].end(), SessionState::kFailed), by[b->id.str()].end());
  f.TearDown();
}

}  // namespace
}  // namespace kasm
