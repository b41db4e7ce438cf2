// Persistent profiles removed on purpose: persistent_profile_mode "Reset" (the user's profile is
// wiped once, before the session's container first starts, never again on recovery, retries or
// resume), Manager::removeUserProfiles (a deleted user's per-user profiles on every agent), and
// LocalAgent::removeProfile on a host directory (symbolic links inside are removed, never followed).

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "fake_agent_link.hpp"
#include "kasm/agent/local_agent.hpp"
#include "kasm/kasm.hpp"
#include "kasm/manager/manager.hpp"
#include "runtime_double.hpp"

namespace kasm {
namespace {

using testing::FakeAgentLink;
constexpr std::int64_t kGiB = Resources::kGiB;
constexpr const char* kAliceDesktop = "/srv/profiles/alice/desktop";

// Passes everything to a FakeAgentLink, but holds provision() until open() (a launch caught after
// its profile was wiped and before its container answered: what a crash leaves behind).
class GatedLink final : public spi::AgentLink {
 public:
  explicit GatedLink(std::shared_ptr<FakeAgentLink> inner) : inner_(std::move(inner)) {}
  Result<spi::ProvisionResult> provision(const spi::ProvisionRequest& r) override {
    entered_.set_value();
    gate_.wait();
    return inner_->provision(r);
  }
  Result<void> stop(const SessionId& s) override { return inner_->stop(s); }
  Result<void> destroy(const SessionId& s) override { return inner_->destroy(s); }
  Result<void> pause(const SessionId& s) override { return inner_->pause(s); }
  Result<void> resume(const SessionId& s) override { return inner_->resume(s); }
  Result<spi::ExecResult> exec(const SessionId& s, const spi::ExecRequest& r) override { return inner_->exec(s, r); }
  Result<std::vector<spi::AgentSessionView>> sessions() override { return inner_->sessions(); }
  Result<void> removeProfile(const std::string& profile) override { return inner_->removeProfile(profile); }

  bool waitEntered() { return entered_future_.wait_for(std::chrono::seconds(30)) == std::future_status::ready; }
  void open() { opener_.set_value(); }

 private:
  std::shared_ptr<FakeAgentLink> inner_;
  std::promise<void> entered_;
  std::future<void> entered_future_ = entered_.get_future();
  std::promise<void> opener_;
  std::shared_future<void> gate_ = opener_.get_future().share();
};

class ProfileResetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = makeMemoryStore();
    repo_ = std::make_unique<Repository>(*store_);
    manager_ = std::make_unique<Manager>(*store_, clock_, random_);
    ASSERT_TRUE(manager_->start().ok());
    Zone z;
    z.id = ZoneId("east");
    z.name = "East";
    ASSERT_TRUE(manager_->upsertZone(z).ok());
    addWorkspace("desktop", "Desktop", "/srv/profiles/{username}/{image_id}");
    Group g;
    g.id = GroupId("all");
    g.name = "All users";
    g.settings.allow_persistent_profile = true;
    g.settings.max_sessions_per_user = 0;  // The profile's lock is what keeps a second launch out.
    ASSERT_TRUE(repo_->insert(g).ok());
    addUser("alice", "alice");
    addUser("bob", "bob");
    a1_ = addAgent("a1");
  }

  void addWorkspace(const std::string& id, const std::string& name, const std::string& profile_path) {
    Workspace w;
    w.id = WorkspaceId(id);
    w.friendly_name = name;
    w.image = "desktop:1";
    w.resources = Resources::fromCores(1, kGiB);
    w.persistent_profile_path = profile_path;
    auto saved = manager_->upsertWorkspace(w);
    ASSERT_TRUE(saved.ok()) << saved.error().toString();
  }

  void addUser(const std::string& id, const std::string& username) {
    User u;
    u.id = UserId(id);
    u.username = username;
    u.group_ids = {GroupId("all")};
    ASSERT_TRUE(repo_->insert(u).ok());
  }

  std::shared_ptr<FakeAgentLink> addAgent(const std::string& id, Manager* m = nullptr) {
    auto link = std::make_shared<FakeAgentLink>();
    EXPECT_EQ(testing::connectFakeAgent(m ? *m : *manager_, link, id, ZoneId("east"), Resources::fromCores(8, 8 * kGiB),
                                        {"desktop:1"}),
              "");
    return link;
  }

  Result<Session> request(const std::string& user, const std::string& mode, const std::string& ws = "desktop") {
    SessionRequest r{UserId(user), WorkspaceId(ws), ZoneId("east"), {}};
    r.persistent_profile_mode = mode;
    return manager_->requestSession(r);
  }

  std::size_t profileLocks() {
    auto rows = repo_->list<Setting>();
    return static_cast<std::size_t>(std::count_if(
        rows->begin(), rows->end(), [](const auto& r) { return r.value.key.starts_with("profile_lock."); }));
  }

  static std::size_t wipes(const FakeAgentLink& link) {
    return static_cast<std::size_t>(std::count_if(
        link.events.begin(), link.events.end(), [](const std::string& e) { return e.starts_with("remove_profile "); }));
  }

  ManualClock clock_;
  SeededRandom random_{9};
  std::unique_ptr<spi::Store> store_;
  std::unique_ptr<Repository> repo_;
  std::unique_ptr<Manager> manager_;
  std::shared_ptr<FakeAgentLink> a1_;
};

TEST_F(ProfileResetTest, ResetWipesTheProfileOnceBeforeTheFirstProvision) {
  auto s = request("alice", "Reset");
  ASSERT_TRUE(s.ok()) << s.error().toString();
  EXPECT_EQ(s->state, SessionState::kRunning);
  EXPECT_EQ(s->profile, kAliceDesktop);
  const std::vector<std::string> expected{std::string("remove_profile ") + kAliceDesktop, "provision " + s->id.str()};
  EXPECT_EQ(a1_->events, expected);
  // The fresh profile is mounted like any other.
  const auto volumes = a1_->containers.at(s->id.str()).workspace.volumes;
  ASSERT_EQ(volumes.size(), 1u);
  EXPECT_EQ(volumes[0].source, kAliceDesktop);

  // Stop and resume start the same container again: nothing is wiped.
  ASSERT_TRUE(manager_->stopSession(s->id).ok());
  auto resumed = manager_->resumeSession(s->id);
  ASSERT_TRUE(resumed.ok()) << resumed.error().toString();
  EXPECT_EQ(resumed->state, SessionState::kRunning);
  ASSERT_TRUE(manager_->tick().ok());
  EXPECT_EQ(wipes(*a1_), 1u);
  // The profile is locked like any other; Enabled launches keep it.
  EXPECT_EQ(request("alice", "Reset").error().code(), ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(manager_->destroySession(s->id).ok());
  auto kept = request("alice", "Enabled");
  ASSERT_TRUE(kept.ok()) << kept.error().toString();
  EXPECT_EQ(wipes(*a1_), 1u);
  EXPECT_EQ(a1_->removed_profiles, std::vector<std::string>{kAliceDesktop});
}

// A launch interrupted after the wipe (the container did not answer yet) is finished by recovery
// in a restarted manager and by tick(): they provision, and never wipe again.
TEST_F(ProfileResetTest, RecoveryAndTickNeverWipeAgain) {
  auto gated = std::make_shared<GatedLink>(a1_);
  manager_->attachAgentLink(AgentId("a1"), gated);
  std::promise<Result<Session>> launched;
  std::thread launch([&] { launched.set_value(request("alice", "Reset")); });
  ASSERT_TRUE(gated->waitEntered());
  EXPECT_EQ(wipes(*a1_), 1u);
  auto stored = repo_->list<Session>();
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  const Session half = stored->front().value;
  EXPECT_EQ(half.state, SessionState::kProvisioning);

  // This process's own tick leaves a launch it is making alone.
  ASSERT_TRUE(manager_->tick().ok());
  // A manager that starts now (the first one crashed) finishes the launch: provision only.
  Manager restarted(*store_, clock_, random_);
  restarted.attachAgentLink(AgentId("a1"), a1_);
  ASSERT_TRUE(restarted.start().ok());
  auto recovered = restarted.getSession(half.id);
  ASSERT_TRUE(recovered.ok());
  EXPECT_EQ(recovered->state, SessionState::kRunning) << recovered->state_reason;
  ASSERT_TRUE(restarted.recover().ok());
  clock_.advance(std::chrono::seconds(5));
  ASSERT_TRUE(restarted.tick().ok());

  gated->open();
  launch.join();
  auto first = launched.get_future().get();
  ASSERT_TRUE(first.ok()) << first.error().toString();
  EXPECT_EQ(first->state, SessionState::kRunning);
  EXPECT_EQ(wipes(*a1_), 1u);
  ASSERT_FALSE(a1_->events.empty());
  EXPECT_EQ(a1_->events.front(), std::string("remove_profile ") + kAliceDesktop);
  EXPECT_EQ(a1_->count(), 1u);  // One container, however many provisions.
}

TEST_F(ProfileResetTest, ResetIsRefusedForASharedProfileOrWithoutPermission) {
  // One profile for every user of the workspace: nobody resets it for themselves.
  addWorkspace("team", "Team desktop", "/srv/profiles/team-{image_id}");
  auto shared = request("alice", "Reset", "team");
  ASSERT_FALSE(shared.ok());
  EXPECT_EQ(shared.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(shared.error().message().find("shared by every user"), std::string::npos) << shared.error().message();
  EXPECT_NE(shared.error().message().find("Team desktop"), std::string::npos);
  addWorkspace("nohome", "No home", "");
  EXPECT_EQ(request("alice", "Reset", "nohome").error().code(), ErrorCode::kFailedPrecondition);

  // The group does not allow profiles: refused like Enabled.
  auto g = repo_->get<Group>("all");
  g->value.settings.allow_persistent_profile = false;
  ASSERT_TRUE(repo_->update(g->value, g->version).ok());
  auto denied = request("alice", "Reset");
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(request("alice", "Enabled").error().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(request("alice", "reset").error().code(), ErrorCode::kInvalidArgument);

  EXPECT_EQ(wipes(*a1_), 0u);
  EXPECT_EQ(a1_->provision_calls, 0);
  EXPECT_EQ(profileLocks(), 0u);
}

// Two user names that only differ in characters a path segment cannot hold share one profile
// directory: one of them may not wipe it.
TEST_F(ProfileResetTest, ResetIsRefusedWhenItWouldRemoveAnotherUsersProfile) {
  addUser("ab1", "a/b");
  addUser("ab2", "a_b");
  auto r = request("ab1", "Reset");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message().find("user 'a_b'"), std::string::npos) << r.error().message();
  EXPECT_EQ(wipes(*a1_), 0u);
  EXPECT_EQ(profileLocks(), 0u);
}

TEST_F(ProfileResetTest, AFailedWipeFailsTheLaunchAndFreesTheProfile) {
  a1_->fail_remove_profile = "permission denied on /srv/profiles";
  auto r = request("alice", "Reset");
  ASSERT_FALSE(r.ok());
  const std::string why = r.error().message();
  EXPECT_NE(why.find("workspace 'Desktop'"), std::string::npos) << why;
  EXPECT_NE(why.find("agent a1"), std::string::npos) << why;
  EXPECT_NE(why.find("permission denied on /srv/profiles"), std::string::npos) << why;
  EXPECT_EQ(a1_->provision_calls, 0);  // No container on a profile that was not reset.
  auto sessions = repo_->list<Session>();
  ASSERT_TRUE(sessions.ok());
  ASSERT_EQ(sessions->size(), 1u);
  EXPECT_EQ(sessions->front().value.state, SessionState::kFailed);
  EXPECT_NE(sessions->front().value.state_reason.find("permission denied on /srv/profiles"), std::string::npos);
  EXPECT_EQ(repo_->get<Agent>("a1")->value.session_count, 0);
  EXPECT_EQ(profileLocks(), 0u);
  // Recovery does not try again.
  ASSERT_TRUE(manager_->recover().ok());
  ASSERT_TRUE(manager_->tick().ok());
  EXPECT_EQ(wipes(*a1_), 1u);
  EXPECT_EQ(a1_->provision_calls, 0);

  a1_->fail_remove_profile.clear();
  auto again = request("alice", "Enabled");
  ASSERT_TRUE(again.ok()) << again.error().toString();
}

using Pair = std::pair<std::string, std::string>;  // Profile, agent.

std::set<Pair> pairs(const std::vector<Manager::ProfileRemoval::Entry>& entries) {
  std::set<Pair> out;
  for (const auto& e : entries) out.emplace(e.profile, e.agent_id ? e.agent_id->str() : "-");
  return out;
}

TEST_F(ProfileResetTest, RemoveUserProfilesRemovesEveryPerUserProfileOnEveryAgent) {
  addWorkspace("vol", "Volume desktop", "kasm-home-{user_id}");
  addWorkspace("team", "Team desktop", "/srv/team/{image_id}");  // Shared by every user: kept.
  addWorkspace("plain", "Plain", "");
  auto a2 = addAgent("a2");
  auto a3 = addAgent("a3");
  a3->fail_remove_profile = "device busy";
  Agent a4;  // Registered, never connected here.
  a4.id = AgentId("a4");
  a4.hostname = "a4.example";
  a4.zone_id = ZoneId("east");
  ASSERT_TRUE(manager_->registerAgent(a4).ok());

  User alice = repo_->get<User>("alice")->value;
  ASSERT_TRUE(repo_->remove<User>("alice").ok());
  auto report = manager_->removeUserProfiles(alice);
  ASSERT_TRUE(report.ok()) << report.error().toString();
  const std::set<std::string> mine{kAliceDesktop, "kasm-home-alice"};
  std::set<Pair> removed, failed;
  for (const auto& p : mine) {
    removed.emplace(p, "a1");
    removed.emplace(p, "a2");
    failed.emplace(p, "a3");
    failed.emplace(p, "a4");
  }
  EXPECT_EQ(pairs(report->removed), removed);
  EXPECT_EQ(pairs(report->failed), failed);
  for (const auto& f : report->failed) {
    if (f.agent_id == AgentId("a3")) {
      EXPECT_NE(f.error.find("device busy"), std::string::npos) << f.error;
    }
    if (f.agent_id == AgentId("a4")) {
      EXPECT_NE(f.error.find("a4.example is not connected"), std::string::npos) << f.error;
    }
    EXPECT_FALSE(f.workspace_name.empty());
  }
  for (const auto& link : {a1_, a2}) {
    EXPECT_EQ(std::set<std::string>(link->removed_profiles.begin(), link->removed_profiles.end()), mine);
    EXPECT_EQ(link->removed_profiles.size(), 2u);  // Nothing else: not the team's, not bob's.
  }
  EXPECT_EQ(profileLocks(), 0u);
}

TEST_F(ProfileResetTest, RemoveUserProfilesLeavesProfilesInUseOrSharedWithAnotherUser) {
  addWorkspace("vol", "Volume desktop", "kasm-home-{user_id}");
  // alice's desktop profile is mounted by a live session.
  auto live = request("alice", "Enabled");
  ASSERT_TRUE(live.ok()) << live.error().toString();
  auto report = manager_->removeUserProfiles(repo_->get<User>("alice")->value);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(pairs(report->removed), (std::set<Pair>{{"kasm-home-alice", "a1"}}));
  ASSERT_EQ(report->failed.size(), 1u);
  EXPECT_EQ(report->failed[0].profile, kAliceDesktop);
  EXPECT_FALSE(report->failed[0].agent_id.has_value());
  EXPECT_NE(report->failed[0].error.find(live->id.str()), std::string::npos) << report->failed[0].error;
  EXPECT_EQ(profileLocks(), 1u);  // The session's own lock stays.

  // "a/b" and "a_b" come out as one directory: deleting one user's profile would take the other's.
  addUser("ab1", "a/b");
  addUser("ab2", "a_b");
  User ab1 = repo_->get<User>("ab1")->value;
  ASSERT_TRUE(repo_->remove<User>("ab1").ok());
  auto shared = manager_->removeUserProfiles(ab1);
  ASSERT_TRUE(shared.ok());
  EXPECT_EQ(pairs(shared->removed), (std::set<Pair>{{"kasm-home-ab1", "a1"}}));
  ASSERT_EQ(shared->failed.size(), 1u);
  EXPECT_EQ(shared->failed[0].profile, "/srv/profiles/a_b/desktop");
  EXPECT_NE(shared->failed[0].error.find("user 'a_b'"), std::string::npos) << shared->failed[0].error;
  EXPECT_EQ(std::count(a1_->removed_profiles.begin(), a1_->removed_profiles.end(), "/srv/profiles/a_b/desktop"), 0);
}

// A profile inside another profile is reached through directories the outer profile's sessions can
// replace with symbolic links: it is never removed on its own (reset or deletion); the outer one is.
TEST_F(ProfileResetTest, AProfileInsideAnotherIsNeverRemovedOnItsOwn) {
  addWorkspace("outer", "Outer", "/srv/u/{username}");
  addWorkspace("nested", "Nested", "/srv/u/{username}/nested");
  auto inner = request("alice", "Reset", "nested");
  ASSERT_FALSE(inner.ok());
  EXPECT_EQ(inner.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(inner.error().message().find("lies inside /srv/u/alice"), std::string::npos) << inner.error().message();
  auto outer = request("alice", "Reset", "outer");  // It would take the nested profile with it.
  ASSERT_FALSE(outer.ok());
  EXPECT_NE(outer.error().message().find("workspace 'Nested'"), std::string::npos) << outer.error().message();
  EXPECT_EQ(wipes(*a1_), 0u);

  auto report = manager_->removeUserProfiles(repo_->get<User>("alice")->value);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(pairs(report->removed), (std::set<Pair>{{kAliceDesktop, "a1"}, {"/srv/u/alice", "a1"}}));
  EXPECT_EQ(pairs(report->failed), (std::set<Pair>{{"/srv/u/alice/nested", "-"}}));
  EXPECT_EQ(std::count(a1_->removed_profiles.begin(), a1_->removed_profiles.end(), "/srv/u/alice/nested"), 0);
}

// With no agent at all nothing can be removed: that is a failure to report, not an empty success.
TEST_F(ProfileResetTest, RemoveUserProfilesWithoutAnyAgentReportsEveryProfileLeft) {
  auto store = makeMemoryStore();
  Repository repo(*store);
  Manager bare(*store, clock_, random_);
  ASSERT_TRUE(bare.start().ok());
  Workspace w;
  w.id = WorkspaceId("desktop");
  w.friendly_name = "Desktop";
  w.image = "desktop:1";
  w.resources = Resources::fromCores(1, kGiB);
  w.persistent_profile_path = "kasm-home-{username}";
  ASSERT_TRUE(bare.upsertWorkspace(w).ok());
  User gone;
  gone.id = UserId("gone");
  gone.username = "gone";
  auto report = bare.removeUserProfiles(gone);
  ASSERT_TRUE(report.ok()) << report.error().toString();
  EXPECT_TRUE(report->removed.empty());
  EXPECT_EQ(pairs(report->failed), (std::set<Pair>{{"kasm-home-gone", "-"}}));
  EXPECT_NE(report->failed[0].error.find("no agent"), std::string::npos) << report->failed[0].error;
}

}  // namespace
}  // namespace kasm

namespace kasm::agent {
namespace {

namespace fs = std::filesystem;

// LocalAgent::removeProfile needs no engine for a host directory; volumes go to the runtime.
class VolumeRuntime final : public testing::UnusedRuntime {
 public:
  Result<void> removeVolume(const std::string& name) override {
    removed.push_back(name);
    if (name == "busy-volume") return failedPrecondition("volume is in use");
    if (name == "missing-volume") return notFound("no such volume");
    return {};
  }
  std::vector<std::string> removed;
};

void writeFile(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

TEST(LocalAgentRemoveProfile, RemovesTheDirectoryButNothingItsLinksPointTo) {
  const fs::path root = fs::temp_directory_path() / ("kasm-profile-test-" + std::to_string(::getpid()));
  fs::remove_all(root);
  const fs::path profile = root / "profiles" / "alice";
  writeFile(profile / "notes.txt", "mine");
  writeFile(profile / ".config" / "app" / "settings", "x=1");
  writeFile(root / "outside" / "secret.txt", "not the profile's");
  writeFile(root / "outside-dir" / "keep.txt", "not the profile's either");
  fs::create_symlink(root / "outside" / "secret.txt", profile / "link-to-file");
  fs::create_directory_symlink(root / "outside-dir", profile / ".config" / "link-to-dir");
  // A profile that is itself a link: the link goes, its target stays.
  fs::create_directory_symlink(root / "outside-dir", root / "profiles" / "bob");

  ManualClock clock;
  VolumeRuntime runtime;
  LocalAgentOptions options;
  options.agent_id = AgentId("local");
  LocalAgent agent(runtime, clock, options);
  auto removed = agent.removeProfile(profile.string());
  ASSERT_TRUE(removed.ok()) << removed.error().toString();
  EXPECT_FALSE(fs::exists(profile));
  EXPECT_TRUE(fs::exists(root / "profiles"));
  EXPECT_TRUE(fs::exists(root / "outside" / "secret.txt"));
  EXPECT_TRUE(fs::exists(root / "outside-dir" / "keep.txt"));
  auto link = agent.removeProfile((root / "profiles" / "bob").string());
  ASSERT_TRUE(link.ok()) << link.error().toString();
  EXPECT_FALSE(fs::is_symlink(root / "profiles" / "bob"));
  EXPECT_TRUE(fs::exists(root / "outside-dir" / "keep.txt"));
  // Nothing there: done already.
  EXPECT_TRUE(agent.removeProfile(profile.string()).ok());
  // Too close to the root to be a profile, or not a clean absolute path.
  EXPECT_EQ(agent.removeProfile("/").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(agent.removeProfile("/srv").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(agent.removeProfile((root / "profiles" / ".." / "outside").string()).ok());
  EXPECT_TRUE(fs::exists(root / "outside" / "secret.txt"));
  EXPECT_EQ(agent.removeProfile("").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(runtime.removed.empty());

  // An engine on another host: its directories are not this agent's to remove.
  writeFile(profile / "notes.txt", "mine");
  options.prepare_host_volumes = false;
  LocalAgent remote_engine(runtime, clock, options);
  EXPECT_EQ(remote_engine.removeProfile(profile.string()).error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(fs::exists(profile / "notes.txt"));
  fs::remove_all(root);
}

TEST(LocalAgentRemoveProfile, VolumesAreRemovedThroughTheEngine) {
  ManualClock clock;
  VolumeRuntime runtime;
  LocalAgentOptions options;
  options.agent_id = AgentId("local");
  LocalAgent agent(runtime, clock, options);
  EXPECT_TRUE(agent.removeProfile("kasm-home-alice").ok());
  EXPECT_TRUE(agent.removeProfile("missing-volume").ok());
  auto busy = agent.removeProfile("busy-volume");
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(busy.error().message().find("busy-volume"), std::string::npos) << busy.error().message();
  EXPECT_EQ(runtime.removed, (std::vector<std::string>{"kasm-home-alice", "missing-volume", "busy-volume"}));
}

}  // namespace
}  // namespace kasm::agent
