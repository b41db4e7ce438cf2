// RemoteAgentLink and executeCommand: the manager-side queue, the JSON protocol in both directions
// over the fake agent, timeouts, and malformed input.

#include "kasm/agent/remote_link.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "fake_agent_link.hpp"

namespace kasm::agent {
namespace {

// Plays the agent: fetches commands from `link` and answers them from `local` until stopped.
class AgentLoop {
 public:
  AgentLoop(RemoteAgentLink& link, spi::AgentLink& local) {
    thread_ = std::thread([&link, &local, this] {
      while (!stop_.load()) {
        auto c = link.nextCommand(std::chrono::milliseconds(20));
        if (c) (void)link.complete(c->id, executeCommand(local, c->json));
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

TEST(RemoteAgentLink, EveryCallRoundTripsThroughTheJsonProtocol) {
  RemoteAgentLink link(std::chrono::seconds(5));
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
  EXPECT_FALSE(link.nextCommand(std::chrono::milliseconds(1)).has_value()) << "an abandoned command is not sent";
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
    ASSERT_TRUE(c.has_value());
    (void)link.complete(c->id, "not json");
  });
  auto r = link.sessions();
  agent.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInternal);
}

}  // namespace
}  // namespace kasm::agent
