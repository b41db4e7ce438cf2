// RemoteAgentLink and executeCommand: the manager-side queue, the JSON protocol in both directions
// over the fake agent, timeouts, and malformed input.

#include "kasm/agent/remote_link.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

#include "fake_agent_link.hpp"
#include "kasm/agent/upstream_policy.hpp"

namespace kasm::agent {
namespace {

// Plays the agent: fetches commands from `link` and answers them from `local` until stopped.
class AgentLoop {
 public:
  AgentLoop(RemoteAgentLink& link, spi::AgentLink& local) {
    thread_ = std::thread([&link, &local, this] {
      while (!stop_.load()) {
        auto c = link.nextCommand(std::chrono::milliseconds(20));
        if (c.ok() && *c) (void)link.complete((*c)->id, executeCommand(local, (*c)->json));
      }
    });
  }
  ~AgentLoop() {
    stop_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The fake agent publishes on loopback, as an agent on the server's own host would.
Result<void> loopbackAllowed(std::string_view upstream) {
  return checkUpstream(upstream, {{"127.0.0.0/8"}, /*allow_loopback=*/true});
}

TEST(RemoteAgentLink, EveryCallRoundTripsThroughTheJsonProtocol) {
  RemoteAgentLink link(std::chrono::seconds(5), loopbackAllowed);
  testing::FakeAgentLink fake;
  AgentLoop loop(link, fake);

  spi::ProvisionRequest req;
  req.session_id = SessionId("s1");
  req.user_id = UserId("u1");
  req.workspace.id = WorkspaceId("w1");
  req.workspace.image = "img:1";
  req.workspace.port = 8080;
  req.resources = Resources::fromCores(1, Resources::kGiB);
  req.environment = {{"KASM_VNC_PASSWORD", "secret"}};
  auto p = link.provision(req);
  ASSERT_TRUE(p.ok()) << p.error().toString();
  EXPECT_EQ(p->container_name, "kasm-s1");
  EXPECT_FALSE(p->upstream.empty());
  EXPECT_EQ(fake.count(), 1u);

  auto views = link.sessions();
  ASSERT_TRUE(views.ok());
  ASSERT_EQ(views->size(), 1u);
  EXPECT_EQ(views->front().session_id, SessionId("s1"));
  EXPECT_EQ(views->front().status, spi::ContainerStatus::kRunning);

  EXPECT_TRUE(link.pause(SessionId("s1")).ok());
  EXPECT_EQ(link.sessions()->front().status, spi::ContainerStatus::kPaused);
  EXPECT_TRUE(link.resume(SessionId("s1")).ok());
  auto ran = link.exec(SessionId("s1"), {{"echo", "hi"}, "", "", {}, false});
  ASSERT_TRUE(ran.ok()) << ran.error().toString();
  EXPECT_TRUE(link.destroy(SessionId("s1")).ok());
  EXPECT_EQ(fake.count(), 0u);

  // Errors keep their code across the wire.
  auto missing = link.stop(SessionId("nope"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST(RemoteAgentLink, ASilentAgentTimesOutAndLateAnswersAreRefused) {
  RemoteAgentLink link(std::chrono::milliseconds(50));
  auto r = link.destroy(SessionId("s1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_FALSE(link.nextCommand(std::chrono::milliseconds(1)).value().has_value())
      << "an abandoned command is not sent";
  EXPECT_EQ(link.complete(1, R"({"ok":true,"value":null})").error().code(), ErrorCode::kNotFound);
  link.close("agent replaced");
  auto closed = link.destroy(SessionId("s1"));
  ASSERT_FALSE(closed.ok());
  EXPECT_NE(closed.error().message().find("agent replaced"), std::string::npos);
}

TEST(RemoteAgentLink, MalformedCommandsAndResultsAreErrorsNotCrashes) {
  testing::FakeAgentLink fake;
  for (const char* bad : {"", "{", "[]", R"({"op":5})", R"({"op":"provision","session_id":"s1"})",
                          R"({"op":"explode","session_id":"s1"})", R"({"op":"exec","session_id":"s1","command":[1]})",
                          R"({"op":"stop","session_id":"../x"})"}) {
    const std::string out = executeCommand(fake, bad);
    EXPECT_NE(out.find(R"("ok":false)"), std::string::npos) << bad << " -> " << out;
  }
  RemoteAgentLink link(std::chrono::seconds(5));
  std::thread agent([&] {
    auto c = link.nextCommand(std::chrono::seconds(5));
    ASSERT_TRUE(c.ok() && c->has_value());
    (void)link.complete((*c)->id, "not json");
  });
  auto r = link.sessions();
  agent.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInternal);
}

// An agent answers a provision with an upstream of its choosing; only one inside the networks
// the installation allows it is taken, and the server's loopback and link-local (metadata)
// addresses never are unless allowed.
TEST(RemoteAgentLink, TakesOnlyUpstreamsTheInstallationAllowsTheAgent) {
  std::string reported;
  RemoteAgentLink link(std::chrono::seconds(5), [](std::string_view upstream) {
    return checkUpstream(upstream, {{"10.20.0.0/16"}, /*allow_loopback=*/false});
  });
  std::atomic<bool> stop{false};
  std::thread agent([&] {
    while (!stop.load()) {
      auto c = link.nextCommand(std::chrono::milliseconds(20));
      if (!c.ok() || !*c) continue;
      const std::string value = R"({"container_id":"c1","container_name":"kasm-s1","upstream":")" + reported + "\"}";
      (void)link.complete((*c)->id, R"({"ok":true,"value":)" + value + "}");
    }
  });
  spi::ProvisionRequest req;
  req.session_id = SessionId("s1");
  req.user_id = UserId("u1");
  req.workspace.id = WorkspaceId("w1");
  req.workspace.image = "img:1";
  for (const char* bad : {"169.254.169.254:80", "127.0.0.1:8443", "[::1]:8443", "0.0.0.0:22", "[fe80::1]:80",
                          "[::ffff:169.254.169.254]:80", "10.30.0.5:5901", "metadata.google.internal:80"}) {
    reported = bad;
    auto p = link.provision(req);
    ASSERT_FALSE(p.ok()) << bad << " was taken";
    EXPECT_EQ(p.error().code(), ErrorCode::kPermissionDenied) << bad << ": " << p.error().toString();
  }
  reported = "10.20.3.4:32768";
  auto p = link.provision(req);
  ASSERT_TRUE(p.ok()) << p.error().toString();
  EXPECT_EQ(p->upstream, "10.20.3.4:32768");
  stop.store(true);
  agent.join();

  // A link without a policy takes none.
  RemoteAgentLink bare(std::chrono::milliseconds(200));
  testing::FakeAgentLink fake;
  AgentLoop loop(bare, fake);
  auto refused = bare.provision(req);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kPermissionDenied);
}

// A hung agent (it took the command and never answers): a destroy is given up on after the quick
// timeout, a provision only after the call timeout.
TEST(RemoteAgentLink, AQuickCommandIsGivenUpOnSoonerThanASlowOne) {
  RemoteAgentLink link(std::chrono::seconds(3), loopbackAllowed, std::chrono::milliseconds(200));
  auto taker = std::async(std::launch::async, [&] {
    int taken = 0;
    for (int i = 0; i < 100 && taken < 2; ++i) {
      auto c = link.nextCommand(std::chrono::milliseconds(100));
      if (c.ok() && *c) ++taken;
    }
    return taken;
  });
  const auto began = std::chrono::steady_clock::now();
  auto quick = link.destroy(SessionId("s1"));
  ASSERT_FALSE(quick.ok());
  EXPECT_EQ(quick.error().code(), ErrorCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(2));

  spi::ProvisionRequest req;
  req.session_id = SessionId("s2");
  req.workspace.id = WorkspaceId("w");
  auto slow = std::async(std::launch::async, [&] { return link.provision(req); });
  EXPECT_EQ(slow.wait_for(std::chrono::seconds(1)), std::future_status::timeout) << "a provision waits on";
  auto r = slow.get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("within 3 s"), std::string::npos) << r.error().message();
  EXPECT_EQ(taker.get(), 2);
}

TEST(RemoteAgentLink, ARestartedAgentFailsTheCallsItTookWithItAtOnce) {
  RemoteAgentLink link(std::chrono::minutes(5), loopbackAllowed);
  link.noteBoot("first");
  // A call whose command the agent fetched, then died: its answer will never come.
  auto call = std::async(std::launch::async, [&] { return link.stop(SessionId("s1")); });
  auto fetched = link.nextCommand(std::chrono::seconds(5));
  ASSERT_TRUE(fetched.ok() && *fetched);
  link.noteBoot("first");  // The same process: nothing happens.
  EXPECT_EQ(call.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  const auto before = std::chrono::steady_clock::now();
  link.noteBoot("second");  // A new process polls.
  auto r = call.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("restarted"), std::string::npos) << r.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(5));
  // The link works on with the new process.
  testing::FakeAgentLink fake;
  AgentLoop loop(link, fake);
  EXPECT_EQ(link.stop(SessionId("nope")).error().code(), ErrorCode::kNotFound);
}

TEST(RemoteAgentLink, APollOfAReplacedProcessEndsAndTakesNoCommand) {
  RemoteAgentLink link(std::chrono::minutes(5), loopbackAllowed);
  link.noteBoot("first");
  // The first process's long poll waits on the server when that process is killed.
  auto stale = std::async(std::launch::async, [&] { return link.nextCommand(std::chrono::seconds(30), "first"); });
  while (link.lastPoll() == std::chrono::steady_clock::time_point{}) std::this_thread::yield();
  link.noteBoot("second");  // Its successor checks in.
  ASSERT_EQ(stale.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "the dead poll still waits";
  auto ended = stale.get();
  ASSERT_TRUE(ended.ok()) << ended.error().toString();
  EXPECT_FALSE(*ended);

  // A command queued now is not handed to a late poll of the replaced process (its answer would
  // never come, and the call would wait for the next restart), but to the new process.
  auto call = std::async(std::launch::async, [&] { return link.stop(SessionId("s1")); });
  auto late = link.nextCommand(std::chrono::seconds(1), "first");
  ASSERT_TRUE(late.ok());
  EXPECT_FALSE(*late);
  auto fresh = link.nextCommand(std::chrono::seconds(5), "second");
  ASSERT_TRUE(fresh.ok() && *fresh);
  ASSERT_TRUE(link.complete((*fresh)->id, R"({"ok":true,"value":null})").ok());
  auto r = call.get();
  EXPECT_TRUE(r.ok()) << r.error().toString();
}

TEST(RemoteAgentLink, OneAgentHoldsAtMostAFewWaitingPolls) {
  RemoteAgentLink link(std::chrono::seconds(5));
  std::vector<std::thread> polls;
  std::atomic<int> refused{0}, waited{0};
  for (std::size_t i = 0; i < RemoteAgentLink::kMaxWaitingPolls + 3; ++i) {
    polls.emplace_back([&] {
      auto c = link.nextCommand(std::chrono::milliseconds(1500));
      if (c.ok()) {
        ++waited;
      } else {
        EXPECT_EQ(c.error().code(), ErrorCode::kResourceExhausted);
        ++refused;
      }
    });
  }
  for (auto& t : polls) t.join();
  EXPECT_EQ(waited.load(), static_cast<int>(RemoteAgentLink::kMaxWaitingPolls));
  EXPECT_EQ(refused.load(), 3);
  EXPECT_TRUE(link.nextCommand(std::chrono::milliseconds(1)).ok()) << "slots free up when polls end";
}

// A command handed to a poll whose answer never reached the agent (its poll timed out, a balancer
// dropped the response) goes out again at the agent's next poll, which lists what it holds, rather
// than holding its caller for the call timeout.
TEST(RemoteAgentLink, ACommandThatNeverReachedTheAgentIsHandedOverAgain) {
  RemoteAgentLink link(std::chrono::minutes(5), loopbackAllowed);
  link.noteBoot("p1");
  auto call = std::async(std::launch::async, [&] { return link.destroy(SessionId("s1")); });
  auto lost = link.nextCommand(std::chrono::seconds(5), "p1");
  ASSERT_TRUE(lost.ok() && *lost);

  EXPECT_EQ(link.redeliver("p1", {(*lost)->id}), 0) << "listed by the agent: it has it";
  EXPECT_EQ(link.redeliver("other", {}), 0) << "another process's list says nothing about this one";
  EXPECT_EQ(link.redeliver("p1", {}), 1);
  EXPECT_EQ(link.redeliver("p1", {}), 0) << "queued once";
  auto again = link.nextCommand(std::chrono::seconds(5), "p1");
  ASSERT_TRUE(again.ok() && *again);
  EXPECT_EQ((*again)->id, (*lost)->id) << "the same id: an agent that had it after all runs it once";
  EXPECT_EQ((*again)->json, (*lost)->json);
  ASSERT_TRUE(link.complete((*again)->id, R"({"ok":true,"value":null})").ok());
  auto r = call.get();
  EXPECT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(link.redeliver("p1", {}), 0) << "answered: nothing to send again";
}

// An agent process polls one at a time: when it polls again, its earlier poll still waiting on the
// server was given up, and must not take a command with it.
TEST(RemoteAgentLink, AnEarlierPollOfTheSameProcessEndsWhenItPollsAgain) {
  RemoteAgentLink link(std::chrono::minutes(5), loopbackAllowed);
  link.noteBoot("p1");
  auto stale = std::async(std::launch::async, [&] { return link.nextCommand(std::chrono::seconds(30), "p1"); });
  while (link.lastPoll() == std::chrono::steady_clock::time_point{}) std::this_thread::yield();
  auto fresh = std::async(std::launch::async, [&] { return link.nextCommand(std::chrono::seconds(30), "p1"); });
  ASSERT_EQ(stale.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "the given-up poll still waits";
  auto ended = stale.get();
  ASSERT_TRUE(ended.ok());
  EXPECT_FALSE(*ended);
  auto call = std::async(std::launch::async, [&] { return link.stop(SessionId("s1")); });
  auto got = fresh.get();
  ASSERT_TRUE(got.ok() && *got) << "the live poll takes the command";
  ASSERT_TRUE(link.complete((*got)->id, R"({"ok":true,"value":null})").ok());
  EXPECT_TRUE(call.get().ok());
}

// The agent answers an id it saw in the last minutes with the answer it gave then: a restarted
// server must not number its commands from where the previous one did.
TEST(RemoteAgentLink, CommandIdsDoNotRepeatAcrossServerProcesses) {
  std::set<std::uint64_t> ids;
  for (int process = 0; process < 2; ++process) {
    RemoteAgentLink link(std::chrono::minutes(5), loopbackAllowed);
    auto call = std::async(std::launch::async, [&] { return link.pause(SessionId("s1")); });
    auto c = link.nextCommand(std::chrono::seconds(5));
    ASSERT_TRUE(c.ok() && *c);
    EXPECT_GT((*c)->id, std::uint64_t{1} << 40);
    EXPECT_LT((*c)->id, std::uint64_t{1} << 63) << "carried as a JSON number";
    ids.insert((*c)->id);
    ASSERT_TRUE(link.complete((*c)->id, R"({"ok":true,"value":null})").ok());
    EXPECT_TRUE(call.get().ok());
  }
  EXPECT_EQ(ids.size(), 2u);
}

TEST(UpstreamPolicy, ParsesNetworksOfBothFamilies) {
  for (const char* good : {"10.1.2.3", "10.1.0.0/16", "0.0.0.0/0", "fd00::/8", "2001:db8::1", "::ffff:10.0.0.0/104"}) {
    EXPECT_TRUE(validateNetwork(good).ok()) << good;
  }
  for (const char* bad :
       {"", "10.1.2", "10.1.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/-1", "host.example", "10.0.0.0/8/9"}) {
    EXPECT_EQ(validateNetwork(bad).error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  const UpstreamPolicy v6{{"fd00::/8"}, false};
  EXPECT_TRUE(checkUpstream("[fd00::5]:80", v6).ok());
  EXPECT_FALSE(checkUpstream("[fe00::5]:80", v6).ok());
  EXPECT_EQ(checkUpstream("10.0.0.1", v6).error().code(), ErrorCode::kInvalidArgument) << "no port";
  EXPECT_EQ(checkUpstream("10.0.0.1:0", v6).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(checkUpstream("[fd00::5:80", v6).error().code(), ErrorCode::kInvalidArgument);
  // Even the widest network leaves out what no agent may name.
  const UpstreamPolicy all{{"0.0.0.0/0", "::/0"}, false};
  EXPECT_TRUE(checkUpstream("192.168.1.9:5901", all).ok());
  EXPECT_FALSE(checkUpstream("127.0.0.2:5901", all).ok());
  EXPECT_FALSE(checkUpstream("169.254.0.1:80", all).ok());
  EXPECT_FALSE(checkUpstream("[fe80::1]:80", all).ok());
  EXPECT_FALSE(checkUpstream("224.0.0.1:80", all).ok());
  EXPECT_FALSE(checkUpstream("255.255.255.255:80", all).ok());
  EXPECT_FALSE(checkUpstream("[::]:80", all).ok());
  EXPECT_TRUE(checkUpstream("127.0.0.2:5901", {{"127.0.0.0/8"}, true}).ok()) << "loopback when allowed";
}

}  // namespace
}  // namespace kasm::agent
