// Commands for remote agents relayed through the store (kasm/cluster/agent_commands.hpp): any
// server commands an agent that polls any other, results reach the caller wherever it runs, and
// servers or agents that die mid-command lose nothing and run nothing twice.

#include "kasm/cluster/agent_commands.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <future>
#include <thread>

#include "fake_agent_link.hpp"
#include "kasm/agent/remote_link.hpp"
#include "manager_fixture.hpp"

namespace kasm {
namespace {

using cluster::AgentCommands;
using cluster::AgentCommandsOptions;
using namespace std::chrono_literals;

class AgentCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = makeMemoryStore();
    Repository repo(*store_);
    Agent a;
    a.id = AgentId("agent1");
    a.hostname = "agent1";
    a.zone_id = ZoneId("east");
    a.status = AgentStatus::kOk;
    ASSERT_TRUE(repo.insert(a).ok());
  }
  void TearDown() override {
    stop_ = true;
    for (auto& s : servers_) s->stop();
    for (auto& t : threads_) t.join();
  }

  // A server of the installation; with `events`, its events reach every server (as on Redis).
  AgentCommands& server(const std::string& node, bool events = true, Duration fetch_timeout = 5s) {
    AgentCommandsOptions o;
    o.node = ManagerNodeId(node);
    o.fetch_timeout = fetch_timeout;
    o.call_timeout = 5s;
    o.quick_call_timeout = quick_call_timeout_;
    if (events) {
      o.publish = [this](std::string event) {
        auto v = boost::json::parse(event).as_object();
        const std::string type(v.at("type").as_string());
        const std::string subject(v.at(type == "agent_command" ? "agent" : "id").as_string());
        for (auto& s : servers_) s->onEvent(type, subject);
      };
    }
    servers_.push_back(std::make_unique<AgentCommands>(*store_, clock_, o));
    return *servers_.back();
  }
  // The agent: polls `via` (each poll waiting up to `wait`) and runs what comes on `local`.
  void agentPolling(AgentCommands& via, std::shared_ptr<spi::AgentLink> local, Duration wait = 200ms) {
    threads_.emplace_back([this, &via, local, wait] {
      while (!stop_.load()) {
        auto c = via.next(AgentId("agent1"), "boot1", wait);
        if (!c.ok() || !*c) continue;
        ++delivered_;
        (void)via.complete(AgentId("agent1"), (*c)->id, agent::executeCommand(*local, (*c)->json));
      }
    });
  }
  void stopAgents() {
    stop_ = true;
    for (auto& s : servers_) s->stop();  // Ends the polls waiting now.
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  Duration quick_call_timeout_ = 5s;
  std::size_t rows() {
    auto n = store_->count(spi::Table::kAgentCommands, {});
    return n.ok() ? static_cast<std::size_t>(*n) : 999;
  }

  SystemClock clock_;
  std::unique_ptr<spi::Store> store_;
  std::vector<std::unique_ptr<AgentCommands>> servers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int> delivered_{0};
};

auto anyUpstream() {
  return [](std::string_view) -> Result<void> { return {}; };
}

TEST_F(AgentCommandsTest, AServerCommandsAnAgentThatPollsAnother) {
  auto& a = server("a");
  auto& b = server("b");
  auto local = std::make_shared<testing::FakeAgentLink>();
  // Polls that wait 20 s and no sweep: only the events bring the command to b's poll and the
  // result back to a's caller before the fetch timeout (5 s).
  agentPolling(b, local, 20s);
  auto link = a.link(AgentId("agent1"), anyUpstream());
  spi::ProvisionRequest r;
  r.session_id = SessionId("s1");
  r.workspace.image = "desktop:1";
  const auto began = std::chrono::steady_clock::now();
  auto p = link->provision(r);
  ASSERT_TRUE(p.ok()) << p.error().toString();
  EXPECT_EQ(p->upstream, local->upstreamOf(SessionId("s1")));
  EXPECT_LT(std::chrono::steady_clock::now() - began, 4s) << "events wake the poll and the caller";
  ASSERT_TRUE(link->destroy(SessionId("s1")).ok());
  EXPECT_EQ(local->provision_calls, 1);
  EXPECT_EQ(local->destroy_calls, 1);
  EXPECT_EQ(rows(), 0u) << "the caller removes what it has read";
}

// Without events (no Redis, no NOTIFY, or one lost), the sweep wakes the poll and the caller.
TEST_F(AgentCommandsTest, WithoutEventsTheSweepWakesThePollAndTheCaller) {
  auto& a = server("a", false);
  auto& b = server("b", false);
  threads_.emplace_back([&] {
    while (!stop_.load()) {
      (void)a.sweep();
      (void)b.sweep();
      std::this_thread::sleep_for(100ms);
    }
  });
  auto local = std::make_shared<testing::FakeAgentLink>();
  agentPolling(b, local, 20s);
  auto link = a.link(AgentId("agent1"), anyUpstream());
  const auto began = std::chrono::steady_clock::now();
  auto s = link->sessions();
  ASSERT_TRUE(s.ok()) << s.error().toString();
  EXPECT_LT(std::chrono::steady_clock::now() - began, 4s) << "before the poll's 20 s and the fetch timeout's 5 s";
  stopAgents();
}

TEST_F(AgentCommandsTest, AnAgentThatDoesNotCheckInFailsAtOnce) {
  auto& a = server("a");
  Repository repo(*store_);
  auto row = repo.get<Agent>("agent1");
  row->value.status = AgentStatus::kMissing;
  ASSERT_TRUE(repo.update(row->value, row->version).ok());
  const auto began = std::chrono::steady_clock::now();
  auto r = a.call(AgentId("agent1"), R"({"op":"sessions"})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - began, 1s);
  auto unknown = a.call(AgentId("nobody"), R"({"op":"sessions"})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(rows(), 0u);
}

TEST_F(AgentCommandsTest, ACommandNobodyFetchesFailsAfterTheFetchTimeoutAndIsRemoved) {
  auto& a = server("a", true, 300ms);
  auto r = a.call(AgentId("agent1"), R"({"op":"sessions"})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("is it polling"), std::string::npos) << r.error().message();
  EXPECT_EQ(rows(), 0u);
}

// A quick command (a destroy) that the agent took and never answered is given up on after the
// quick timeout; a slow one (a provision, which may pull an image) is still waited for.
TEST_F(AgentCommandsTest, AQuickCommandIsGivenUpOnSoonerThanASlowOne) {
  quick_call_timeout_ = 300ms;
  // The caller sees its command handed over when fetch_timeout ends: 1 s leaves the agent time to
  // take it on a loaded machine, and the quick call still ends at about 1.3 s, not 6.
  auto& a = server("a", true, 1s);
  std::atomic<int> taken{0};
  threads_.emplace_back([&] {
    while (!stop_.load() && taken < 2) {
      auto c = a.next(AgentId("agent1"), "boot1", 100ms);
      if (c.ok() && *c) ++taken;  // Taken, never answered: a hung agent.
    }
  });
  const auto began = std::chrono::steady_clock::now();
  auto quick = a.call(AgentId("agent1"), R"({"op":"destroy","session_id":"s1"})", agent::CommandPace::kQuick);
  ASSERT_FALSE(quick.ok());
  EXPECT_EQ(quick.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(quick.error().message().find("did not answer"), std::string::npos) << quick.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - began, 4s) << "the quick timeout, not the call timeout";

  auto slow = std::async(std::launch::async, [&] {
    return a.call(AgentId("agent1"), R"({"op":"provision","session_id":"s2"})", agent::CommandPace::kSlow);
  });
  EXPECT_EQ(slow.wait_for(1s), std::future_status::timeout) << "a slow command waits out the call timeout";
  a.stop();  // Releases it (the server stops) rather than waiting 5 s.
  EXPECT_FALSE(slow.get().ok());
}

TEST_F(AgentCommandsTest, OnlyTheAgentItselfAnswersAndARepeatChangesNothing) {
  auto& a = server("a");
  auto& b = server("b");
  std::atomic<std::uint64_t> id{0};
  threads_.emplace_back([&] {
    for (int i = 0; i < 50 && id == 0; ++i) {
      auto c = b.next(AgentId("agent1"), "boot1", 100ms);
      if (c.ok() && *c) id = (*c)->id;
    }
    auto other = b.complete(AgentId("agent2"), id, R"({"ok":true,"value":"forged"})");
    EXPECT_EQ(other.ok() ? ErrorCode::kInternal : other.error().code(), ErrorCode::kNotFound)
        << "another agent's token cannot answer this agent's command";
    EXPECT_TRUE(b.complete(AgentId("agent1"), id, R"({"ok":true,"value":"first"})").ok());
    // A repeat is accepted while the row is there, and NotFound once the caller took the first.
    auto repeat = b.complete(AgentId("agent1"), id, R"({"ok":true,"value":"second"})");
    EXPECT_TRUE(repeat.ok() || repeat.error().code() == ErrorCode::kNotFound) << repeat.error().toString();
  });
  auto r = a.call(AgentId("agent1"), R"({"op":"sessions"})");
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(*r, R"({"ok":true,"value":"first"})");
  threads_.back().join();
  threads_.pop_back();
  auto late = b.complete(AgentId("agent1"), id, R"({"ok":true,"value":"late"})");
  EXPECT_FALSE(late.ok()) << "nobody waits any more";
}

TEST_F(AgentCommandsTest, ACommandHandedToAProcessThatRestartedFailsAtOnce) {
  auto& a = server("a");
  auto& b = server("b");
  threads_.emplace_back([&] {
    for (int i = 0; i < 50; ++i) {
      auto c = b.next(AgentId("agent1"), "boot1", 100ms);
      if (c.ok() && *c) break;
    }
    // The agent dies with the command; its new process checks in somewhere.
    EXPECT_TRUE(a.agentRestarted(AgentId("agent1"), "boot2").ok());
  });
  const auto began = std::chrono::steady_clock::now();
  auto r = a.call(AgentId("agent1"), R"({"op":"sessions"})");
  ASSERT_TRUE(r.ok());  // The call carries the agent's kind of answer: a failure.
  EXPECT_NE(r->find("restarted"), std::string::npos) << *r;
  EXPECT_LT(std::chrono::steady_clock::now() - began, 3s);
}

TEST_F(AgentCommandsTest, ACommandADeadServerHandedOverIsHandedOverAgainAndRunsOnce) {
  auto& a = server("a");
  auto& b = server("b");
  auto& c = server("c");
  // b and c are alive (heartbeats); b claims the command, then dies before the agent answers.
  Repository repo(*store_);
  for (const char* n : {"b", "c"}) {
    ManagerNode node;
    node.id = ManagerNodeId(n);
    node.hostname = n;
    node.heartbeat_at = clock_.now();
    ASSERT_TRUE(repo.insert(node).ok());
  }
  std::atomic<std::uint64_t> first_id{0};
  threads_.emplace_back([&] {
    for (int i = 0; i < 50 && first_id == 0; ++i) {
      auto got = b.next(AgentId("agent1"), "boot1", 100ms);
      if (got.ok() && *got) first_id = (*got)->id;
    }
  });
  std::atomic<bool> answered{false};
  Result<std::string> result = internalError("not yet");
  std::thread caller([&] {
    result = a.call(AgentId("agent1"), R"({"op":"sessions"})");
    answered = true;
  });
  threads_.back().join();
  threads_.pop_back();
  ASSERT_NE(first_id.load(), 0u);
  // b's heartbeat is now old: the sweep of any live server queues it again, and c hands it over.
  auto node = repo.get<ManagerNode>("b");
  node->value.heartbeat_at = clock_.now() - 30s;
  ASSERT_TRUE(repo.update(node->value, node->version).ok());
  ASSERT_TRUE(c.sweep().ok());
  auto again = c.next(AgentId("agent1"), "boot1", 2s);
  ASSERT_TRUE(again.ok() && *again);
  EXPECT_EQ((*again)->id, first_id.load()) << "the same id, so the agent runs it once";
  ASSERT_TRUE(c.complete(AgentId("agent1"), (*again)->id, R"({"ok":true,"value":[]})").ok());
  caller.join();
  ASSERT_TRUE(result.ok()) << result.error().toString();
  EXPECT_EQ(*result, R"({"ok":true,"value":[]})");
}

// A command a live server handed over whose answer never reached the agent (its poll timed out,
// the balancer lost the response) goes out again when the agent polls next and does not list it,
// with the same id; after max_deliveries it fails rather than wait for the call timeout.
TEST_F(AgentCommandsTest, ACommandThatNeverReachedTheAgentIsHandedOverAgain) {
  auto& a = server("a");
  auto& b = server("b");
  Result<std::string> result = internalError("not yet");
  std::thread caller([&] { result = a.call(AgentId("agent1"), R"({"op":"sessions"})"); });
  std::uint64_t first = 0;
  for (int i = 0; i < 50 && first == 0; ++i) {
    auto got = b.next(AgentId("agent1"), "boot1", 100ms);
    if (got.ok() && *got) first = (*got)->id;
  }
  ASSERT_NE(first, 0u);
  auto listed = b.redeliver(AgentId("agent1"), "boot1", {first});
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, 0) << "the agent lists it: it has it";
  auto other = b.redeliver(AgentId("agent1"), "boot2", {});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other, 0) << "another process's list says nothing about this one";
  for (int delivery = 2; delivery <= 3; ++delivery) {
    auto again = a.redeliver(AgentId("agent1"), "boot1", {});  // Any server: the row is in the store.
    ASSERT_TRUE(again.ok()) << again.error().toString();
    EXPECT_EQ(*again, 1);
    auto got = b.next(AgentId("agent1"), "boot1", 2s);
    ASSERT_TRUE(got.ok() && *got);
    EXPECT_EQ((*got)->id, first) << "the same id: an agent that had it after all runs it once";
  }
  // Handed over max_deliveries (3) times and never arrived: the caller has its failure now.
  const auto began = std::chrono::steady_clock::now();
  auto failed = b.redeliver(AgentId("agent1"), "boot1", {});
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(*failed, 0);
  caller.join();
  EXPECT_LT(std::chrono::steady_clock::now() - began, 3s);
  ASSERT_TRUE(result.ok()) << result.error().toString();
  EXPECT_NE(result->find("never arrived"), std::string::npos) << *result;
}

TEST_F(AgentCommandsTest, AnEarlierPollOfTheSameProcessEndsWhenItPollsAgain) {
  auto& b = server("b");
  std::atomic<bool> stale_ended{false};
  std::thread stale([&] {
    auto c = b.next(AgentId("agent1"), "boot1", 30s);
    EXPECT_TRUE(c.ok() && !*c) << "a given-up poll takes nothing";
    stale_ended = true;
  });
  std::this_thread::sleep_for(200ms);
  auto fresh = b.next(AgentId("agent1"), "boot1", 300ms);
  ASSERT_TRUE(fresh.ok());
  stale.join();
  EXPECT_TRUE(stale_ended.load());
}

TEST_F(AgentCommandsTest, StopReleasesWaitingPollsAndCallers) {
  auto& a = server("a");
  std::thread poll([&] {
    auto c = a.next(AgentId("agent1"), "boot1", 30s);
    EXPECT_TRUE(c.ok() && !*c);
  });
  std::this_thread::sleep_for(100ms);
  const auto began = std::chrono::steady_clock::now();
  a.stop();
  poll.join();
  EXPECT_LT(std::chrono::steady_clock::now() - began, 2s);
}

// Two managers on one store, the agent attached to neither: each reaches it through the queue
// (ManagerOptions::remote_link), which is how a launch placed by any server starts on an agent
// that polls another.
TEST_F(AgentCommandsTest, ManagersLaunchOnAnAgentNoneOfThemHolds) {
  ManualClock mclock;
  auto& a = server("a");
  auto& b = server("b");
  SeededRandom random(5);
  ManagerOptions mo;
  mo.remote_link = [&](const AgentId& id) { return a.link(id, anyUpstream()); };
  Repository repo(*store_);
  Zone zone;
  zone.id = ZoneId("east");
  zone.name = "east";
  ASSERT_TRUE(repo.insert(zone).ok());
  Manager m1(*store_, mclock, random, mo);
  ASSERT_TRUE(m1.start().ok());
  Agent ag;
  ag.id = AgentId("agent2");
  ag.hostname = "agent2";
  ag.zone_id = zone.id;
  auto reg = m1.registerAgent(ag);
  ASSERT_TRUE(reg.ok());
  AgentCheckIn in;
  in.agent_id = ag.id;
  in.token = reg->token;
  in.reported = Resources::fromCores(8, 8 * Resources::kGiB);
  in.images = {"desktop:1"};
  ASSERT_TRUE(m1.checkIn(in).ok());
  auto local = std::make_shared<testing::FakeAgentLink>();
  threads_.emplace_back([&, local] {
    while (!stop_.load()) {
      auto c = b.next(AgentId("agent2"), "boot1", 200ms);
      if (c.ok() && *c) (void)b.complete(AgentId("agent2"), (*c)->id, agent::executeCommand(*local, (*c)->json));
    }
  });
  Workspace w;
  w.id = WorkspaceId("desktop");
  w.friendly_name = "Desktop";
  w.image = "desktop:1";
  w.resources = Resources::fromCores(1, Resources::kGiB);
  ASSERT_TRUE(m1.upsertWorkspace(w).ok());
  User u;
  u.id = UserId("alice");
  u.username = "alice";
  ASSERT_TRUE(repo.insert(u).ok());
  auto s = m1.requestSession(SessionRequest{u.id, w.id, zone.id, {}});
  ASSERT_TRUE(s.ok()) << s.error().toString();
  EXPECT_EQ(s->state, SessionState::kRunning);
  EXPECT_EQ(local->provision_calls, 1);
  ASSERT_TRUE(m1.destroySession(s->id).ok());
  EXPECT_EQ(local->destroy_calls, 1);
  stopAgents();
}

}  // namespace
}  // namespace kasm
