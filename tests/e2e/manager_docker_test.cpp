// The manager on the real stack: SQLite store, LocalAgent, the Docker Engine API client and a real
// dockerd. A session request ends in a container that answers HTTP on a loopback port; teardown and
// crash recovery leave no container behind.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "docker/docker_test_support.hpp"
#include "kasm/agent/local_agent.hpp"
#include "kasm/api/developer_api.hpp"
#include "kasm/auth/secret.hpp"
#include "kasm/kasm.hpp"
#include "kasm/manager/manager.hpp"
#include "kasm/store/sqlite_store.hpp"

namespace kasm {
namespace {

namespace fs = std::filesystem;

class ManagerOnDocker : public testing::DockerTest {
 protected:
  void SetUp() override {
    testing::DockerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    dir_ = fs::temp_directory_path() / ("kasm-e2e-" + run_id_);
    auto store = openSqliteStore({.path = (dir_ / "kasm.db").string()});
    ASSERT_TRUE(store.ok()) << store.error().toString();
    store_ = std::move(store).value();
    agent_id_ = AgentId("agent-" + run_id_);
    cleanupLabels({{agent::kAgentIdLabel, agent_id_.str()}});
    agent::LocalAgentOptions opts;
    opts.agent_id = agent_id_;
    opts.probe_attempts = 200;
    local_ = std::make_shared<agent::LocalAgent>(*runtime_, clock_, opts);
    manager_ = makeManager();
  }

  void TearDown() override {
    manager_.reset();
    testing::DockerTest::TearDown();
    for (const auto& v : volumes_) (void)runtime_->removeVolume(v);  // What a failed test left.
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // A manager as a fresh process would build it: zone, workspace, agent, check-in.
  std::unique_ptr<Manager> makeManager() {
    auto m = std::make_unique<Manager>(*store_, clock_, random_);
    m->attachAgentLink(agent_id_, local_);
    EXPECT_TRUE(m->start().ok());
    if (!Repository(*store_).get<Zone>("local").ok()) {
      Zone z;
      z.id = ZoneId("local");
      z.name = "Local";
      EXPECT_TRUE(m->upsertZone(z).ok());
      Workspace w;
      w.id = WorkspaceId("busybox");
      w.friendly_name = "Busybox web";
      w.image = image_;
      w.port = 8080;
      w.protocol = SessionProtocol::kHttp;
      w.resources = Resources::fromCores(0.5, 64 * Resources::kMiB);
      EXPECT_TRUE(m->upsertWorkspace(w).ok());
      Group g;
      g.id = GroupId("all");
      g.name = "All";
      EXPECT_TRUE(Repository(*store_).insert(g).ok());
      User u;
      u.id = UserId("alice");
      u.username = "alice";
      u.group_ids = {g.id};
      EXPECT_TRUE(Repository(*store_).insert(u).ok());
      Agent a;
      a.id = agent_id_;
      a.hostname = "localhost";
      a.zone_id = z.id;
      auto reg = m->registerAgent(a);
      EXPECT_TRUE(reg.ok());
      token_ = reg->token;
    }
    auto report = local_->checkIn();
    EXPECT_TRUE(report.ok()) << report.error().toString();
    AgentCheckIn c;
    c.agent_id = agent_id_;
    c.token = token_;
    c.reported = report->capacity;
    c.images = report->images;
    auto in = m->checkIn(c);
    EXPECT_TRUE(in.ok()) << in.error().toString();
    return m;
  }

  ManualClock clock_;
  SeededRandom random_{11};
  fs::path dir_;
  std::unique_ptr<spi::Store> store_;
  AgentId agent_id_;
  std::string token_;
  std::shared_ptr<agent::LocalAgent> local_;
  std::unique_ptr<Manager> manager_;
  std::vector<std::string> volumes_;  // Docker volumes the test may create.
};

TEST_F(ManagerOnDocker, RequestServesHttpAndDestroyRemovesTheContainer) {
  auto s = manager_->requestSession(SessionRequest{UserId("alice"), WorkspaceId("busybox"), ZoneId("local"), {}});
  ASSERT_TRUE(s.ok()) << s.error().toString();
  EXPECT_EQ(s->state, SessionState::kRunning);
  ASSERT_EQ(s->upstream.rfind("127.0.0.1:", 0), 0u) << s->upstream;
  EXPECT_NE(testing::httpGet(s->upstream).find("200"), std::string::npos);

  auto info = runtime_->inspect(s->container_id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->memory_bytes, 64 * Resources::kMiB);  // The workspace's limits reached the engine.
  EXPECT_EQ(info->labels.at(agent::kSessionIdLabel), s->id.str());

  auto e = manager_->execInSession(s->id, {{"sh", "-c", "echo hello-from-$((40+2))"}, "", "", {}, false});
  ASSERT_TRUE(e.ok()) << e.error().toString();
  EXPECT_NE(e->output.find("hello-from-42"), std::string::npos);

  ASSERT_EQ(manager_->destroySession(s->id)->state, SessionState::kDestroyed);
  EXPECT_EQ(runtime_->inspect(s->container_id).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(Repository(*store_).get<Agent>(agent_id_.str())->value.session_count, 0);
}

TEST_F(ManagerOnDocker, RestartCompletesAHalfLaunchAndReconcileRemovesOrphans) {
  // A session the store believes is starting (the manager died before recording the answer) ...
  Session half;
  half.id = SessionId("half-" + run_id_);
  half.user_id = UserId("alice");
  half.workspace_id = WorkspaceId("busybox");
  half.agent_id = agent_id_;
  half.zone_id = ZoneId("local");
  half.resources = Resources::fromCores(0.5, 64 * Resources::kMiB);
  half.state = SessionState::kProvisioning;
  ASSERT_TRUE(Repository(*store_).insert(half).ok());
  // ... and a container the store knows nothing about.
  spi::ProvisionRequest orphan;
  orphan.session_id = SessionId("orphan-" + run_id_);
  orphan.workspace = Repository(*store_).get<Workspace>("busybox")->value;
  orphan.resources = orphan.workspace.resources;
  ASSERT_TRUE(local_->provision(orphan).ok());

  manager_ = makeManager();  // Restart: recovery runs in start().
  auto recovered = manager_->getSession(half.id);
  ASSERT_TRUE(recovered.ok());
  EXPECT_EQ(recovered->state, SessionState::kRunning) << recovered->state_reason;
  EXPECT_NE(testing::httpGet(recovered->upstream).find("200"), std::string::npos);

  ASSERT_TRUE(manager_->reconcileAgent(agent_id_).ok());
  auto left = runtime_->list({{agent::kAgentIdLabel, agent_id_.str()}});
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);  // Only the recovered session's container survives.
  EXPECT_EQ(left->front().labels.at(agent::kSessionIdLabel), half.id.str());
  ASSERT_TRUE(manager_->destroySession(half.id).ok());
}

TEST_F(ManagerOnDocker, ASessionWhoseContainerStoppedRunsAgainWithItsDiskAndNewAddress) {
  // What an engine restart (or a host reboot) leaves: the container stopped, its disk kept.
  auto s = manager_->requestSession(SessionRequest{UserId("alice"), WorkspaceId("busybox"), ZoneId("local"), {}});
  ASSERT_TRUE(s.ok()) << s.error().toString();
  auto wrote = manager_->execInSession(s->id, {{"sh", "-c", "echo kept > /tmp/kept"}, "", "", {}, false});
  ASSERT_TRUE(wrote.ok() && wrote->exit_code == 0);
  ASSERT_TRUE(runtime_->stop(s->container_id, std::chrono::seconds(0)).ok());
  EXPECT_EQ(testing::httpGet(s->upstream).find("200"), std::string::npos);  // Nothing answers there now.

  auto r = manager_->reconcileAgent(agent_id_);
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(r->sessions_restarted, 1);
  auto after = manager_->getSession(s->id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->state, SessionState::kRunning) << after->state_reason;
  EXPECT_EQ(after->container_id, s->container_id);  // The same container, started again.
  auto info = runtime_->inspect(after->container_id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->published, after->upstream);  // The address the engine chose at this start.
  EXPECT_NE(testing::httpGet(after->upstream).find("200"), std::string::npos);
  auto kept = manager_->execInSession(s->id, {{"cat", "/tmp/kept"}, "", "", {}, false});
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->output, "kept\n");
  ASSERT_TRUE(manager_->destroySession(s->id).ok());
}

TEST_F(ManagerOnDocker, AMissingImageIsPulledWhenASessionOfItStarts) {
  const char* image = std::getenv("KASM_TEST_LAUNCH_PULL_IMAGE");
  if (!image) KASM_SKIP_OR_FAIL("no registry image to pull (KASM_TEST_LAUNCH_PULL_IMAGE; scripts/test.sh sets it)");
  (void)runtime_->removeImage(image);  // Not on the host: the launch has to pull it.
  auto ws = Repository(*store_).get<Workspace>("busybox");
  ASSERT_TRUE(ws.ok());
  ws->value.id = WorkspaceId("pulled");
  ws->value.image = image;
  ASSERT_TRUE(manager_->upsertWorkspace(ws->value).ok());
  auto s = manager_->requestSession(SessionRequest{UserId("alice"), WorkspaceId("pulled"), ZoneId("local"), {}});
  ASSERT_TRUE(s.ok()) << s.error().toString();
  EXPECT_EQ(s->state, SessionState::kRunning);
  EXPECT_NE(testing::httpGet(s->upstream).find("200"), std::string::npos);
  ASSERT_TRUE(manager_->destroySession(s->id).ok());

  // An image the registry does not have fails the launch with that reason.
  ws->value.id = WorkspaceId("unpullable");
  ws->value.image = std::string(image) + "-does-not-exist";
  ASSERT_TRUE(manager_->upsertWorkspace(ws->value).ok());
  auto bad = manager_->requestSession(SessionRequest{UserId("alice"), WorkspaceId("unpullable"), ZoneId("local"), {}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("is not on this host"), std::string::npos) << bad.error().toString();
}

TEST_F(ManagerOnDocker, BindMountDirectoriesAreCreatedWithTheWorkspaceOwner) {
  const auto host_dir = dir_ / "homes" / "alice";
  auto ws = Repository(*store_).get<Workspace>("busybox");
  ASSERT_TRUE(ws.ok());
  ws->value.volumes = {VolumeMapping{host_dir.string(), "/data", VolumeMode::kReadWrite, 1234, 2345}};
  ASSERT_TRUE(manager_->upsertWorkspace(ws->value).ok());
  auto s = manager_->requestSession(SessionRequest{UserId("alice"), WorkspaceId("busybox"), ZoneId("local"), {}});
  ASSERT_TRUE(s.ok()) << s.error().toString();
  struct stat st {};
  ASSERT_EQ(::stat(host_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 2345u);
  // The container writes into the mount and the host sees it.
  auto e = manager_->execInSession(s->id, {{"sh", "-c", "echo hi > /data/hello"}, "", "", {}, false});
  ASSERT_TRUE(e.ok()) << e.error().toString();
  EXPECT_EQ(e->exit_code, 0) << e->output;
  EXPECT_TRUE(fs::exists(host_dir / "hello"));
  ASSERT_TRUE(manager_->destroySession(s->id).ok());
}

// Kasm users report losing profile data when a session dies (kasmtech/workspaces-issues #452):
// what a session wrote to its persistent profile before its container was killed (SIGKILL, no
// shutdown) is in the user's next session.
TEST_F(ManagerOnDocker, APersistentProfileKeepsWhatAKilledSessionWrote) {
  Repository repo(*store_);
  auto group = repo.get<Group>("all");
  ASSERT_TRUE(group.ok());
  group->value.settings.allow_persistent_profile = true;
  ASSERT_TRUE(repo.update(group->value, group->version).ok());
  auto ws = repo.get<Workspace>("busybox");
  ASSERT_TRUE(ws.ok());
  ws->value.persistent_profile_path = (dir_ / "profiles" / "{username}").string();
  ws->value.persistent_profile_target = "/home/kasm-user";
  ASSERT_TRUE(manager_->upsertWorkspace(ws->value).ok());

  auto first = manager_->requestSession(SessionRequest{UserId("alice"), WorkspaceId("busybox"), ZoneId("local"), {}});
  ASSERT_TRUE(first.ok()) << first.error().toString();
  EXPECT_EQ(first->profile, (dir_ / "profiles" / "alice").string());
  auto wrote = manager_->execInSession(
      first->id, {{"sh", "-c", "echo kept-$((6*7)) > /home/kasm-user/notes && sync"}, "", "", {}, false});
  ASSERT_TRUE(wrote.ok()) << wrote.error().toString();
  ASSERT_EQ(wrote->exit_code, 0) << wrote->output;
  ASSERT_TRUE(runtime_->kill(first->container_id).ok());  // The session dies without a word.
  ASSERT_TRUE(manager_->destroySession(first->id).ok());

  auto second = manager_->requestSession(SessionRequest{UserId("alice"), WorkspaceId("busybox"), ZoneId("local"), {}});
  ASSERT_TRUE(second.ok()) << second.error().toString();
  auto read = manager_->execInSession(second->id, {{"cat", "/home/kasm-user/notes"}, "", "", {}, false});
  ASSERT_TRUE(read.ok()) << read.error().toString();
  EXPECT_NE(read->output.find("kept-42"), std::string::npos) << read->output;
  ASSERT_TRUE(manager_->destroySession(second->id).ok());
}

// persistent_profile_mode Reset on a Docker volume profile: what the first session wrote is gone in
// the session launched with Reset; deleting the user with delete_profiles removes the volume.
TEST_F(ManagerOnDocker, ResetEmptiesAVolumeProfileAndDeletingTheUserRemovesIt) {
  Repository repo(*store_);
  auto group = repo.get<Group>("all");
  ASSERT_TRUE(group.ok());
  group->value.settings.allow_persistent_profile = true;
  ASSERT_TRUE(repo.update(group->value, group->version).ok());
  auto ws = repo.get<Workspace>("busybox");
  ASSERT_TRUE(ws.ok());
  ws->value.persistent_profile_path = "kasm-e2e-{username}-" + run_id_;
  ASSERT_TRUE(manager_->upsertWorkspace(ws->value).ok());
  const std::string volume = "kasm-e2e-alice-" + run_id_;
  volumes_.push_back(volume);
  auto shell = [&](const SessionId& id, const std::string& script) {
    auto r = manager_->execInSession(id, {{"sh", "-c", script}, "", "", {}, false});
    EXPECT_TRUE(r.ok()) << r.error().toString();
    return r.ok() ? r->output : std::string();
  };
  auto launch = [&](const std::string& mode) {
    SessionRequest req{UserId("alice"), WorkspaceId("busybox"), ZoneId("local"), {}};
    req.persistent_profile_mode = mode;
    return manager_->requestSession(req);
  };
  const std::string probe = "test -e /home/kasm-user/notes && echo present || echo absent";

  auto first = launch("Enabled");
  ASSERT_TRUE(first.ok()) << first.error().toString();
  EXPECT_EQ(first->profile, volume);
  EXPECT_EQ(shell(first->id, "echo written > /home/kasm-user/notes && " + probe), "present\n");
  ASSERT_TRUE(manager_->destroySession(first->id).ok());
  auto kept = launch("");  // The profile outlives its session ...
  ASSERT_TRUE(kept.ok()) << kept.error().toString();
  EXPECT_EQ(shell(kept->id, probe), "present\n");
  ASSERT_TRUE(manager_->destroySession(kept->id).ok());

  auto reset = launch("Reset");  // ... until a launch resets it.
  ASSERT_TRUE(reset.ok()) << reset.error().toString();
  EXPECT_EQ(reset->profile, volume);
  EXPECT_EQ(shell(reset->id, probe), "absent\n");
  EXPECT_EQ(shell(reset->id, "echo again > /home/kasm-user/notes && " + probe), "present\n");
  ASSERT_TRUE(manager_->destroySession(reset->id).ok());

  // The developer API's delete_user with delete_profiles, as an administrator calls it.
  ApiKey key;
  key.id = ApiKeyId("e2e-admin");
  key.name = "e2e";
  key.key = "e2e-key";
  key.secret_hash = auth::hashSecret("e2e-secret");
  key.permissions = {"admin"};
  ASSERT_TRUE(repo.insert(key).ok());
  auto signer = auth::AccessTokenSigner::create(std::string(40, 'k'), clock_);
  ASSERT_TRUE(signer.ok());
  api::DeveloperApi developer(*manager_, *store_, clock_, *signer);
  auto deleted = developer.handle("delete_user", R"({"api_key": "e2e-key", "api_key_secret": "e2e-secret",
      "target_user": {"user_id": "alice"}, "delete_profiles": true})");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_NE(deleted.body.find("\"profile\":\"" + volume + "\""), std::string::npos) << deleted.body;
  EXPECT_NE(deleted.body.find("\"failed\":[]"), std::string::npos) << deleted.body;
  EXPECT_EQ(repo.get<User>("alice").error().code(), ErrorCode::kNotFound);
  auto gone = runtime_->removeVolume(volume);  // The engine no longer has it.
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound) << gone.error().toString();
}

}  // namespace
}  // namespace kasm
