// The manager's unit test fixture: the in-memory store, fake agent links and a manual clock.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "fake_agent_link.hpp"
#include "kasm/kasm.hpp"

namespace kasm::testing {

constexpr std::int64_t kGiB = Resources::kGiB;

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = makeMemoryStore();
    repo_ = std::make_unique<Repository>(*store_);
    manager_ = std::make_unique<Manager>(*store_, clock_, random_, options_);
    ASSERT_TRUE(manager_->start().ok());
    Zone z;
    z.id = ZoneId("east");
    z.name = "East";
    ASSERT_TRUE(manager_->upsertZone(z).ok());
    Workspace w;
    w.id = WorkspaceId("desktop");
    w.friendly_name = "Desktop";
    w.image = "desktop:1";
    w.resources = Resources::fromCores(2, 2 * kGiB);
    w.exec_config.assign.cmd = "echo assigned";
    ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
    group_.id = GroupId("all");
    group_.name = "All users";
    group_.settings.max_sessions_per_user = 2;
    group_.settings.keepalive_expiration = std::chrono::minutes(10);
    ASSERT_TRUE(repo_->insert(group_).ok());
    addUser("alice");
    addUser("bob");
    addAgent("a1", 8, 8);
  }

  void addUser(const std::string& name) {
    User u;
    u.id = UserId(name);
    u.username = name;
    u.group_ids = {group_.id};
    ASSERT_TRUE(repo_->insert(u).ok());
  }

  std::shared_ptr<FakeAgentLink> addAgent(const std::string& id, double cores, std::int64_t gib) {
    Agent a;
    a.id = AgentId(id);
    a.hostname = id + ".local";
    a.zone_id = ZoneId("east");
    auto reg = manager_->registerAgent(a);
    EXPECT_TRUE(reg.ok());
    tokens_[id] = reg->token;
    auto link = std::make_shared<FakeAgentLink>();
    links_[id] = link;
    manager_->attachAgentLink(a.id, link);
    checkIn(id, cores, gib);
    return link;
  }

  void checkIn(const std::string& id, double cores = 8, std::int64_t gib = 8) {
    AgentCheckIn c;
    c.agent_id = AgentId(id);
    c.token = tokens_[id];
    c.reported = Resources::fromCores(cores, gib * kGiB);
    c.images = {"desktop:1"};
    auto r = manager_->checkIn(c);
    ASSERT_TRUE(r.ok()) << r.error().toString();
  }

  Result<Session> request(const std::string& user) {
    return manager_->requestSession(SessionRequest{UserId(user), WorkspaceId("desktop"), ZoneId("east"), {}});
  }

  // Moves time while the agents keep checking in.
  void advance(Duration d) {
    clock_.advance(d);
    for (const auto& [id, link] : links_) checkIn(id);
  }

  Agent storedAgent(const std::string& id) { return repo_->get<Agent>(id)->value; }

  void setGroup(const std::function<void(GroupSettings&)>& f) {
    auto g = repo_->get<Group>("all");
    f(g->value.settings);
    ASSERT_TRUE(repo_->update(g->value, g->version).ok());
  }

  ManagerOptions options_;  // Community licensing by default (5 sessions, no staging).
  ManualClock clock_;
  SeededRandom random_{5};
  std::unique_ptr<spi::Store> store_;
  std::unique_ptr<Repository> repo_;
  std::unique_ptr<Manager> manager_;
  Group group_;
  std::map<std::string, std::shared_ptr<FakeAgentLink>> links_;
  std::map<std::string, std::string> tokens_;
};

}  // namespace kasm::testing
