#include "kasm/sched/scheduler.hpp"

#include <gtest/gtest.h>

namespace kasm::sched {
namespace {

constexpr std::int64_t kGiB = Resources::kGiB;

AgentEntry agent(std::string id, std::string zone, double cores, std::int64_t mem_gib, int gpus = 0) {
  AgentEntry e;
  e.id = AgentId(std::move(id));
  e.zone = ZoneId(std::move(zone));
  e.capacity = Resources::fromCores(cores, mem_gib * kGiB, gpus);
  e.images = {"desktop:1"};
  return e;
}

PlacementRequest request(std::string zone, double cores, std::int64_t mem_gib, int gpus = 0) {
  PlacementRequest r;
  r.zone = ZoneId(std::move(zone));
  r.resources = Resources::fromCores(cores, mem_gib * kGiB, gpus);
  return r;
}

ZoneRules zone(std::string id, LoadStrategy s = LoadStrategy::kLeastLoad, bool alternates = false) {
  ZoneRules z;
  z.id = ZoneId(std::move(id));
  z.strategy = s;
  z.search_alternate_zones = alternates;
  return z;
}

class SchedulerTest : public ::testing::Test {
 protected:
  SeededRandom random_{1};
  Scheduler s_{random_};
};

TEST_F(SchedulerTest, LeastLoadSpreadsAndReservesCapacity) {
  s_.upsertZone(zone("east"));
  ASSERT_TRUE(s_.upsertAgent(agent("a", "east", 8, 16)).ok());
  ASSERT_TRUE(s_.upsertAgent(agent("b", "east", 8, 16)).ok());
  auto p1 = s_.place(request("east", 2, 2));
  auto p2 = s_.place(request("east", 2, 2));
  ASSERT_TRUE(p1.ok() && p2.ok());
  EXPECT_NE(p1->agent, p2->agent);
  EXPECT_EQ(s_.agent(p1->agent)->reserved, Resources::fromCores(2, 2 * kGiB));
  EXPECT_EQ(s_.agent(p1->agent)->session_count, 1);
}

TEST_F(SchedulerTest, MostLoadPacksOntoOneAgent) {
  s_.upsertZone(zone("east", LoadStrategy::kMostLoad));
  ASSERT_TRUE(s_.upsertAgent(agent("a", "east", 8, 16)).ok());
  ASSERT_TRUE(s_.upsertAgent(agent("b", "east", 8, 16)).ok());
  auto first = s_.place(request("east", 2, 2));
  ASSERT_TRUE(first.ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(s_.place(request("east", 2, 2))->agent, first->agent);
  // Full now: the next one goes to the other agent.
  EXPECT_NE(s_.place(request("east", 2, 2))->agent, first->agent);
}

TEST_F(SchedulerTest, SessionCountPoliciesAndSpread) {
  s_.upsertZone(zone("east", LoadStrategy::kFewestSessions));
  ASSERT_TRUE(s_.upsertAgent(agent("a", "east", 64, 64)).ok());
  ASSERT_TRUE(s_.upsertAgent(agent("b", "east", 64, 64)).ok());
  ASSERT_TRUE(s_.reserve(AgentId("a"), Resources{}).ok());
  EXPECT_EQ(s_.choose(request("east", 1, 1))->agent, AgentId("b"));
  s_.upsertZone(zone("east", LoadStrategy::kMostSessions));
  EXPECT_EQ(s_.choose(request("east", 1, 1))->agent, AgentId("a"));
  s_.upsertZone(zone("east", LoadStrategy::kSpread));
  ASSERT_TRUE(s_.upsertAgent(agent("c", "east", 64, 64)).ok());
  std::set<std::string> seen;
  for (int i = 0; i < 3; ++i) seen.insert(s_.place(request("east", 1, 1))->agent.str());
  EXPECT_EQ(seen.size(), 3u);  // Round robin touches every agent.
}

TEST_F(SchedulerTest, SkipsDisabledDrainingDeadAndFullAgents) {
  s_.upsertZone(zone("east"));
  auto a = agent("disabled", "east", 64, 64);
  a.enabled = false;
  auto b = agent("draining", "east", 64, 64);
  b.draining = true;
  auto c = agent("dead", "east", 64, 64);
  c.alive = false;
  auto d = agent("small", "east", 1, 1);
  auto e = agent("ok", "east", 4, 4);
  for (const auto& x : {a, b, c, d, e}) ASSERT_TRUE(s_.upsertAgent(x).ok());
  auto p = s_.choose(request("east", 2, 2));
  ASSERT_TRUE(p.ok()) << p.error().toString();
  EXPECT_EQ(p->agent, AgentId("ok"));
  // GPUs count: nobody has one.
  auto g = s_.choose(request("east", 1, 1, 1));
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code(), ErrorCode::kResourceExhausted);
}

TEST_F(SchedulerTest, NothingFitsExplainsWhyWithCounts) {
  s_.upsertZone(zone("east"));
  for (int i = 0; i < 3; ++i) {
    auto a = agent("d" + std::to_string(i), "east", 64, 64);
    a.draining = true;
    ASSERT_TRUE(s_.upsertAgent(a).ok());
  }
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(s_.upsertAgent(agent("s" + std::to_string(i), "east", 2, 64)).ok());
  auto noimg = agent("n", "east", 64, 64);
  noimg.images = {};
  ASSERT_TRUE(s_.upsertAgent(noimg).ok());
  auto r = request("east", 4, 8);
  r.image = "desktop:2";
  r.allow_pull = false;
  auto p = s_.choose(r);
  ASSERT_FALSE(p.ok());
  const std::string& m = p.error().message();
  EXPECT_NE(m.find("zone east (6 agents)"), std::string::npos) << m;
  EXPECT_NE(m.find("3 draining"), std::string::npos) << m;
  EXPECT_NE(m.find("lack image desktop:2"), std::string::npos) << m;
  EXPECT_NE(m.find("alternate zones not searched"), std::string::npos) << m;
  r.image = "desktop:1";
  auto q = s_.choose(r);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().message().find("2 lack 4.000 free cores"), std::string::npos) << q.error().message();
}

TEST_F(SchedulerTest, NothingFitsNamesZonesByTheirNames) {
  auto rules = zone("e3b686bf0c2d4e1f");
  rules.name = "East";
  s_.upsertZone(rules);
  auto none = s_.choose(request("e3b686bf0c2d4e1f", 1, 1));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("zone East (e3b686bf0c2d4e1f) has no agents"), std::string::npos)
      << none.error().message();
}

TEST_F(SchedulerTest, ZoneRulesAlternatesAndStaticFirst) {
  s_.upsertZone(zone("east"));
  s_.upsertZone(zone("west"));
  ASSERT_TRUE(s_.upsertAgent(agent("w1", "west", 8, 8)).ok());
  auto none = s_.choose(request("east", 1, 1));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("zone east has no agents"), std::string::npos) << none.error().message();
  s_.upsertZone(zone("east", LoadStrategy::kLeastLoad, /*alternates=*/true));
  auto alt = s_.choose(request("east", 1, 1));
  ASSERT_TRUE(alt.ok());
  EXPECT_EQ(alt->zone, ZoneId("west"));

  // Static first even when an autoscaled agent is emptier.
  auto auto_agent = agent("auto", "east", 64, 64);
  auto_agent.kind = AgentKind::kAutoscaled;
  ASSERT_TRUE(s_.upsertAgent(auto_agent).ok());
  auto static_agent = agent("static", "east", 8, 8);
  static_agent.reserved = Resources::fromCores(6, 6 * kGiB);
  ASSERT_TRUE(s_.upsertAgent(static_agent).ok());
  EXPECT_EQ(s_.choose(request("east", 1, 1))->agent, AgentId("static"));
  auto no_prio = zone("east", LoadStrategy::kLeastLoad, true);
  no_prio.prioritize_static_agents = false;
  s_.upsertZone(no_prio);
  EXPECT_EQ(s_.choose(request("east", 1, 1))->agent, AgentId("auto"));

  // A zone restriction wins over the requested zone and disables alternates.
  auto r = request("east", 1, 1);
  r.restrict_to_zone = ZoneId("west");
  EXPECT_EQ(s_.choose(r)->agent, AgentId("w1"));
  auto unknown = request("mars", 1, 1);
  EXPECT_EQ(s_.choose(unknown).error().code(), ErrorCode::kNotFound);
}

TEST_F(SchedulerTest, LabelsImagesAndAgentRestriction) {
  s_.upsertZone(zone("east"));
  auto gpu = agent("gpu", "east", 8, 8, 1);
  gpu.labels = {{"gpu", "a100"}};
  gpu.images = {};
  auto plain = agent("plain", "east", 64, 64);
  plain.labels = {{"tier", "cheap"}};
  ASSERT_TRUE(s_.upsertAgent(gpu).ok());
  ASSERT_TRUE(s_.upsertAgent(plain).ok());
  auto r = request("east", 1, 1);
  r.include_labels = {{"gpu", "*"}};
  r.image = "desktop:1";
  auto p = s_.choose(r);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->agent, AgentId("gpu"));
  EXPECT_TRUE(p->needs_pull);
  r.include_labels.clear();
  r.exclude_labels = {{"tier", "cheap"}};
  EXPECT_EQ(s_.choose(r)->agent, AgentId("gpu"));
  r.exclude_labels.clear();
  // Agents with the image come before those that would pull, even if busier.
  ASSERT_TRUE(s_.reserve(AgentId("plain"), Resources::fromCores(60, 60 * kGiB)).ok());
  auto with_image = s_.choose(r);
  EXPECT_EQ(with_image->agent, AgentId("plain"));
  EXPECT_FALSE(with_image->needs_pull);
  r.restrict_to_agent = AgentId("gpu");
  EXPECT_EQ(s_.choose(r)->agent, AgentId("gpu"));
  r.restrict_to_agent = AgentId("nope");
  EXPECT_EQ(s_.choose(r).error().code(), ErrorCode::kNotFound);
}

// The cached split of a zone's pools into tiers must tell "no image asked for" from "an image no
// agent has": both have no interned image id.
TEST_F(SchedulerTest, UnknownImageDoesNotAffectRequestsWithoutImage) {
  s_.upsertZone(zone("east"));
  ASSERT_TRUE(s_.upsertAgent(agent("a", "east", 8, 8)).ok());
  auto r = request("east", 1, 1);
  r.image = "unknown:1";
  r.allow_pull = false;
  EXPECT_FALSE(s_.choose(r).ok());
  r.image.clear();
  auto p = s_.choose(r);
  ASSERT_TRUE(p.ok()) << p.error().toString();
  EXPECT_FALSE(p->needs_pull);
  r.image = "unknown:1";
  r.allow_pull = true;
  EXPECT_TRUE(s_.choose(r)->needs_pull);
}

// Requests with different label filters share nothing through the tier cache, including the same
// label included by one and excluded by the other.
TEST_F(SchedulerTest, LabelFiltersAreCachedPerFilter) {
  s_.upsertZone(zone("east"));
  auto gpu = agent("gpu", "east", 8, 8, 1);
  gpu.labels = {{"gpu", "yes"}};
  ASSERT_TRUE(s_.upsertAgent(gpu).ok());
  ASSERT_TRUE(s_.upsertAgent(agent("plain", "east", 64, 64)).ok());
  auto with = request("east", 1, 1);
  with.include_labels = {{"gpu", "yes"}};
  auto without = request("east", 1, 1);
  without.exclude_labels = {{"gpu", "yes"}};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(s_.choose(with)->agent, AgentId("gpu"));
    EXPECT_EQ(s_.choose(without)->agent, AgentId("plain"));
    EXPECT_EQ(s_.choose(request("east", 1, 1))->agent, s_.chooseByScan(request("east", 1, 1))->agent);
  }
  // A new pool invalidates the cache: an emptier agent with the label now wins.
  auto big = agent("big-gpu", "east", 128, 128, 1);
  big.labels = {{"gpu", "yes"}, {"size", "big"}};
  ASSERT_TRUE(s_.upsertAgent(big).ok());
  ASSERT_TRUE(s_.reserve(AgentId("gpu"), Resources::fromCores(4, 4 * kGiB)).ok());
  EXPECT_EQ(s_.choose(with)->agent, AgentId("big-gpu"));
  EXPECT_EQ(s_.choose(without)->agent, AgentId("plain"));
}

TEST_F(SchedulerTest, ReleaseReturnsCapacityAndBadInputChangesNothing) {
  s_.upsertZone(zone("east"));
  ASSERT_TRUE(s_.upsertAgent(agent("a", "east", 2, 2)).ok());
  ASSERT_TRUE(s_.place(request("east", 2, 2)).ok());
  EXPECT_FALSE(s_.choose(request("east", 1, 1)).ok());
  ASSERT_TRUE(s_.release(AgentId("a"), Resources::fromCores(2, 2 * kGiB)).ok());
  EXPECT_TRUE(s_.choose(request("east", 1, 1)).ok());
  auto neg = request("east", 1, 1);
  neg.resources.millicores = -5;
  EXPECT_EQ(s_.place(neg).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s_.agent(AgentId("a"))->session_count, 0);
  EXPECT_EQ(s_.reserve(AgentId("ghost"), {}).error().code(), ErrorCode::kNotFound);
  auto bad = agent("x", "east", 1, 1);
  bad.capacity.memory_bytes = -1;
  EXPECT_EQ(s_.upsertAgent(bad).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s_.agentCount(), 1u);
}

// Property: on randomised clusters and request streams, the indexed decision is exactly the decision
// of the reference scan (same agent, hence the same score), for every policy.
TEST(SchedulerProperty, IndexedChoiceEqualsNaiveScan) {
  const LoadStrategy strategies[] = {LoadStrategy::kLeastLoad, LoadStrategy::kMostLoad, LoadStrategy::kFewestSessions,
                                     LoadStrategy::kMostSessions, LoadStrategy::kSpread};
  int decisions = 0, failures = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    SeededRandom gen(seed);
    SeededRandom sched_random(seed * 7919);
    Scheduler s(sched_random);
    const int zones = 1 + static_cast<int>(gen.uniform(3));
    for (int z = 0; z < zones; ++z) {
      auto rules = zone("z" + std::to_string(z), strategies[gen.uniform(5)], gen.uniform(2) == 0);
      rules.prioritize_static_agents = gen.uniform(2) == 0;
      s.upsertZone(rules);
    }
    const int agents = 5 + static_cast<int>(gen.uniform(60));
    for (int i = 0; i < agents; ++i) {
      auto a = agent("a" + std::to_string(i), "z" + std::to_string(gen.uniform(zones)),
                     static_cast<double>(4 + gen.uniform(29)), static_cast<std::int64_t>(4 + gen.uniform(61)),
                     static_cast<int>(gen.uniform(3)));
      a.kind = gen.uniform(4) == 0 ? AgentKind::kAutoscaled : AgentKind::kStatic;
      a.draining = gen.uniform(20) == 0;
      a.alive = gen.uniform(25) != 0;
      if (gen.uniform(3) == 0) a.labels["gpu"] = "yes";
      if (gen.uniform(4) == 0) a.images = {};
      ASSERT_TRUE(s.upsertAgent(a).ok());
    }
    for (int step = 0; step < 300; ++step) {
      auto r = request("z" + std::to_string(gen.uniform(zones)), 0.5 * static_cast<double>(1 + gen.uniform(8)),
                       static_cast<std::int64_t>(1 + gen.uniform(8)), gen.uniform(10) == 0 ? 1 : 0);
      if (gen.uniform(5) == 0) r.include_labels = {{"gpu", "yes"}};
      if (gen.uniform(7) == 0) r.exclude_labels = {{"gpu", "yes"}};
      // Mostly an image some agents have; sometimes none, sometimes one that no agent has.
      const auto image_pick = gen.uniform(10);
      r.image = image_pick == 0 ? "" : image_pick == 1 ? "desktop:2" : "desktop:1";
      r.allow_pull = gen.uniform(3) != 0;
      auto fast = s.choose(r);
      auto slow = s.chooseByScan(r);
      ASSERT_EQ(fast.ok(), slow.ok()) << "seed " << seed << " step " << step;
      ++decisions;
      if (!fast.ok()) {
        ++failures;
        EXPECT_EQ(fast.error().message(), slow.error().message());
        // Free something so the cluster keeps moving.
        auto victim = AgentId("a" + std::to_string(gen.uniform(agents)));
        (void)s.release(victim, Resources::fromCores(4, 4 * kGiB, 1));
        continue;
      }
      ASSERT_EQ(fast->agent, slow->agent) << "seed " << seed << " step " << step;
      EXPECT_EQ(s.rankOf(fast->agent), s.rankOf(slow->agent));
      ASSERT_TRUE(s.reserve(fast->agent, r.resources).ok());
      if (gen.uniform(10) == 0) {  // Agents change state under load.
        auto e = *s.agent(AgentId("a" + std::to_string(gen.uniform(agents))));
        e.draining = !e.draining;
        ASSERT_TRUE(s.upsertAgent(e).ok());
      }
    }
  }
  EXPECT_GT(decisions, 10000);
  EXPECT_GT(failures, 0);              // The streams do exhaust capacity ...
  EXPECT_LT(failures, decisions / 2);  // ... but mostly place.
}

}  // namespace
}  // namespace kasm::sched
