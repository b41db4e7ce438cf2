// LocalAgent on the real engine: provisioning, idempotency, readiness, hooks, lifecycle, check-in,
// and reconciliation after a simulated crash.

#include "kasm/agent/local_agent.hpp"

#include <thread>

#include "docker/docker_test_support.hpp"

namespace kasm::testing {
namespace {

using agent::LocalAgent;
using agent::LocalAgentOptions;
using spi::ContainerStatus;

class LocalAgentTest : public DockerTest {
 protected:
  void SetUp() override {
    DockerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    options_.agent_id = AgentId("agent-" + run_id_);
    options_.probe_attempts = 200;
    // busybox httpd runs as PID 1 and ignores SIGTERM: a short stop timeout keeps tests fast.
    options_.stop_timeout = std::chrono::seconds(1);
    cleanupLabels({{agent::kAgentIdLabel, options_.agent_id.str()}});
  }

  spi::ProvisionRequest request(const std::string& session) {
    spi::ProvisionRequest r;
    r.session_id = SessionId(run_id_ + "-" + session);
    r.user_id = UserId("user-1");
    r.workspace.id = WorkspaceId("ws-busybox");
    r.workspace.image = image_;
    r.workspace.port = 8080;
    r.workspace.protocol = SessionProtocol::kHttp;
    r.workspace.cpu_allocation = CpuAllocationMethod::kInherit;
    r.resources = {250, 32 * Resources::kMiB, 0};
    r.environment = {{"VNC_PW", "secret"}};
    return r;
  }

  ManualClock clock_;
  LocalAgentOptions options_;
};

TEST_F(LocalAgentTest, ProvisionStartsALabelledLimitedContainerThatAnswers) {
  LocalAgent agent(*runtime_, clock_, options_);
  auto r = request("one");
  auto result = agent.provision(r);
  ASSERT_TRUE(result.ok()) << result.error().toString();
  EXPECT_EQ(result->container_name, "kasm-" + r.session_id.str());
  ASSERT_EQ(result->upstream.rfind("127.0.0.1:", 0), 0u);
  EXPECT_NE(httpGet(result->upstream).find("kasm test page base"), std::string::npos);

  auto info = runtime_->inspect(result->container_id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->labels.at("kasm.managed"), "true");
  EXPECT_EQ(info->labels.at("kasm.session_id"), r.session_id.str());
  EXPECT_EQ(info->labels.at("kasm.agent_id"), options_.agent_id.str());
  EXPECT_EQ(info->labels.at("kasm.workspace_id"), "ws-busybox");
  EXPECT_EQ(info->labels.at("kasm.user_id"), "user-1");
  EXPECT_EQ(info->nano_cpus, 250'000'000);  // kInherit -> the agent's default, quotas.
  EXPECT_EQ(info->memory_bytes, 32 * Resources::kMiB);

  auto env = agent.exec(r.session_id, {{"sh", "-c", "echo $VNC_PW"}});
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->output, "secret\n");
}

TEST_F(LocalAgentTest, ProvisionIsIdempotentPerSession) {
  LocalAgent agent(*runtime_, clock_, options_);
  auto r = request("idem");
  auto first = agent.provision(r);
  ASSERT_TRUE(first.ok()) << first.error().toString();
  auto second = agent.provision(r);
  ASSERT_TRUE(second.ok()) << second.error().toString();
  EXPECT_EQ(second->container_id, first->container_id);
  EXPECT_EQ(second->upstream, first->upstream);

  // A stopped container is started again rather than replaced.
  ASSERT_TRUE(agent.stop(r.session_id).ok());
  EXPECT_EQ(runtime_->inspect(first->container_id)->status, ContainerStatus::kExited);
  auto third = agent.provision(r);
  ASSERT_TRUE(third.ok()) << third.error().toString();
  EXPECT_EQ(third->container_id, first->container_id);
  EXPECT_EQ(runtime_->inspect(first->container_id)->status, ContainerStatus::kRunning);
  EXPECT_NE(httpGet(third->upstream).find("kasm test page"), std::string::npos);
}

TEST_F(LocalAgentTest, ConcurrentProvisionsOfOneSessionAgreeOnOneContainer) {
  LocalAgent agent(*runtime_, clock_, options_);
  auto r = request("race");
  std::vector<Result<spi::ProvisionResult>> results(4, internalError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&, i] { results[i] = agent.provision(r); });
  for (auto& t : threads) t.join();
  for (const auto& res : results) {
    ASSERT_TRUE(res.ok()) << res.error().toString();
    EXPECT_EQ(res->container_id, results[0]->container_id);
  }
  auto listed = runtime_->list({{agent::kSessionIdLabel, r.session_id.str()}});
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
}

TEST_F(LocalAgentTest, ReadinessFailureRemovesTheContainer) {
  options_.probe_attempts = 10;
  LocalAgent agent(*runtime_, clock_, options_);
  auto r = request("deaf");
  r.workspace.port = 9999;  // Nothing listens there: docker's proxy accepts, then hangs up.
  auto result = agent.provision(r);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), ErrorCode::kDeadlineExceeded) << result.error().toString();
  auto info = runtime_->inspect(LocalAgent::containerName(r.session_id));
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code(), ErrorCode::kNotFound);
}

TEST_F(LocalAgentTest, FirstLaunchHookRunsOnceAndAFailingHookRemovesTheContainer) {
  LocalAgent agent(*runtime_, clock_, options_);
  auto r = request("hook");
  r.workspace.exec_config.first_launch.cmd = "echo launched >> /tmp/hook.log";
  ASSERT_TRUE(agent.provision(r).ok());
  ASSERT_TRUE(agent.provision(r).ok());  // A retry does not run it again.
  auto log = agent.exec(r.session_id, {{"cat", "/tmp/hook.log"}});
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->output, "launched\n");

  auto bad = request("badhook");
  bad.workspace.exec_config.first_launch.cmd = "echo broken; exit 4";
  auto result = agent.provision(bad);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(result.error().message().find("broken"), std::string::npos);
  EXPECT_FALSE(runtime_->inspect(LocalAgent::containerName(bad.session_id)).ok());
}

TEST_F(LocalAgentTest, ProvisionErrorsLeaveNothingBehind) {
  LocalAgent agent(*runtime_, clock_, options_);
  auto missing = request("missing");
  missing.workspace.image = "kasm-test/absent:" + run_id_;
  auto m = agent.provision(missing);
  ASSERT_FALSE(m.ok());
  // The agent tried to pull it: the registry says it has no such image (NotFound), or cannot be
  // reached (Unavailable: a launch tries again later). Either way the reason names the image.
  EXPECT_TRUE(m.error().code() == ErrorCode::kNotFound || m.error().code() == ErrorCode::kUnavailable)
      << m.error().toString();
  EXPECT_NE(m.error().message().find("is not on this host"), std::string::npos) << m.error().toString();
  auto bad_json = request("badjson");
  bad_json.workspace.run_config_json = "{nope";
  auto b = agent.provision(bad_json);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code(), ErrorCode::kInvalidArgument);
  auto sessions = agent.sessions();
  ASSERT_TRUE(sessions.ok());
  EXPECT_TRUE(sessions->empty());
}

TEST_F(LocalAgentTest, PauseResumeStopDestroy) {
  LocalAgent agent(*runtime_, clock_, options_);
  auto r = request("life");
  auto p = agent.provision(r);
  ASSERT_TRUE(p.ok()) << p.error().toString();
  ASSERT_TRUE(agent.pause(r.session_id).ok());
  ASSERT_TRUE(agent.pause(r.session_id).ok());  // Already paused: fine.
  EXPECT_EQ(runtime_->inspect(p->container_id)->status, ContainerStatus::kPaused);
  auto views = agent.sessions();
  ASSERT_TRUE(views.ok());
  ASSERT_EQ(views->size(), 1u);
  EXPECT_EQ(views->front().session_id, r.session_id);
  EXPECT_EQ(views->front().status, ContainerStatus::kPaused);
  ASSERT_TRUE(agent.resume(r.session_id).ok());
  EXPECT_EQ(runtime_->inspect(p->container_id)->status, ContainerStatus::kRunning);
  ASSERT_TRUE(agent.stop(r.session_id).ok());
  ASSERT_TRUE(agent.resume(r.session_id).ok());  // Resume starts a stopped container.
  EXPECT_EQ(runtime_->inspect(p->container_id)->status, ContainerStatus::kRunning);
  ASSERT_TRUE(agent.destroy(r.session_id).ok());
  ASSERT_TRUE(agent.destroy(r.session_id).ok());  // Gone already: still success.
  auto stop_gone = agent.stop(r.session_id);
  ASSERT_FALSE(stop_gone.ok());
  EXPECT_EQ(stop_gone.error().code(), ErrorCode::kNotFound);
}

TEST_F(LocalAgentTest, RefusesAContainerThatIsNotItsOwn) {
  LocalAgent agent(*runtime_, clock_, options_);
  auto r = request("foreign");
  auto s = spec("ignored");
  s.name = LocalAgent::containerName(r.session_id);  // Same name, no kasm labels.
  s.port = 0;
  s.command = {"sleep", "300"};
  ASSERT_TRUE(runtime_->createAndStart(s).ok());
  auto result = agent.provision(r);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code(), ErrorCode::kFailedPrecondition);
  auto destroyed = agent.destroy(r.session_id);
  EXPECT_FALSE(destroyed.ok());  // Not ours to remove.
  EXPECT_TRUE(runtime_->inspect(s.name).ok());
}

TEST_F(LocalAgentTest, ReconcileAfterACrashRemovesOrphansAndReportsVanishedSessions) {
  auto a = request("a"), b = request("b"), c = request("c");
  std::string id_b;
  {
    LocalAgent before_crash(*runtime_, clock_, options_);
    ASSERT_TRUE(before_crash.provision(a).ok());
    auto pb = before_crash.provision(b);
    ASSERT_TRUE(pb.ok());
    id_b = pb->container_id;
    ASSERT_TRUE(before_crash.provision(c).ok());
    ASSERT_TRUE(before_crash.stop(c.session_id).ok());
  }
  // Another agent on the same engine must not be touched.
  LocalAgentOptions other_options = options_;
  other_options.agent_id = AgentId("other-" + run_id_);
  cleanupLabels({{agent::kAgentIdLabel, other_options.agent_id.str()}});
  LocalAgent other(*runtime_, clock_, other_options);
  auto other_session = request("other");
  ASSERT_TRUE(other.provision(other_session).ok());

  // Restarted with the manager's view: b and c are live, d was placed but never made it; a is gone.
  LocalAgent after_crash(*runtime_, clock_, options_);
  SessionId d(run_id_ + "-d");
  auto report = after_crash.reconcile({b.session_id, c.session_id, d});
  ASSERT_TRUE(report.ok()) << report.error().toString();
  EXPECT_EQ(report->removed_containers, std::vector<std::string>{LocalAgent::containerName(a.session_id)});
  EXPECT_EQ(report->vanished_sessions, std::vector<SessionId>{d});
  EXPECT_EQ(report->stopped_sessions, std::vector<SessionId>{c.session_id});
  EXPECT_FALSE(runtime_->inspect(LocalAgent::containerName(a.session_id)).ok());
  EXPECT_EQ(runtime_->inspect(id_b)->status, ContainerStatus::kRunning);
  EXPECT_TRUE(runtime_->inspect(LocalAgent::containerName(other_session.session_id)).ok());

  // With an empty view every container of this agent goes: zero orphans.
  auto empty = after_crash.reconcile({});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->removed_containers.size(), 2u);
  auto left = after_crash.sessions();
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

TEST_F(LocalAgentTest, CheckInReportsHostResourcesWithOverridesImagesAndLabels) {
  options_.overrides.memory_bytes = 8 * Resources::kGiB;
  options_.overrides.gpus = 2;
  options_.labels = {{"zone", "test"}};
  options_.measure_utilization = true;
  clock_.set(fromUnixMillis(1'800'000'000'000));
  LocalAgent agent(*runtime_, clock_, options_);
  ASSERT_TRUE(agent.provision(request("checkin")).ok());
  auto report = agent.checkIn();
  ASSERT_TRUE(report.ok()) << report.error().toString();
  EXPECT_EQ(report->agent_id, options_.agent_id);
  EXPECT_EQ(report->capacity.millicores, report->host.millicores);
  EXPECT_GT(report->host.millicores, 0);
  EXPECT_EQ(report->capacity.memory_bytes, 8 * Resources::kGiB);
  EXPECT_EQ(report->capacity.gpus, 2);
  EXPECT_NE(std::find(report->images.begin(), report->images.end(), image_), report->images.end());
  EXPECT_EQ(report->labels.at("zone"), "test");
  EXPECT_EQ(report->session_count, 1);
  EXPECT_GT(report->memory_used_bytes, 0);
  EXPECT_EQ(report->at, fromUnixMillis(1'800'000'000'000));
}

}  // namespace
}  // namespace kasm::testing
