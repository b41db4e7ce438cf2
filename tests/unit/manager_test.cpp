// The manager against the in-memory store and a fake agent link, with a manual clock: no sleeps.

#include "kasm/manager/manager.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "kasm/kasm.hpp"
#include "license/armor.hpp"
#include "manager_fixture.hpp"

namespace kasm {
namespace {

using testing::FakeAgentLink;
using testing::ManagerTest;
constexpr std::int64_t kGiB = Resources::kGiB;

TEST_F(ManagerTest, RequestRunsASessionAndReservesCapacityInTheStore) {
  auto s = request("alice");
  ASSERT_TRUE(s.ok()) << s.error().toString();
  EXPECT_EQ(s->state, SessionState::kRunning);
  EXPECT_EQ(s->agent_id, AgentId("a1"));
  EXPECT_FALSE(s->upstream.empty());
  EXPECT_EQ(s->expires_at, clock_.now() + std::chrono::minutes(10));
  EXPECT_TRUE(links_["a1"]->has(s->id));
  EXPECT_EQ(storedAgent("a1").reserved, Resources::fromCores(2, 2 * kGiB));
  EXPECT_EQ(storedAgent("a1").session_count, 1);
  EXPECT_EQ(manager_->schedulerView(AgentId("a1"))->reserved, Resources::fromCores(2, 2 * kGiB));
}

TEST_F(ManagerTest, DestroyRemovesTheContainerAndReleases) {
  auto s = request("alice");
  ASSERT_TRUE(s.ok());
  auto d = manager_->destroySession(s->id);
  ASSERT_TRUE(d.ok()) << d.error().toString();
  EXPECT_EQ(d->state, SessionState::kDestroyed);
  EXPECT_FALSE(links_["a1"]->has(s->id));
  EXPECT_EQ(storedAgent("a1").reserved, Resources{});
  EXPECT_EQ(storedAgent("a1").session_count, 0);
  EXPECT_TRUE(manager_->destroySession(s->id).ok());  // Idempotent.
}

// A teardown the agent could not do leaves the session stopping; each tick tries again and says
// why it is still there, until the agent answers.
TEST_F(ManagerTest, ATeardownLeftStoppingIsRetriedAndReportedByTheTick) {
  auto s = request("alice");
  ASSERT_TRUE(s.ok());
  links_["a1"]->unreachable = true;
  EXPECT_FALSE(manager_->destroySession(s->id).ok());
  EXPECT_EQ(manager_->getSession(s->id)->state, SessionState::kStopping);
  auto t = manager_->tick();
  ASSERT_TRUE(t.ok()) << t.error().toString();
  EXPECT_EQ(t->teardowns_pending, 1);
  EXPECT_NE(t->teardown_error.find(s->id.str()), std::string::npos) << t->teardown_error;
  EXPECT_NE(t->teardown_error.find("unreachable"), std::string::npos) << t->teardown_error;
  links_["a1"]->unreachable = false;
  t = manager_->tick();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->teardowns_pending, 0);
  EXPECT_EQ(manager_->getSession(s->id)->state, SessionState::kDestroyed);
  EXPECT_FALSE(links_["a1"]->has(s->id));
}

// A hung agent (each call runs into its timeout) is called once per tick, not once per session it
// holds: the tick goes on to other agents, and its teardowns are tried again at the next tick.
TEST_F(ManagerTest, AHungAgentCostsTheTickOneTimeoutNotOnePerSession) {
  auto a = request("alice");
  auto b = request("bob");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->agent_id, b->agent_id);
  auto& link = *links_[a->agent_id->str()];
  link.unreachable = true;
  ASSERT_FALSE(manager_->destroySession(a->id).ok());
  ASSERT_FALSE(manager_->destroySession(b->id).ok());
  int calls = 0;
  link.on_destroy = [&] {
    ++calls;
    clock_.advance(std::chrono::seconds(60));  // The quick timeout of a remote agent's command.
  };
  auto t = manager_->tick();
  ASSERT_TRUE(t.ok()) << t.error().toString();
  EXPECT_EQ(calls, 1) << "the second teardown was not sent to an agent that just timed out";
  EXPECT_EQ(t->teardowns_pending, 2);
  EXPECT_NE(t->teardown_error.find("did not answer"), std::string::npos) << t->teardown_error;

  link.on_destroy = nullptr;
  link.unreachable = false;
  t = manager_->tick();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->teardowns_pending, 0);
  EXPECT_EQ(manager_->getSession(a->id)->state, SessionState::kDestroyed);
  EXPECT_EQ(manager_->getSession(b->id)->state, SessionState::kDestroyed);
}

TEST_F(ManagerTest, GroupLimitIsEnforced) {
  ASSERT_TRUE(request("alice").ok());
  auto second = request("alice");
  ASSERT_TRUE(second.ok());
  auto third = request("alice");
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(third.error().message().find("group limit is 2"), std::string::npos);
  ASSERT_TRUE(manager_->destroySession(second->id).ok());
  EXPECT_TRUE(request("alice").ok());
}

TEST_F(ManagerTest, NoCapacityExplainsAndLeavesNothingBehind) {
  ASSERT_TRUE(request("alice").ok());
  ASSERT_TRUE(request("alice").ok());
  ASSERT_TRUE(request("bob").ok());
  ASSERT_TRUE(request("bob").ok());  // 8 cores used.
  setGroup([](GroupSettings& g) { g.max_sessions_per_user = 0; });
  auto full = request("bob");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(full.error().message().find("lack 2.000 free cores"), std::string::npos) << full.error().message();
  EXPECT_EQ(manager_->listSessions()->size(), 4u);
}

TEST_F(ManagerTest, ProvisionFailureFailsTheSessionAndReleases) {
  links_["a1"]->fail_provision = true;
  auto s = request("alice");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("out of disk"), std::string::npos);
  auto all = manager_->listSessions();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->front().state, SessionState::kFailed);
  EXPECT_NE(all->front().state_reason.find("out of disk"), std::string::npos);
  EXPECT_EQ(storedAgent("a1").reserved, Resources{});
  EXPECT_EQ(manager_->schedulerView(AgentId("a1"))->reserved, Resources{});
}

TEST_F(ManagerTest, UnknownIdsAreNotFoundAndChangeNothing) {
  EXPECT_EQ(request("mallory").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(manager_->requestSession({UserId("alice"), WorkspaceId("nope"), ZoneId("east"), {}}).error().code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(manager_->requestSession({UserId("alice"), WorkspaceId("desktop"), ZoneId("mars"), {}}).error().code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(manager_->destroySession(SessionId("ghost")).error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(manager_->listSessions()->empty());
  AgentCheckIn bad;
  bad.agent_id = AgentId("ghost");
  EXPECT_EQ(manager_->checkIn(bad).error().code(), ErrorCode::kNotFound);
  bad.agent_id = AgentId("a1");
  bad.token = "forged";
  bad.reported = Resources::fromCores(99, 99 * kGiB);
  EXPECT_EQ(manager_->checkIn(bad).error().code(), ErrorCode::kUnauthenticated);
  bad.token = tokens_["a1"];
  bad.cpu_utilization = 7;
  EXPECT_EQ(manager_->checkIn(bad).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(storedAgent("a1").reported, Resources::fromCores(8, 8 * kGiB));
}

// An agent reports its host; it cannot claim the installation. Reports beyond any one host are
// refused and leave the stored agent as it was.
TEST_F(ManagerTest, ACheckInBeyondWhatAHostCanHaveIsRefused) {
  auto report = [&] {
    AgentCheckIn c;
    c.agent_id = AgentId("a1");
    c.token = tokens_["a1"];
    c.reported = Resources::fromCores(8, 8 * kGiB);
    return c;
  };
  std::vector<AgentCheckIn> bad(6, report());
  bad[0].reported.millicores = std::int64_t{1} << 40;
  bad[1].reported.memory_bytes = std::int64_t{1} << 60;
  bad[2].reported.gpus = 100000;
  bad[3].images.assign(100000, "img:1");
  bad[4].images = {std::string(4096, 'x')};
  bad[5].agent_version = std::string(10000, 'v');
  for (std::size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(manager_->checkIn(bad[i]).error().code(), ErrorCode::kInvalidArgument) << "report " << i;
  }
  EXPECT_EQ(storedAgent("a1").reported, Resources::fromCores(8, 8 * kGiB));
  auto big = report();
  big.reported = Resources::fromCores(256, 2048 * kGiB, 8);  // A large but real host.
  EXPECT_TRUE(manager_->checkIn(big).ok());
}

TEST_F(ManagerTest, KeepaliveExtendsAndExpiryAppliesTheGroupAction) {
  auto s = request("alice");
  advance(std::chrono::minutes(8));
  auto k = manager_->keepalive(s->id);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->expires_at, clock_.now() + std::chrono::minutes(10));
  advance(std::chrono::minutes(9));
  EXPECT_EQ(manager_->tick()->sessions_expired, 0);
  advance(std::chrono::minutes(2));
  EXPECT_EQ(manager_->tick()->sessions_expired, 1);
  EXPECT_EQ(manager_->getSession(s->id)->state, SessionState::kDestroyed);
  EXPECT_EQ(manager_->getSession(s->id)->state_reason, "keepalive expired");

  setGroup([](GroupSettings& g) { g.keepalive_expiration_action = ExpirationAction::kStop; });
  auto t = request("alice");
  advance(std::chrono::minutes(11));
  ASSERT_EQ(manager_->tick()->sessions_expired, 1);
  EXPECT_EQ(manager_->getSession(t->id)->state, SessionState::kStopped);
  EXPECT_EQ(links_["a1"]->status(t->id), spi::ContainerStatus::kExited);
  EXPECT_EQ(storedAgent("a1").session_count, 0);  // Stopped releases CPU and memory.
  auto resumed = manager_->resumeSession(t->id);
  ASSERT_TRUE(resumed.ok()) << resumed.error().toString();
  EXPECT_EQ(resumed->state, SessionState::kRunning);
  EXPECT_EQ(storedAgent("a1").session_count, 1);

  setGroup([](GroupSettings& g) { g.keepalive_expiration_action = ExpirationAction::kPause; });
  ASSERT_TRUE(manager_->keepalive(t->id).ok());
  advance(std::chrono::minutes(11));
  ASSERT_EQ(manager_->tick()->sessions_expired, 1);
  EXPECT_EQ(manager_->getSession(t->id)->state, SessionState::kPaused);
}

TEST_F(ManagerTest, HardTimeLimitIsNeverExtended) {
  setGroup([](GroupSettings& g) { g.session_time_limit = std::chrono::minutes(15); });
  auto s = request("alice");
  for (int i = 0; i < 3; ++i) {
    advance(std::chrono::minutes(5));
    auto k = manager_->keepalive(s->id);
    if (k.ok()) {
      EXPECT_LE(*k->expires_at, *k->hard_expires_at);
    }
    (void)manager_->tick();
  }
  EXPECT_EQ(manager_->getSession(s->id)->state, SessionState::kDestroyed);
  EXPECT_EQ(manager_->getSession(s->id)->state_reason, "session time limit reached");
}

TEST_F(ManagerTest, PauseResumeAndExec) {
  auto s = request("alice");
  auto e = manager_->execInSession(s->id, {{"sh", "-c", "uname"}, "", "", {}, false});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->output, "ran: uname");
  ASSERT_EQ(manager_->pauseSession(s->id)->state, SessionState::kPaused);
  EXPECT_EQ(manager_->execInSession(s->id, {{"true"}, "", "", {}, false}).error().code(),
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(storedAgent("a1").session_count, 1);  // Paused keeps its reservation.
  ASSERT_EQ(manager_->resumeSession(s->id)->state, SessionState::kRunning);
  EXPECT_EQ(manager_->execInSession(s->id, {{}, "", "", {}, false}).error().code(), ErrorCode::kInvalidArgument);
}

// A check-in that changes nothing placement acts on is written only when the stored one is
// checkin_write_interval (15 s) old; anything material is written at once; silence is still found.
TEST_F(ManagerTest, UnchangedCheckInsAreWrittenOnlyEveryWriteInterval) {
  auto version = [&] { return repo_->get<Agent>("a1")->version; };
  checkIn("a1");
  const auto v0 = version();
  const auto t0 = *storedAgent("a1").last_checkin;
  for (int i = 1; i <= 2; ++i) {
    clock_.advance(std::chrono::seconds(5));
    checkIn("a1");  // Same report, 5 and 10 s later: not written.
    EXPECT_EQ(version(), v0);
    EXPECT_EQ(*storedAgent("a1").last_checkin, t0);
  }
  clock_.advance(std::chrono::seconds(5));
  checkIn("a1");  // 15 s after the stored one: written.
  EXPECT_GT(version(), v0);
  EXPECT_EQ(*storedAgent("a1").last_checkin, t0 + std::chrono::seconds(15));
  const auto v1 = version();
  clock_.advance(std::chrono::seconds(1));
  checkIn("a1", 16, 16);  // Capacity changed: written at once.
  EXPECT_GT(version(), v1);
  EXPECT_EQ(storedAgent("a1").reported, Resources::fromCores(16, 16 * kGiB));
  const auto v2 = version();
  clock_.advance(std::chrono::seconds(1));
  AgentCheckIn c;
  c.agent_id = AgentId("a1");
  c.token = tokens_["a1"];
  c.reported = Resources::fromCores(16, 16 * kGiB);
  c.images = {"desktop:1", "desktop:2"};  // A new image: written at once.
  ASSERT_TRUE(manager_->checkIn(c).ok());
  EXPECT_GT(version(), v2);
  // An agent checking in every 5 s never looks silent; one that stops is missing 30 s after the
  // last stored check-in.
  for (int i = 0; i < 12; ++i) {
    clock_.advance(std::chrono::seconds(5));
    ASSERT_TRUE(manager_->checkIn(c).ok());
    EXPECT_EQ(manager_->tick()->agents_missing, 0);
  }
  clock_.advance(std::chrono::seconds(31));
  EXPECT_EQ(manager_->tick()->agents_missing, 1);
}

TEST_F(ManagerTest, SilentAgentsGoMissingThenDeadAndComeBackReconciled) {
  auto s = request("alice");
  clock_.advance(std::chrono::seconds(31));
  auto t1 = manager_->tick();
  EXPECT_EQ(t1->agents_missing, 1);
  EXPECT_EQ(storedAgent("a1").status, AgentStatus::kMissing);
  EXPECT_EQ(manager_->getSession(s->id)->state, SessionState::kRunning);  // Suspect, not dropped.
  EXPECT_FALSE(request("bob").ok());                                      // Nothing else to place on.

  clock_.advance(std::chrono::minutes(3));
  auto t2 = manager_->tick();
  EXPECT_EQ(t2->agents_dead, 1);
  EXPECT_EQ(t2->sessions_failed, 1);
  auto failed = manager_->getSession(s->id);
  EXPECT_EQ(failed->state, SessionState::kFailed);
  EXPECT_NE(failed->state_reason.find("is dead"), std::string::npos);
  EXPECT_EQ(storedAgent("a1").reserved, Resources{});

  // The agent returns still holding the container: it is an orphan now and gets removed.
  ASSERT_TRUE(links_["a1"]->has(s->id));
  checkIn("a1");
  EXPECT_EQ(storedAgent("a1").status, AgentStatus::kOk);
  EXPECT_FALSE(links_["a1"]->has(s->id));
  EXPECT_TRUE(request("bob").ok());
}

// Staging pools are a licensed feature; these tests grant it without a licence (tests/unit/
// license_manager_test.cpp covers the licensed path and the refusal).
class StagingManagerTest : public ManagerTest {
 protected:
  StagingManagerTest() { options_.license.community_features = {std::string(license::features::kStaging)}; }
};

TEST_F(StagingManagerTest, StagingPoolsFillServeAndRefill) {
  StagingConfig cfg;
  cfg.id = StagingConfigId("pool");
  cfg.workspace_id = WorkspaceId("desktop");
  cfg.zone_id = ZoneId("east");
  cfg.desired = 2;
  cfg.expiration = std::chrono::hours(1);
  ASSERT_TRUE(repo_->insert(cfg).ok());
  EXPECT_EQ(manager_->tick()->staged_launched, 2);
  EXPECT_EQ(links_["a1"]->count(), 2u);
  EXPECT_EQ(manager_->tick()->staged_launched, 0);  // Full.

  const int calls_before = links_["a1"]->provision_calls;
  auto s = request("alice");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(links_["a1"]->provision_calls, calls_before);  // Served from the pool, no launch.
  EXPECT_EQ(s->user_id, UserId("alice"));
  EXPECT_FALSE(s->staging_config_id.has_value());
  EXPECT_EQ(links_["a1"]->execs, std::vector<std::string>{"echo assigned"});  // The assign hook ran.
  EXPECT_EQ(manager_->tick()->staged_launched, 1);                            // Refilled.

  // Unclaimed staged sessions are replaced when they expire.
  advance(std::chrono::hours(1));
  auto t = manager_->tick();
  EXPECT_EQ(t->staged_expired, 2);
  EXPECT_EQ(t->staged_launched, 2);
}

TEST_F(StagingManagerTest, StagingBacksOffAfterFailures) {
  StagingConfig cfg;
  cfg.id = StagingConfigId("pool");
  cfg.workspace_id = WorkspaceId("desktop");
  cfg.zone_id = ZoneId("east");
  cfg.desired = 1;
  ASSERT_TRUE(repo_->insert(cfg).ok());
  links_["a1"]->fail_provision = true;
  (void)manager_->tick();
  const int calls = links_["a1"]->provision_calls;
  (void)manager_->tick();
  EXPECT_EQ(links_["a1"]->provision_calls, calls);  // Backing off.
  clock_.advance(std::chrono::seconds(6));
  links_["a1"]->fail_provision = false;
  EXPECT_EQ(manager_->tick()->staged_launched, 1);
}

TEST_F(ManagerTest, RecoveryCompletesOrFailsHalfLaunchedSessions) {
  // Simulate a crash between the store write and the agent's answer.
  auto make = [&](const std::string& id, SessionState state) {
    Session s;
    s.id = SessionId(id);
    s.user_id = UserId("alice");
    s.workspace_id = WorkspaceId("desktop");
    s.agent_id = AgentId("a1");
    s.resources = Resources::fromCores(2, 2 * kGiB);
    s.state = state;
    s.created_at = s.state_changed_at = clock_.now();
    EXPECT_TRUE(repo_->insert(s).ok());
  };
  make("half", SessionState::kProvisioning);
  make("early", SessionState::kRequested);
  Manager restarted(*store_, clock_, random_);
  restarted.attachAgentLink(AgentId("a1"), links_["a1"]);
  ASSERT_TRUE(restarted.start().ok());
  EXPECT_EQ(restarted.getSession(SessionId("half"))->state, SessionState::kRunning);
  EXPECT_TRUE(links_["a1"]->has(SessionId("half")));
  EXPECT_EQ(restarted.getSession(SessionId("early"))->state, SessionState::kFailed);

  // An acknowledged launch whose agent is not connected yet at recovery is not failed: it finishes
  // when the agent connects, with the environment the launch asked for and its lifetimes.
  make("orphaned", SessionState::kProvisioning);
  {
    auto o = repo_->get<Session>("orphaned");
    o->value.launch_environment = {{"TZ", "Europe/Paris"}};
    ASSERT_TRUE(repo_->update(o->value, o->version).ok());
  }
  Manager no_link(*store_, clock_, random_);
  ASSERT_TRUE(no_link.start().ok());
  EXPECT_EQ(no_link.getSession(SessionId("orphaned"))->state, SessionState::kProvisioning);
  EXPECT_EQ(no_link.tick()->launches_completed, 0);
  no_link.attachAgentLink(AgentId("a1"), links_["a1"]);
  EXPECT_EQ(no_link.tick()->launches_completed, 1);
  auto done = no_link.getSession(SessionId("orphaned"));
  EXPECT_EQ(done->state, SessionState::kRunning);
  EXPECT_TRUE(done->expires_at.has_value());  // The group's keepalive applies as for any launch.
  EXPECT_EQ(links_["a1"]->environmentOf(SessionId("orphaned")).at("TZ"), "Europe/Paris");
  EXPECT_EQ(no_link.tick()->launches_completed, 0);

  // An agent that cannot start the container is retried, then the launch fails with its reason.
  make("refused", SessionState::kProvisioning);
  links_["a1"]->fail_provision = true;
  EXPECT_EQ(no_link.tick()->launches_completed, 0);
  EXPECT_EQ(no_link.getSession(SessionId("refused"))->state, SessionState::kProvisioning);
  advance(std::chrono::minutes(11));  // The agent keeps checking in: it is alive, the launch is not.
  EXPECT_EQ(no_link.tick()->launches_completed, 1);
  EXPECT_EQ(no_link.getSession(SessionId("refused"))->state, SessionState::kFailed);
  EXPECT_NE(no_link.getSession(SessionId("refused"))->state_reason.find("out of disk"), std::string::npos);
}

// A stopped container that starts again gets a new host port from the engine; the old port may
// soon belong to another user's container, so the session must route to the new one.
TEST_F(ManagerTest, ResumingAStoppedSessionTakesItsNewUpstream) {
  auto s = request("alice");
  ASSERT_TRUE(s.ok()) << s.error().toString();
  const std::string before = s->upstream;
  ASSERT_TRUE(manager_->stopSession(s->id).ok());
  auto resumed = manager_->resumeSession(s->id);
  ASSERT_TRUE(resumed.ok()) << resumed.error().toString();
  EXPECT_NE(resumed->upstream, before);
  EXPECT_EQ(resumed->upstream, links_["a1"]->upstreamOf(s->id));
  EXPECT_EQ(manager_->getSession(s->id)->upstream, links_["a1"]->upstreamOf(s->id));
}

// A launch that recovery completes creates the container with the session's own VNC password, as
// the first attempt would have.
TEST_F(ManagerTest, RecoveryKeepsTheSessionsVncPassword) {
  ManagerOptions with_key;
  with_key.session_secret_key = "installation key";
  auto ws = repo_->get<Workspace>("desktop");
  ASSERT_TRUE(ws.ok());
  ws->value.protocol = SessionProtocol::kVnc;
  ASSERT_TRUE(manager_->upsertWorkspace(ws->value).ok());
  Session half;
  half.id = SessionId("half-vnc");
  half.user_id = UserId("alice");
  half.workspace_id = WorkspaceId("desktop");
  half.agent_id = AgentId("a1");
  half.resources = Resources::fromCores(2, 2 * kGiB);
  half.state = SessionState::kProvisioning;
  ASSERT_TRUE(repo_->insert(half).ok());
  Manager restarted(*store_, clock_, random_, with_key);
  restarted.attachAgentLink(AgentId("a1"), links_["a1"]);
  ASSERT_TRUE(restarted.start().ok());
  ASSERT_EQ(restarted.getSession(half.id)->state, SessionState::kRunning);
  const auto env = links_["a1"]->environmentOf(half.id);
  ASSERT_TRUE(env.count("KASM_VNC_PASSWORD"));
  ASSERT_TRUE(restarted.vncPassword(half.id).has_value());
  EXPECT_EQ(env.at("KASM_VNC_PASSWORD"), *restarted.vncPassword(half.id));
}

// Two managers on one store race for an agent with room for exactly four sessions.
TEST_F(ManagerTest, TwoManagersNeverOverbookAnAgent) {
  setGroup([](GroupSettings& g) { g.max_sessions_per_user = 0; });
  Manager other(*store_, clock_, random_);
  ASSERT_TRUE(other.start().ok());
  other.attachAgentLink(AgentId("a1"), links_["a1"]);
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      Manager& m = t % 2 ? other : *manager_;
      for (int i = 0; i < 3; ++i) {
        auto r = m.requestSession(SessionRequest{UserId("alice"), WorkspaceId("desktop"), ZoneId("east"), {}});
        if (r.ok())
          ++ok;
        else if (r.error().code() == ErrorCode::kResourceExhausted || r.error().code() == ErrorCode::kAborted)
          ++refused;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(refused.load(), 14);
  EXPECT_EQ(storedAgent("a1").session_count, 4);
  EXPECT_EQ(storedAgent("a1").reserved, Resources::fromCores(8, 8 * kGiB));
  EXPECT_EQ(links_["a1"]->count(), 4u);
}

TEST_F(ManagerTest, AgentTokensAreHashedAndRotatable) {
  EXPECT_EQ(storedAgent("a1").token_hash.rfind("$sha256$", 0), 0u);
  EXPECT_EQ(storedAgent("a1").token_hash.find(tokens_["a1"]), std::string::npos);
  auto fresh = manager_->rotateAgentToken(AgentId("a1"));
  ASSERT_TRUE(fresh.ok());
  AgentCheckIn c;
  c.agent_id = AgentId("a1");
  c.token = tokens_["a1"];
  c.reported = Resources::fromCores(8, 8 * kGiB);
  EXPECT_EQ(manager_->checkIn(c).error().code(), ErrorCode::kUnauthenticated);  // The old token is dead.
  c.token = *fresh;
  EXPECT_TRUE(manager_->checkIn(c).ok());
}

TEST_F(ManagerTest, IdleSessionsAreReported) {
  setGroup([](GroupSettings& g) { g.idle_disconnect = std::chrono::minutes(5); });
  auto s = request("alice");
  advance(std::chrono::minutes(3));
  ASSERT_TRUE(manager_->recordActivity(s->id).ok());
  advance(std::chrono::minutes(4));
  EXPECT_TRUE(manager_->idleSessions()->empty());
  advance(std::chrono::minutes(2));
  EXPECT_EQ(*manager_->idleSessions(), std::vector<SessionId>{s->id});
  EXPECT_EQ(manager_->getSession(s->id)->state, SessionState::kRunning);  // Disconnect, not delete.
}

TEST_F(ManagerTest, DrainingAndDisabledAgentsTakeNothing) {
  ASSERT_TRUE(manager_->setAgentAvailability(AgentId("a1"), true, true).ok());
  auto r = request("alice");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("1 draining"), std::string::npos) << r.error().message();
  ASSERT_TRUE(manager_->setAgentAvailability(AgentId("a1"), true, false).ok());
  EXPECT_TRUE(request("alice").ok());
  ResourceOverrides o;
  o.millicores = 2000;
  ASSERT_TRUE(manager_->setAgentOverrides(AgentId("a1"), o).ok());
  auto over = request("alice");
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code(), ErrorCode::kResourceExhausted);
}

}  // namespace
}  // namespace kasm

namespace kasm {
namespace {

// Kasm's persistent profiles: the user's home on a host directory or volume, mounted only when the
// user's group allows it, never into two live sessions at once, its path safe from user names.
TEST_F(ManagerTest, PersistentProfilesMountOnceWhenTheGroupAllows) {
  auto ws = repo_->get<Workspace>("desktop")->value;
  ws.persistent_profile_path = "/srv/profiles/{username}/{image_id}";
  ASSERT_TRUE(manager_->upsertWorkspace(ws).ok());
  auto volumesOf = [&](const Session& s) { return links_["a1"]->containers.at(s.id.str()).workspace.volumes; };

  auto off = request("alice");  // The group does not allow profiles yet.
  ASSERT_TRUE(off.ok()) << off.error().toString();
  EXPECT_TRUE(off->profile.empty());
  EXPECT_TRUE(volumesOf(*off).empty());
  ASSERT_TRUE(manager_->destroySession(off->id).ok());

  auto group = repo_->get<Group>("all");
  group->value.settings.allow_persistent_profile = true;
  ASSERT_TRUE(repo_->update(group->value, group->version).ok());
  auto on = request("alice");
  ASSERT_TRUE(on.ok()) << on.error().toString();
  EXPECT_EQ(on->profile, "/srv/profiles/alice/desktop");
  const auto volumes = volumesOf(*on);
  ASSERT_EQ(volumes.size(), 1u);
  EXPECT_EQ(volumes[0].source, "/srv/profiles/alice/desktop");
  EXPECT_EQ(volumes[0].target, "/home/kasm-user");
  EXPECT_EQ(volumes[0].uid, 1000);

  // Never two live sessions on one profile; "Disabled" gives a fresh home instead.
  auto twice = request("alice");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(twice.error().message().find(on->id.str()), std::string::npos) << twice.error().message();
  SessionRequest fresh{UserId("alice"), WorkspaceId("desktop"), ZoneId("east"), {}};
  fresh.persistent_profile_mode = "Disabled";
  auto without = manager_->requestSession(fresh);
  ASSERT_TRUE(without.ok()) << without.error().toString();
  EXPECT_TRUE(without->profile.empty());
  ASSERT_TRUE(manager_->destroySession(on->id).ok());
  ASSERT_TRUE(manager_->destroySession(without->id).ok());
  auto again = request("alice");
  ASSERT_TRUE(again.ok()) << again.error().toString();
  EXPECT_EQ(again->profile, "/srv/profiles/alice/desktop");

  // A user name cannot lead the path out of its directory.
  User sly;
  sly.id = UserId("sly");
  sly.username = "../../etc/x";
  sly.group_ids = {GroupId("all")};
  ASSERT_TRUE(repo_->insert(sly).ok());
  auto escaped = request("sly");
  ASSERT_TRUE(escaped.ok()) << escaped.error().toString();
  EXPECT_EQ(escaped->profile, "/srv/profiles/.._.._etc_x/desktop");
  // The profile's lock is in the store: a second manager on the same store (another server of the
  // installation) is refused too, and the lock goes with the session.
  Manager other(*store_, clock_, random_, options_);
  ASSERT_TRUE(other.start().ok());
  other.attachAgentLink(AgentId("a1"), links_["a1"]);
  auto elsewhere = other.requestSession(SessionRequest{UserId("alice"), WorkspaceId("desktop"), ZoneId("east"), {}});
  ASSERT_FALSE(elsewhere.ok());
  EXPECT_NE(elsewhere.error().message().find(again->id.str()), std::string::npos) << elsewhere.error().message();
  const auto locks = [&] {
    auto rows = repo_->list<Setting>();
    return std::count_if(rows->begin(), rows->end(),
                         [](const auto& r) { return r.value.key.starts_with("profile_lock."); });
  };
  EXPECT_EQ(locks(), 2);  // alice's and sly's.
  ASSERT_TRUE(manager_->destroySession(again->id).ok());
  EXPECT_EQ(locks(), 1);
  // A lock left by a session that is gone (a crash) is taken over.
  const std::string key = "profile_lock." + license::detail::sha256Hex("/srv/profiles/alice/desktop").substr(0, 32);
  // A launch placing its session right now (its lock has no stored session yet) is respected ...
  ASSERT_TRUE(repo_->insert(Setting{key, "launching", clock_.now()}).ok());
  auto placing = other.requestSession(SessionRequest{UserId("alice"), WorkspaceId("desktop"), ZoneId("east"), {}});
  ASSERT_FALSE(placing.ok());
  EXPECT_NE(placing.error().message().find("being mounted by another launch"), std::string::npos)
      << placing.error().message();
  // ... until it is older than any launch takes: then it died, and its lock is taken over.
  clock_.advance(std::chrono::minutes(3));
  auto taken = other.requestSession(SessionRequest{UserId("alice"), WorkspaceId("desktop"), ZoneId("east"), {}});
  ASSERT_TRUE(taken.ok()) << taken.error().toString();
  EXPECT_EQ(repo_->get<Setting>(key)->value.value, taken->id.str());
  SessionRequest asked{UserId("bob"), WorkspaceId("desktop"), ZoneId("east"), {}};
  asked.persistent_profile_mode = "Sometimes";
  EXPECT_EQ(manager_->requestSession(asked).error().code(), ErrorCode::kInvalidArgument);
}

TEST(WorkspaceModel, PersistentProfilePathsAreCheckedWithTheirPlaceholdersFilled) {
  Workspace w;
  w.id = WorkspaceId("w1");
  w.friendly_name = "W";
  w.image = "img:1";
  w.resources = Resources::fromCores(1, Resources::kGiB);
  w.persistent_profile_path = "/mnt/profiles/{username}";
  auto valid = w.validate();
  EXPECT_TRUE(valid.ok()) << valid.error().toString();
  EXPECT_EQ(w.profileFor("a/b", "u1"), "/mnt/profiles/a_b");
  EXPECT_EQ(w.profileFor("..", "u1"), "/mnt/profiles/_..");
  w.persistent_profile_path = "kasm-profile-{user_id}";  // A Docker volume.
  valid = w.validate();
  EXPECT_TRUE(valid.ok()) << valid.error().toString();
  EXPECT_EQ(w.profileFor("x", "u1"), "kasm-profile-u1");
  w.persistent_profile_path = "/mnt/../etc/{username}";
  EXPECT_FALSE(w.validate().ok());
  w.persistent_profile_path = "relative/{username}";
  EXPECT_FALSE(w.validate().ok());
}

}  // namespace
}  // namespace kasm
