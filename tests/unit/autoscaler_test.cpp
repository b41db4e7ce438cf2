// The autoscaler's loop (kasm/autoscale/autoscaler.hpp) over the manager and a memory store, with
// an in-memory VM provider: the logic above the VmProvider interface. The real providers pass the
// conformance suite (tests/conformance/vm_provider_conformance.hpp) and their own tests.

#include "kasm/autoscale/autoscaler.hpp"

#include <gtest/gtest.h>

#include "manager_fixture.hpp"

namespace kasm {
namespace {

using autoscale::Autoscaler;
using std::chrono::minutes;
using std::chrono::seconds;
using testing::FakeAgentLink;
using testing::ManagerTest;

// Machines in a map. `lose_create_answer` makes the next create succeed but answer Unavailable,
// `fail_with` makes every call fail.
class MemoryVms : public spi::VmProvider {
 public:
  Result<spi::VmInstance> create(const spi::VmSpec& spec) override {
    ++creates;
    if (fail_with) return *fail_with;
    for (auto& [id, vm] : vms)
      if (vm.tags.at("kasm:vm") == spec.client_token) return vm;  // Idempotent per client token.
    spi::VmInstance vm;
    vm.id = "i-" + std::to_string(++next_);
    vm.state = spi::VmState::kPending;
    vm.private_address = "10.0.0." + std::to_string(next_);
    vm.tags = spec.tags;
    vms[vm.id] = vm;
    user_data[vm.id] = spec.user_data;
    if (lose_create_answer) {
      lose_create_answer = false;
      return unavailable("the answer was lost");
    }
    return vm;
  }
  Result<void> destroy(const std::string& id) override {
    if (fail_with) return *fail_with;
    ++destroys;
    vms.erase(id);
    return {};
  }
  Result<std::vector<spi::VmInstance>> list(const std::map<std::string, std::string>& tags) override {
    if (fail_with) return *fail_with;
    std::vector<spi::VmInstance> out;
    for (const auto& [id, vm] : vms) {
      bool all = true;
      for (const auto& [k, v] : tags) all = all && vm.tags.count(k) && vm.tags.at(k) == v;
      if (all) out.push_back(vm);
    }
    return out;
  }
  Result<spi::VmInstance> status(const std::string& id) override {
    auto it = vms.find(id);
    if (it == vms.end()) return notFound(id);
    return it->second;
  }

  std::map<std::string, spi::VmInstance> vms;
  std::map<std::string, std::string> user_data;
  std::optional<Error> fail_with;
  bool lose_create_answer = false;
  int creates = 0, destroys = 0;

 private:
  int next_ = 0;
};

class AutoscalerTest : public ManagerTest {
 protected:
  void SetUp() override {
    ManagerTest::SetUp();
    ASSERT_TRUE(registry_
                    .registerFactory("memory",
                                     [this](const std::string& settings) -> Result<std::unique_ptr<spi::VmProvider>> {
                                       last_settings_ = settings;
                                       return std::unique_ptr<spi::VmProvider>(std::make_unique<Proxy>(vms_));
                                     })
                    .ok());
    autoscale::AutoscalerOptions o;
    o.installation_id = "inst-1";
    o.upstream_address = "https://kasm.test:8443";
    o.secret_key = std::string(32, 'k');
    autoscaler_ = std::make_unique<Autoscaler>(*store_, *manager_, registry_, clock_, o);
    config_.id = AutoscaleConfigId("cfg");
    config_.name = "East pool";
    config_.zone_id = ZoneId("east");
    config_.provider = "memory";
    config_.standby = Resources::fromCores(8, 0);  // a1 brings 8 of its own.
    config_.agent_overrides.millicores = 8000;
    config_.agent_overrides.memory_bytes = 8 * Resources::kGiB;
    config_.agent_publish_networks = {"10.0.0.0/8"};
    config_.startup_script =
        "kasm-agent --agent-id {server_id} --token {registration_token} --server {upstream_address}";
    config_.created_at = clock_.now();
    ASSERT_TRUE(repo_->insert(config_).ok());
  }

  // The provider the autoscaler makes forwards to vms_, which the test keeps.
  struct Proxy : spi::VmProvider {
    explicit Proxy(MemoryVms& v) : vms(v) {}
    Result<spi::VmInstance> create(const spi::VmSpec& s) override { return vms.create(s); }
    Result<void> destroy(const std::string& id) override { return vms.destroy(id); }
    Result<std::vector<spi::VmInstance>> list(const std::map<std::string, std::string>& t) override {
      return vms.list(t);
    }
    Result<spi::VmInstance> status(const std::string& id) override { return vms.status(id); }
    MemoryVms& vms;
  };

  autoscale::TickReport tick() {
    auto r = autoscaler_->tick();
    EXPECT_TRUE(r.ok()) << r.error().toString();
    return r.ok() ? *r : autoscale::TickReport{};
  }
  std::vector<AutoscaleVm> machines() {
    std::vector<AutoscaleVm> out;
    auto rows = repo_->list<AutoscaleVm>();
    for (auto& v : *rows) out.push_back(v.value);
    return out;
  }
  std::vector<AutoscaleDecision> decisions() {
    std::vector<AutoscaleDecision> out;
    auto rows = repo_->list<AutoscaleDecision>();
    for (auto& v : *rows) out.push_back(v.value);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.at < b.at; });
    return out;
  }
  // The machine's agent checks in with the token from its user data, as kasm-agent would.
  std::string bootAgentOf(const AutoscaleVm& vm) {
    const std::string data = vms_.user_data.at(vm.instance_id);
    const auto at = data.find("--token ") + 8;
    AgentCheckIn c;
    c.agent_id = *vm.agent_id;
    c.token = data.substr(at, data.find(' ', at) - at);
    c.reported = Resources::fromCores(8, 8 * Resources::kGiB);
    c.images = {"desktop:1"};
    std::string issued;
    auto r = manager_->checkIn(c, &issued);
    EXPECT_TRUE(r.ok()) << r.error().toString();
    tokens_[vm.agent_id->str()] = issued;
    auto link = std::make_shared<FakeAgentLink>();
    links_[vm.agent_id->str()] = link;
    manager_->attachAgentLink(*vm.agent_id, link);
    return c.token;
  }

  MemoryVms vms_;
  spi::VmProviderRegistry registry_;
  std::string last_settings_;
  std::unique_ptr<Autoscaler> autoscaler_;
  AutoscaleConfig config_;
};

TEST_F(AutoscalerTest, MakesAMachineForTheStandbyWithASingleUseRegistrationToken) {
  // a1 has 8 free cores, the standby wants 8: steady until a session takes some of a1.
  EXPECT_EQ(tick().created, 0);
  ASSERT_TRUE(request("alice").ok());  // 2 cores on a1: 6 free < 8.
  advance(seconds(1));                 // So that the decisions sort by time.
  auto r = tick();
  EXPECT_EQ(r.created, 1);
  auto ms = machines();
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].phase, VmPhase::kBooting);
  EXPECT_TRUE(ms[0].registration_token_sealed.empty());
  ASSERT_TRUE(ms[0].agent_id.has_value());
  auto agent = repo_->get<Agent>(ms[0].agent_id->str());
  ASSERT_TRUE(agent.ok());
  EXPECT_EQ(agent->value.kind, AgentKind::kAutoscaled);
  EXPECT_EQ(agent->value.publish_networks, config_.agent_publish_networks);
  ASSERT_TRUE(agent->value.token_expires_at.has_value());
  const auto& data = vms_.user_data.at(ms[0].instance_id);
  EXPECT_NE(data.find("--agent-id " + ms[0].agent_id->str()), std::string::npos);
  EXPECT_NE(data.find("--server https://kasm.test:8443"), std::string::npos);
  EXPECT_EQ(vms_.vms.at(ms[0].instance_id).tags.at("kasm:installation"), "inst-1");
  auto log = decisions();
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back().summary, "zone East: +1 agent, standby cores 6 < 8");
  ASSERT_EQ(log.back().actions.size(), 1u);
  EXPECT_NE(log.back().actions[0].find("standby cores 6 < 8"), std::string::npos);

  // Booting machines count: no second machine while the first boots.
  EXPECT_EQ(tick().created, 0);

  // The agent registers once; its registration token then stops working.
  const std::string registration = bootAgentOf(ms[0]);
  EXPECT_FALSE(tokens_[ms[0].agent_id->str()].empty());
  AgentCheckIn again;
  again.agent_id = *ms[0].agent_id;
  again.token = registration;
  std::string issued;
  EXPECT_EQ(manager_->checkIn(again, &issued).error().code(), ErrorCode::kUnauthenticated);
  checkIn(ms[0].agent_id->str());  // Its lasting token works.
  tick();
  EXPECT_EQ(machines()[0].phase, VmPhase::kReady);
}

TEST_F(AutoscalerTest, AnExpiredRegistrationTokenIsRefusedAndTheMachineDestroyed) {
  ASSERT_TRUE(request("alice").ok());
  tick();
  auto ms = machines();
  ASSERT_EQ(ms.size(), 1u);
  clock_.advance(minutes(16));
  checkIn("a1");
  const std::string data = vms_.user_data.at(ms[0].instance_id);
  AgentCheckIn late;
  late.agent_id = *ms[0].agent_id;
  late.token = data.substr(data.find("--token ") + 8, 64);
  late.token = late.token.substr(0, late.token.find(' '));
  std::string issued;
  EXPECT_EQ(manager_->checkIn(late, &issued).error().code(), ErrorCode::kUnauthenticated);
  auto r = tick();
  EXPECT_GE(r.destroyed, 1);
  EXPECT_FALSE(vms_.vms.count(ms[0].instance_id));
  EXPECT_FALSE(repo_->get<Agent>(ms[0].agent_id->str()).ok());
  bool said = false;
  for (const auto& d : decisions())
    for (const auto& a : d.actions) said = said || a.find("did not check in within 15 min") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST_F(AutoscalerTest, AnIdleMachineIsDrainedAfterTheBackoffButNeverWithASession) {
  config_.standby = {};
  config_.min_instances = 1;
  auto cur = repo_->get<AutoscaleConfig>("cfg");
  ASSERT_TRUE(repo_->update(config_, cur->version).ok());
  tick();
  auto ms = machines();
  ASSERT_EQ(ms.size(), 1u);
  bootAgentOf(ms[0]);
  tick();
  // The machine gets a session (a1 is full first).
  ASSERT_TRUE(request("alice").ok());
  ASSERT_TRUE(request("alice").ok());
  ASSERT_TRUE(request("bob").ok());
  ASSERT_TRUE(request("bob").ok());
  auto s5 = manager_->requestSession(SessionRequest{UserId("carol"), WorkspaceId("desktop"), ZoneId("east"), {}});
  // min_instances 0 from now on: the machine may go once idle, but not while it serves.
  config_.min_instances = 0;
  cur = repo_->get<AutoscaleConfig>("cfg");
  ASSERT_TRUE(repo_->update(config_, cur->version).ok());
  const int sessions_there = repo_->get<Agent>(ms[0].agent_id->str())->value.session_count;
  if (sessions_there > 0) {
    for (int i = 0; i < 5; ++i) {
      advance(minutes(5));
      tick();
    }
    EXPECT_EQ(machines().size(), 1u) << "a machine with a session was destroyed";
    EXPECT_TRUE(vms_.vms.count(ms[0].instance_id));
  }
  // Every session ends: idle for the backoff, then drained and destroyed.
  auto sessions = manager_->listSessions();
  for (auto& s : *sessions) (void)manager_->destroySession(s.id);
  tick();
  EXPECT_EQ(machines().size(), 1u);
  advance(minutes(11));
  auto r = tick();
  EXPECT_EQ(r.drained, 1);
  EXPECT_TRUE(machines().empty());
  EXPECT_FALSE(vms_.vms.count(ms[0].instance_id));
  EXPECT_NE(decisions().back().summary.find("-1 agent, idle 11 min >= backoff 10 min"), std::string::npos)
      << decisions().back().summary;
}

TEST_F(AutoscalerTest, RemoveAgentRefusesWhileASessionLives) {
  auto s = request("alice");
  ASSERT_TRUE(s.ok());
  auto removed = manager_->removeAgent(AgentId("a1"));
  ASSERT_FALSE(removed.ok());
  EXPECT_EQ(removed.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(removed.error().message().find(s->id.str()), std::string::npos);
}

TEST_F(AutoscalerTest, ALostCreateAnswerIsRetriedWithTheSameTokenAndMakesOneMachine) {
  ASSERT_TRUE(request("alice").ok());
  vms_.lose_create_answer = true;
  auto r = tick();
  EXPECT_EQ(r.errors, 1);
  auto ms = machines();
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].phase, VmPhase::kCreating);
  EXPECT_FALSE(ms[0].registration_token_sealed.empty());
  EXPECT_EQ(vms_.vms.size(), 1u);
  clock_.advance(minutes(2));  // Past the provider backoff.
  checkIn("a1");
  tick();
  ms = machines();
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].phase, VmPhase::kBooting);
  EXPECT_EQ(vms_.vms.size(), 1u);
  EXPECT_EQ(ms[0].instance_id, vms_.vms.begin()->first);
  bootAgentOf(ms[0]);  // The user data the machine got carries a token that works.
}

TEST_F(AutoscalerTest, OrphansAreDestroyedAfterTheGraceAndVanishedMachinesMarkedMissing) {
  spi::VmSpec stray;
  stray.client_token = "stray";
  stray.tags = {{"kasm:installation", "inst-1"}, {"kasm:autoscale-config", "cfg"}, {"kasm:vm", "no-such-row"}};
  ASSERT_TRUE(vms_.create(stray).ok());
  ASSERT_TRUE(request("alice").ok());
  tick();
  EXPECT_EQ(vms_.vms.size(), 2u);
  auto ms = machines();
  ASSERT_EQ(ms.size(), 1u);
  vms_.vms.erase(ms[0].instance_id);  // Terminated behind our back.
  clock_.advance(minutes(11));
  checkIn("a1");
  auto r = tick();
  EXPECT_EQ(r.orphans_destroyed, 1);
  EXPECT_EQ(r.missing, 1);
  EXPECT_FALSE(repo_->get<Agent>(ms[0].agent_id->str()).ok()) << "the missing machine's agent held no session";
}

TEST_F(AutoscalerTest, AFailingProviderIsBackedOffAndItsErrorRecorded) {
  ASSERT_TRUE(request("alice").ok());
  vms_.fail_with = permissionDenied("UnauthorizedOperation: not allowed to RunInstances");
  auto r = tick();
  EXPECT_EQ(r.errors, 1);
  auto st = autoscaler_->status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_NE(st[0].error.find("UnauthorizedOperation"), std::string::npos);
  ASSERT_TRUE(st[0].backoff_until.has_value());
  EXPECT_NE(decisions().back().error.find("UnauthorizedOperation"), std::string::npos);
  const int calls = vms_.creates;
  clock_.advance(seconds(10));
  checkIn("a1");
  tick();  // Within the backoff: the provider is not asked.
  EXPECT_EQ(vms_.creates, calls);
  vms_.fail_with.reset();
  clock_.advance(minutes(10));
  checkIn("a1");
  EXPECT_EQ(tick().created, 1);
  EXPECT_TRUE(autoscaler_->status()[0].error.empty());
}

TEST_F(AutoscalerTest, ProviderSecretsAreSealedShownMaskedAndKeptOnEdit) {
  const std::string key(32, 'k');
  auto sealed = autoscale::sealProviderConfig(R"({"region":"us-east-1","secret_access_key":"wJalr"})", "{}", key);
  ASSERT_TRUE(sealed.ok()) << sealed.error().toString();
  EXPECT_EQ(sealed->find("wJalr"), std::string::npos);
  EXPECT_EQ(autoscale::redactProviderConfig(*sealed), R"({"region":"us-east-1","secret_access_key":"********"})");
  auto edited = autoscale::sealProviderConfig(R"({"region":"eu-west-1","secret_access_key":"********"})", *sealed, key);
  ASSERT_TRUE(edited.ok());
  auto plain = autoscale::unsealProviderConfig(*edited, key);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, R"({"region":"eu-west-1","secret_access_key":"wJalr"})");
  EXPECT_FALSE(autoscale::unsealProviderConfig(*edited, std::string(32, 'x')).ok());
  // Nested secrets too (a command provider's environment).
  auto nested = autoscale::sealProviderConfig(R"({"environment":{"API_TOKEN":"t0k","DIR":"/x"}})", "{}", key);
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ(nested->find("t0k"), std::string::npos);
  EXPECT_EQ(autoscale::redactProviderConfig(*nested), R"({"environment":{"API_TOKEN":"********","DIR":"/x"}})");
  EXPECT_EQ(*autoscale::unsealProviderConfig(*nested, key), R"({"environment":{"API_TOKEN":"t0k","DIR":"/x"}})");
  // A sealed value typed in (copied from elsewhere) is refused: it would unseal as someone else's.
  EXPECT_FALSE(autoscale::sealProviderConfig(*sealed, "{}", key).ok());

  // The autoscaler makes its provider from the unsealed settings.
  config_.provider_config_json = *edited;
  auto cur = repo_->get<AutoscaleConfig>("cfg");
  ASSERT_TRUE(repo_->update(config_, cur->version).ok());
  tick();
  EXPECT_EQ(last_settings_, *plain);
}

}  // namespace
}  // namespace kasm
