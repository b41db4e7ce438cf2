// The manager's reconciliation with what its agents hold: containers that vanished, orphans, and
// containers that stopped under a running or paused session (an engine restart, a host reboot).

#include <gtest/gtest.h>

#include "manager_fixture.hpp"

namespace kasm {
namespace {

using testing::ManagerTest;
constexpr std::int64_t kGiB = Resources::kGiB;

TEST_F(ManagerTest, ReconcileFailsSessionsWhoseContainerVanished) {
  auto s = request("alice");
  links_["a1"]->containers.clear();
  ASSERT_TRUE(manager_->reconcileAgent(AgentId("a1")).ok());
  EXPECT_EQ(manager_->getSession(s->id)->state, SessionState::kFailed);
  EXPECT_NE(manager_->getSession(s->id)->state_reason.find("vanished"), std::string::npos);
  EXPECT_EQ(storedAgent("a1").session_count, 0);
}

TEST_F(ManagerTest, ReconcileRestartsARunningSessionWhoseContainerStopped) {
  auto s = request("alice");
  ASSERT_TRUE(s.ok());
  auto& link = *links_["a1"];
  const std::string before = link.upstreamOf(s->id);
  link.containers.at(s->id.str()).status = spi::ContainerStatus::kExited;  // The engine restarted.
  auto r = manager_->reconcileAgent(AgentId("a1"));
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(r->sessions_restarted, 1);
  EXPECT_EQ(link.status(s->id), spi::ContainerStatus::kRunning);
  auto after = manager_->getSession(s->id);
  EXPECT_EQ(after->state, SessionState::kRunning);
  EXPECT_NE(after->state_reason.find("restarted"), std::string::npos);
  // The engine chose a new port at the start: the session now points there, not at the old one.
  EXPECT_NE(after->upstream, before);
  EXPECT_EQ(after->upstream, link.upstreamOf(s->id));
  EXPECT_EQ(storedAgent("a1").reserved, Resources::fromCores(2, 2 * kGiB));
  // Nothing else to do the next time.
  EXPECT_FALSE(manager_->reconcileAgent(AgentId("a1"))->changed());
}

TEST_F(ManagerTest, ReconcileWaitsForAnEngineThatIsNotBackYet) {
  auto s = request("alice");
  auto& link = *links_["a1"];
  link.containers.at(s->id.str()).status = spi::ContainerStatus::kExited;
  link.fail_provision = true;  // Unavailable, as an engine that is still starting.
  auto r = manager_->reconcileAgent(AgentId("a1"));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->changed());
  EXPECT_EQ(manager_->getSession(s->id)->state, SessionState::kRunning);
  link.fail_provision = false;
  EXPECT_EQ(manager_->reconcileAgent(AgentId("a1"))->sessions_restarted, 1);
  EXPECT_EQ(link.status(s->id), spi::ContainerStatus::kRunning);
}

TEST_F(ManagerTest, ASessionWhoseContainerKeepsStoppingFailsAfterThreeRestarts) {
  auto s = request("alice");
  auto& link = *links_["a1"];
  for (int i = 0; i < 3; ++i) {
    link.containers.at(s->id.str()).status = spi::ContainerStatus::kExited;
    EXPECT_EQ(manager_->reconcileAgent(AgentId("a1"))->sessions_restarted, 1) << "restart " << i;
    clock_.advance(std::chrono::minutes(1));
  }
  link.containers.at(s->id.str()).status = spi::ContainerStatus::kExited;
  EXPECT_EQ(manager_->reconcileAgent(AgentId("a1"))->sessions_failed, 1);
  auto failed = manager_->getSession(s->id);
  EXPECT_EQ(failed->state, SessionState::kFailed);
  EXPECT_NE(failed->state_reason.find("4 times within 10 minutes"), std::string::npos) << failed->state_reason;
  EXPECT_EQ(storedAgent("a1").reserved, Resources{});
}

TEST_F(ManagerTest, RestartsOutsideTheWindowDoNotCount) {
  auto s = request("alice");
  auto& link = *links_["a1"];
  for (int i = 0; i < 5; ++i) {
    link.containers.at(s->id.str()).status = spi::ContainerStatus::kExited;
    EXPECT_EQ(manager_->reconcileAgent(AgentId("a1"))->sessions_restarted, 1) << "restart " << i;
    advance(std::chrono::minutes(4));  // Three within any ten minutes at most.
  }
  EXPECT_EQ(manager_->getSession(s->id)->state, SessionState::kRunning);
}

TEST_F(ManagerTest, APausedSessionWhoseContainerStoppedBecomesStoppedAndResumesWithItsNewAddress) {
  auto s = request("alice");
  ASSERT_TRUE(manager_->pauseSession(s->id).ok());
  auto& link = *links_["a1"];
  const std::string before = link.upstreamOf(s->id);
  link.containers.at(s->id.str()).status = spi::ContainerStatus::kExited;
  EXPECT_EQ(manager_->reconcileAgent(AgentId("a1"))->sessions_stopped, 1);
  auto stopped = manager_->getSession(s->id);
  EXPECT_EQ(stopped->state, SessionState::kStopped);
  EXPECT_NE(stopped->state_reason.find("stopped while the session was paused"), std::string::npos);
  EXPECT_EQ(storedAgent("a1").reserved, Resources{});
  auto resumed = manager_->resumeSession(s->id);
  ASSERT_TRUE(resumed.ok()) << resumed.error().toString();
  EXPECT_EQ(resumed->state, SessionState::kRunning);
  EXPECT_NE(resumed->upstream, before);
  EXPECT_EQ(resumed->upstream, link.upstreamOf(s->id));
}

TEST_F(ManagerTest, ReconcileLeavesAStoppedSessionsContainerAlone) {
  auto s = request("alice");
  ASSERT_TRUE(manager_->stopSession(s->id).ok());
  auto r = manager_->reconcileAgent(AgentId("a1"));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->changed());
  EXPECT_EQ(links_["a1"]->status(s->id), spi::ContainerStatus::kExited);
  EXPECT_EQ(manager_->getSession(s->id)->state, SessionState::kStopped);
}

TEST_F(ManagerTest, AnAgentKeepsTheImagesOfTheWorkspacesThatMayRunOnIt) {
  addAgent("a2", 8, 8);
  auto add = [&](const std::string& id, const std::string& image, auto&& edit) {
    Workspace w;
    w.id = WorkspaceId(id);
    w.friendly_name = id;
    w.image = image;
    w.resources = Resources::fromCores(1, kGiB);
    edit(w);
    ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
  };
  add("only-a2", "only-a2:1", [](Workspace& w) { w.restrict_to_agent = AgentId("a2"); });
  Zone west;
  west.id = ZoneId("west");
  west.name = "West";
  ASSERT_TRUE(manager_->upsertZone(west).ok());
  add("west", "west:1", [](Workspace& w) { w.restrict_to_zone = ZoneId("west"); });
  add("off", "off:1", [](Workspace& w) { w.enabled = false; });
  add("again", "desktop:1", [](Workspace&) {});  // The same image as "desktop": listed once.
  EXPECT_EQ(*manager_->desiredImages(AgentId("a1")), (std::vector<std::string>{"desktop:1"}));
  EXPECT_EQ(*manager_->desiredImages(AgentId("a2")), (std::vector<std::string>{"desktop:1", "only-a2:1"}));
  EXPECT_FALSE(manager_->desiredImages(AgentId("nobody")).ok());
}

// A restarted agent's interrupted launches go on when it is back, without waiting for tick().
TEST_F(ManagerTest, CompleteLaunchesFinishesWhatAnAgentsRestartInterrupted) {
  auto& link = *links_["a1"];
  link.fail_provision = true;  // Unavailable: the agent process died with the command.
  SessionRequest req{UserId("alice"), WorkspaceId("desktop"), ZoneId("east"), {}};
  req.on_stored = [](const Session&) {};  // Acknowledged once stored, as the APIs do.
  auto refused = manager_->requestSession(req);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnavailable);
  // The session is stored, placed and provisioning: an acknowledged launch to finish later.
  auto sessions = manager_->listSessions(spi::Query().where("user_id", "alice"));
  ASSERT_TRUE(sessions.ok());
  ASSERT_EQ(sessions->size(), 1u);
  const Session* s = &sessions->front();
  EXPECT_EQ(s->state, SessionState::kProvisioning);
  EXPECT_EQ(*manager_->completeLaunches(AgentId("a1")), 0);  // Still not answering.
  link.fail_provision = false;
  EXPECT_EQ(*manager_->completeLaunches(AgentId("a1")), 1);
  auto done = manager_->getSession(s->id);
  EXPECT_EQ(done->state, SessionState::kRunning);
  EXPECT_EQ(done->state_reason, "completed after an interruption");
  EXPECT_EQ(*manager_->completeLaunches(AgentId("a1")), 0);
}

}  // namespace
}  // namespace kasm

namespace kasm {
namespace {

// Session history is kept for a while, then deleted: only ended sessions (destroyed, failed),
// only those that ended before the cut-off, only in the zones asked for.
TEST_F(ManagerTest, EndedSessionsArePurgedAfterTheirRetention) {
  addUser("carol");
  auto old_one = request("alice");
  auto running = request("bob");
  ASSERT_TRUE(old_one.ok() && running.ok());
  ASSERT_TRUE(manager_->destroySession(old_one->id).ok());
  advance(std::chrono::hours(24 * 31));  // The agents keep checking in.
  auto recent = request("carol");
  ASSERT_TRUE(recent.ok()) << recent.error().toString();
  ASSERT_TRUE(manager_->destroySession(recent->id).ok());

  const std::set<ZoneId> elsewhere{ZoneId("west")};
  auto none = manager_->purgeEndedSessions(std::chrono::hours(24 * 30), &elsewhere);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0) << "a manager purges only the zones it leads";
  auto purged = manager_->purgeEndedSessions(std::chrono::hours(24 * 30));
  ASSERT_TRUE(purged.ok()) << purged.error().toString();
  EXPECT_EQ(*purged, 1);
  EXPECT_EQ(repo_->get<Session>(old_one->id.str()).error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(repo_->get<Session>(recent->id.str()).ok()) << "ended a moment ago: kept";
  EXPECT_TRUE(repo_->get<Session>(running->id.str()).ok()) << "running: never purged";
  auto again = manager_->purgeEndedSessions(std::chrono::hours(24 * 30));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
}

}  // namespace
}  // namespace kasm
