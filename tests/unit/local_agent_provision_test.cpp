// LocalAgent::provision against an engine double: a container a dead process left "created" is
// started at once (a kasm-agent killed between creating and starting a session's container must not
// hold every retry of that launch), and two provisions of one session in one agent run one after
// the other.

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "kasm/agent/local_agent.hpp"
#include "kasm/kasm.hpp"
#include "runtime_double.hpp"

namespace kasm::agent {
namespace {

// Containers in memory, by name; createAndStart may be held between "created" and "running".
class EngineDouble final : public testing::UnusedRuntime {
 public:
  // A container of `session` in "created", as a process killed between create and start leaves it.
  void leaveCreated(const SessionId& session, const AgentId& agent) {
    std::lock_guard lock(mutex_);
    spi::ContainerInfo c;
    c.id = "id-" + session.str();
    c.name = LocalAgent::containerName(session);
    c.status = spi::ContainerStatus::kCreated;
    c.labels = {{kManagedLabel, "true"}, {kSessionIdLabel, session.str()}, {kAgentIdLabel, agent.str()}};
    containers_[c.name] = c;
  }
  // From now on createAndStart stops after "created" until release().
  void holdStarts() {
    std::lock_guard lock(mutex_);
    hold_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      hold_ = false;
    }
    changed_.notify_all();
  }
  // Waits until a createAndStart is held after "created".
  void waitUntilHeld() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return held_ > 0; });
  }
  int creates() const {
    std::lock_guard lock(mutex_);
    return creates_;
  }
  int starts() const {
    std::lock_guard lock(mutex_);
    return starts_;
  }
  int inspects() const {
    std::lock_guard lock(mutex_);
    return inspects_;
  }
  spi::ContainerStatus status(const std::string& name) const {
    std::lock_guard lock(mutex_);
    return containers_.at(name).status;
  }

  Result<spi::ContainerInfo> createAndStart(const spi::ContainerSpec& spec) override {
    std::unique_lock lock(mutex_);
    ++creates_;
    if (containers_.contains(spec.name)) return alreadyExists("create container " + spec.name + ": name in use");
    spi::ContainerInfo c;
    c.id = "id-" + spec.name;
    c.name = spec.name;
    c.image = spec.image;
    c.labels = spec.labels;
    c.status = spi::ContainerStatus::kCreated;
    containers_[spec.name] = c;
    ++held_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return !hold_; });
    --held_;
    auto& stored = containers_.at(spec.name);
    stored.status = spi::ContainerStatus::kRunning;
    return stored;
  }
  Result<spi::ContainerInfo> inspect(const std::string& id_or_name) override {
    std::lock_guard lock(mutex_);
    ++inspects_;
    for (const auto& [name, c] : containers_) {
      if (name == id_or_name || c.id == id_or_name) return c;
    }
    return notFound("No such container: " + id_or_name);
  }
  Result<std::vector<spi::ContainerInfo>> list(const std::map<std::string, std::string>&) override {
    return internalError("unused");
  }
  Result<void> start(const std::string& id) override {
    std::lock_guard lock(mutex_);
    ++starts_;
    for (auto& [name, c] : containers_) {
      if (c.id == id) {
        c.status = spi::ContainerStatus::kRunning;
        return {};
      }
    }
    return notFound("No such container: " + id);
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, spi::ContainerInfo> containers_;
  bool hold_ = false;
  int held_ = 0;
  int creates_ = 0;
  int starts_ = 0;
  int inspects_ = 0;
};

class LocalAgentProvisionTest : public ::testing::Test {
 protected:
  LocalAgentProvisionTest() { options_.agent_id = AgentId("agent-1"); }

  spi::ProvisionRequest request(const std::string& session) const {
    spi::ProvisionRequest r;
    r.session_id = SessionId(session);
    r.workspace.id = WorkspaceId("ws-1");
    r.workspace.type = WorkspaceType::kContainer;
    r.workspace.image = "kasm/desktop:latest";
    r.workspace.port = 0;  // No readiness probe: the double publishes nothing.
    return r;
  }

  ManualClock clock_;
  EngineDouble engine_;
  LocalAgentOptions options_;
};

TEST_F(LocalAgentProvisionTest, StartsAContainerADeadProcessLeftCreatedAtOnce) {
  // The agent process that created it was killed before it could start it: nobody else will.
  const auto r = request("s-left-created");
  engine_.leaveCreated(r.session_id, options_.agent_id);
  LocalAgent agent(engine_, clock_, options_);

  auto result = agent.provision(r);
  ASSERT_TRUE(result.ok()) << result.error().toString();
  EXPECT_EQ(result->container_id, "id-" + r.session_id.str());
  EXPECT_EQ(engine_.status(LocalAgent::containerName(r.session_id)), spi::ContainerStatus::kRunning);
  EXPECT_EQ(engine_.starts(), 1);
  EXPECT_EQ(engine_.creates(), 0);
  // One look before the start and one after: no polling for a start that will never come (it
  // used to poll a hundred times, 2 s, longer than a restarting agent lived).
  EXPECT_EQ(engine_.inspects(), 2);
}

TEST_F(LocalAgentProvisionTest, ASecondProvisionOfOneSessionWaitsForTheFirst) {
  const auto r = request("s-twice");
  LocalAgent agent(engine_, clock_, options_);
  engine_.holdStarts();
  auto first = std::async(std::launch::async, [&] { return agent.provision(r); });
  engine_.waitUntilHeld();  // The first has created the container and not started it yet.
  const int inspects_by_first = engine_.inspects();
  auto second = std::async(std::launch::async, [&] { return agent.provision(r); });
  // The second does not even look while the first is starting the container; it would find it
  // "created" and start it under the first.
  EXPECT_EQ(second.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  EXPECT_EQ(engine_.inspects(), inspects_by_first);
  engine_.release();

  auto a = first.get();
  auto b = second.get();
  ASSERT_TRUE(a.ok()) << a.error().toString();
  ASSERT_TRUE(b.ok()) << b.error().toString();
  EXPECT_EQ(a->container_id, b->container_id);
  EXPECT_EQ(engine_.creates(), 1);
  EXPECT_EQ(engine_.starts(), 0);  // The second found it running: nothing to start.
}

TEST_F(LocalAgentProvisionTest, ProvisionsOfDifferentSessionsDoNotWaitForEachOther) {
  LocalAgent agent(engine_, clock_, options_);
  engine_.holdStarts();
  auto first = std::async(std::launch::async, [&] { return agent.provision(request("s-slow")); });
  engine_.waitUntilHeld();
  const auto other = request("s-other");
  engine_.leaveCreated(other.session_id, options_.agent_id);
  auto second = agent.provision(other);  // Would hang here if it waited for s-slow.
  ASSERT_TRUE(second.ok()) << second.error().toString();
  engine_.release();
  auto a = first.get();
  ASSERT_TRUE(a.ok()) << a.error().toString();
}

}  // namespace
}  // namespace kasm::agent
