// Idempotent launches (SessionRequest::idempotency_key): a retried launch answers the session the
// first attempt made instead of starting a second one, on one manager or on several sharing a
// store, through a new container, a staged session or a fixed server.

#include <atomic>
#include <latch>
#include <set>
#include <thread>

#include "license/armor.hpp"
#include "manager_fixture.hpp"

namespace kasm::testing {
namespace {

class LaunchIdempotencyTest : public ManagerTest {
 protected:
  SessionRequest keyed(const std::string& user, const std::string& key, const std::string& workspace = "desktop") {
    SessionRequest r{UserId(user), WorkspaceId(workspace), ZoneId("east"), {}};
    r.idempotency_key = key;
    return r;
  }
  std::size_t storedSessions() { return repo_->list<Session>()->size(); }
};

TEST_F(LaunchIdempotencyTest, TheSameKeyTwiceMakesOneSession) {
  auto first = manager_->requestSession(keyed("alice", "launch-1"));
  ASSERT_TRUE(first.ok()) << first.error().toString();
  EXPECT_EQ(first->state, SessionState::kRunning);
  bool replayed = false;
  auto again = keyed("alice", "launch-1");
  again.on_replayed = [&](const Session&) { replayed = true; };
  auto second = manager_->requestSession(again);
  ASSERT_TRUE(second.ok()) << second.error().toString();
  EXPECT_EQ(second->id, first->id);
  EXPECT_TRUE(replayed);
  EXPECT_EQ(links_["a1"]->provision_calls, 1);
  EXPECT_EQ(links_["a1"]->count(), 1u);
  EXPECT_EQ(storedSessions(), 1u);
  EXPECT_EQ(storedAgent("a1").session_count, 1);
  // The store keeps a hash scoped to the user, never the client's key.
  const auto stored = manager_->getSession(first->id);
  EXPECT_EQ(stored->launch_key, license::detail::sha256Hex("alice\nlaunch-1"));
  EXPECT_EQ(stored->launch_key.find("launch-1"), std::string::npos);
  // Without a key, or with another, a launch is a new one.
  auto other = manager_->requestSession(keyed("alice", "launch-2"));
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->id, first->id);
  EXPECT_TRUE(other->launch_key != stored->launch_key && !other->launch_key.empty());
}

TEST_F(LaunchIdempotencyTest, KeysAreScopedPerUser) {
  auto a = manager_->requestSession(keyed("alice", "same"));
  auto b = manager_->requestSession(keyed("bob", "same"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->id, b->id);
  EXPECT_EQ(b->user_id, UserId("bob"));
  EXPECT_EQ(links_["a1"]->count(), 2u);
}

TEST_F(LaunchIdempotencyTest, TheSameKeyForAnotherWorkspaceIsRefused) {
  Workspace w = repo_->get<Workspace>("desktop")->value;
  w.id = WorkspaceId("terminal");
  w.friendly_name = "Terminal";
  ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
  ASSERT_TRUE(manager_->requestSession(keyed("alice", "k")).ok());
  auto other = manager_->requestSession(keyed("alice", "k", "terminal"));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(other.error().message().find("idempotency key already used for a launch of another workspace"),
            std::string::npos)
      << other.error().message();
  EXPECT_EQ(storedSessions(), 1u);
}

TEST_F(LaunchIdempotencyTest, MalformedKeysAreInvalidArgumentAndStartNothing) {
  for (const std::string& bad : {std::string(256, 'k'), std::string("line\nbreak"), std::string("tab\there"),
                                 std::string("del\x7f"), std::string("caf\xc3\xa9")}) {
    auto r = manager_->requestSession(keyed("alice", bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(r.error().message().find("idempotency_key"), std::string::npos);
  }
  EXPECT_EQ(storedSessions(), 0u);
  EXPECT_EQ(links_["a1"]->provision_calls, 0);
  // 255 bytes of printable ASCII, spaces included, are a key.
  auto longest = manager_->requestSession(keyed("alice", std::string(254, '~') + " "));
  ASSERT_TRUE(longest.ok()) << longest.error().toString();
}

// The user's limit counts the session a retry asks for again: the retry is answered, not refused.
TEST_F(LaunchIdempotencyTest, ARetryIsNotRefusedByTheLimitsItsSessionFills) {
  setGroup([](GroupSettings& g) { g.max_sessions_per_user = 1; });
  auto first = manager_->requestSession(keyed("alice", "k"));
  ASSERT_TRUE(first.ok());
  auto retry = manager_->requestSession(keyed("alice", "k"));
  ASSERT_TRUE(retry.ok()) << retry.error().toString();
  EXPECT_EQ(retry->id, first->id);
  EXPECT_EQ(manager_->requestSession(keyed("alice", "k2")).error().code(), ErrorCode::kResourceExhausted);
}

// A retry gets the session whatever became of it: a failed launch is answered as failed, and is
// not tried again under the same key.
TEST_F(LaunchIdempotencyTest, ARetryOfAFailedLaunchAnswersTheFailedSession) {
  links_["a1"]->fail_provision = true;
  auto first = manager_->requestSession(keyed("alice", "k"));
  ASSERT_FALSE(first.ok());
  links_["a1"]->fail_provision = false;
  auto retry = manager_->requestSession(keyed("alice", "k"));
  ASSERT_TRUE(retry.ok()) << retry.error().toString();
  EXPECT_EQ(retry->state, SessionState::kFailed);
  EXPECT_EQ(links_["a1"]->provision_calls, 1);
  EXPECT_EQ(storedSessions(), 1u);
}

// What the scale-out test saw: the answer to a stored launch is lost (its server died, or here its
// agent did not answer), the client retries, and the first session is finished by tick() while
// the retry is answered with it rather than a second desktop.
TEST_F(LaunchIdempotencyTest, ARetryAfterALostAnswerGetsTheAcknowledgedLaunch) {
  links_["a1"]->fail_provision = true;  // As "unavailable": the agent did not answer.
  std::optional<Session> stored;
  auto req = keyed("alice", "k");
  req.on_stored = [&](const Session& s) { stored = s; };
  auto first = manager_->requestSession(req);
  ASSERT_FALSE(first.ok());
  ASSERT_TRUE(stored.has_value());
  auto retry = manager_->requestSession(keyed("alice", "k"));
  ASSERT_TRUE(retry.ok()) << retry.error().toString();
  EXPECT_EQ(retry->id, stored->id);
  EXPECT_EQ(retry->state, SessionState::kProvisioning);
  links_["a1"]->fail_provision = false;
  EXPECT_EQ(manager_->tick()->launches_completed, 1);
  EXPECT_EQ(manager_->getSession(stored->id)->state, SessionState::kRunning);
  EXPECT_EQ(links_["a1"]->count(), 1u);
  EXPECT_EQ(storedSessions(), 1u);
}

// Launches with one key racing on two managers that share the store: exactly one session, and
// every one of them answers it.
TEST_F(LaunchIdempotencyTest, RacingLaunchesOnTwoManagersMakeOneSession) {
  setGroup([](GroupSettings& g) { g.max_sessions_per_user = 0; });
  Manager other(*store_, clock_, random_);
  ASSERT_TRUE(other.start().ok());
  other.attachAgentLink(AgentId("a1"), links_["a1"]);
  for (int round = 0; round < 4; ++round) {  // a1 has room for four.
    const std::string key = "race-" + std::to_string(round);
    std::vector<std::thread> threads;
    std::mutex mu;
    std::set<std::string> ids;
    std::vector<std::string> errors;
    std::latch start(6);  // All at once, so that they race past the first lookup.
    for (int t = 0; t < 6; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        auto r = (t % 2 ? other : *manager_).requestSession(keyed("alice", key));
        std::lock_guard lock(mu);
        if (r.ok())
          ids.insert(r->id.str());
        else
          errors.push_back(r.error().toString());
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_TRUE(errors.empty()) << errors.front();
    EXPECT_EQ(ids.size(), 1u) << "round " << round;
  }
  EXPECT_EQ(storedSessions(), 4u);
  EXPECT_EQ(links_["a1"]->count(), 4u);
  EXPECT_EQ(storedAgent("a1").session_count, 4);
}

// Racing launches of a workspace with a persistent profile: the one that lost the profile's lock
// waits for the winner's session rather than report the profile busy.
TEST_F(LaunchIdempotencyTest, RacingLaunchesWithAPersistentProfileMakeOneSession) {
  setGroup([](GroupSettings& g) {
    g.allow_persistent_profile = true;
    g.max_sessions_per_user = 0;
  });
  auto ws = repo_->get<Workspace>("desktop")->value;
  ws.persistent_profile_path = "/srv/profiles/{username}";
  ASSERT_TRUE(manager_->upsertWorkspace(ws).ok());
  for (int round = 0; round < 5; ++round) {
    std::vector<std::thread> threads;
    std::mutex mu;
    std::set<std::string> ids;
    std::vector<std::string> errors;
    std::latch start(4);
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        start.arrive_and_wait();
        auto r = manager_->requestSession(keyed("alice", "profile-" + std::to_string(round)));
        std::lock_guard lock(mu);
        if (r.ok())
          ids.insert(r->id.str());
        else
          errors.push_back(r.error().toString());
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_TRUE(errors.empty()) << errors.front();
    ASSERT_EQ(ids.size(), 1u) << "round " << round;
    ASSERT_TRUE(manager_->destroySession(SessionId(*ids.begin())).ok());  // Frees the profile.
  }
  EXPECT_EQ(storedSessions(), 5u);
}

class StagedLaunchIdempotencyTest : public LaunchIdempotencyTest {
 protected:
  StagedLaunchIdempotencyTest() { options_.license.community_features = {std::string(license::features::kStaging)}; }
  void SetUp() override {
    LaunchIdempotencyTest::SetUp();
    StagingConfig cfg;
    cfg.id = StagingConfigId("pool");
    cfg.workspace_id = WorkspaceId("desktop");
    cfg.zone_id = ZoneId("east");
    cfg.desired = 2;
    cfg.expiration = std::chrono::hours(1);
    ASSERT_TRUE(repo_->insert(cfg).ok());
    ASSERT_EQ(manager_->tick()->staged_launched, 2);
  }
  std::size_t unclaimed() {
    auto sessions = repo_->list<Session>();
    std::size_t n = 0;
    for (const auto& s : *sessions) n += s.value.isStaged() ? 1 : 0;
    return n;
  }
};

TEST_F(StagedLaunchIdempotencyTest, AReplayedClaimAnswersTheClaimedSession) {
  auto claimed = manager_->requestSession(keyed("alice", "k"));
  ASSERT_TRUE(claimed.ok()) << claimed.error().toString();
  EXPECT_EQ(claimed->user_id, UserId("alice"));
  EXPECT_EQ(unclaimed(), 1u);
  auto replay = manager_->requestSession(keyed("alice", "k"));
  ASSERT_TRUE(replay.ok()) << replay.error().toString();
  EXPECT_EQ(replay->id, claimed->id);
  EXPECT_EQ(unclaimed(), 1u) << "the replay claims nothing";
  EXPECT_EQ(links_["a1"]->provision_calls, 2);  // The pool's two; no launch since.
}

TEST_F(StagedLaunchIdempotencyTest, RacingClaimsWithOneKeyClaimOneStagedSession) {
  setGroup([](GroupSettings& g) { g.max_sessions_per_user = 0; });
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::string> ids;
  std::vector<std::string> errors;
  std::latch start(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      auto r = manager_->requestSession(keyed("alice", "k"));
      std::lock_guard lock(mu);
      if (r.ok())
        ids.insert(r->id.str());
      else
        errors.push_back(r.error().toString());
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(unclaimed(), 1u);
  EXPECT_EQ(storedSessions(), 2u);
}

TEST_F(LaunchIdempotencyTest, AFixedServerLaunchIsReplayedWithoutASecondSlot) {
  setGroup([](GroupSettings& g) { g.max_sessions_per_user = 0; });
  Server s;
  s.id = ServerId("ssh-1");
  s.friendly_name = "ssh-1";
  s.hostname = "127.0.0.1";
  s.port = 22;
  s.zone_id = ZoneId("east");
  s.connection_type = ServerConnectionType::kSsh;  // Several sessions of one user may share it.
  s.connection_username = "{sso_username}";
  s.max_simultaneous_sessions = 10;
  ASSERT_TRUE(manager_->upsertServer(s).ok());
  Workspace w;
  w.id = WorkspaceId("shell");
  w.type = WorkspaceType::kServer;
  w.friendly_name = "Shell";
  w.server_id = s.id;
  ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
  auto first = manager_->requestSession(keyed("alice", "k", "shell"));
  ASSERT_TRUE(first.ok()) << first.error().toString();
  auto replay = manager_->requestSession(keyed("alice", "k", "shell"));
  ASSERT_TRUE(replay.ok()) << replay.error().toString();
  EXPECT_EQ(replay->id, first->id);
  EXPECT_EQ(repo_->get<Server>("ssh-1")->value.slots.size(), 1u);
  // Racing ones too.
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::latch start(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      ok += manager_->requestSession(keyed("alice", "k2", "shell")).ok() ? 1 : 0;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(repo_->get<Server>("ssh-1")->value.slots.size(), 2u);
}

}  // namespace
}  // namespace kasm::testing
