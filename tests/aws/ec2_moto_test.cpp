// The aws-ec2 provider against moto's EC2 (scripts/services/moto.sh exports KASM_TEST_MOTO_URL): the
// VmProvider conformance suite, and what EC2 makes of the requests (subnet, security groups, key pair,
// user data, tags, paging, termination, moto's own error answers).
//
// Without KASM_TEST_MOTO_URL every test is skipped, or fails when KASM_REQUIRE_SERVICES=1.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "backends/aws/ec2_client.hpp"
#include "backends/aws/ec2_instances.hpp"
#include "conformance/vm_provider_conformance.hpp"
#include "kasm/aws/ec2_provider.hpp"
#include "support/services.hpp"

namespace kasm::aws {
namespace {

std::string motoUrl() {
  const char* v = std::getenv("KASM_TEST_MOTO_URL");
  return v ? v : "";
}

constexpr const char* kNoMoto = "KASM_TEST_MOTO_URL is not set (scripts/services/moto.sh starts moto)";

// The conformance fixture makes its provider in SetUp, where a test cannot skip itself: without moto
// the whole binary is skipped here, before any test runs. When services are required nothing is
// skipped: each test then fails on its own (a global failure would print "[  SKIPPED ]" lines, which
// ctest takes for a skip).
class MotoEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!motoUrl().empty() || kasm::testing::servicesRequired()) return;
    // ctest reads "[  SKIPPED ]" in the output as a skip; gtest prints no such line for a global skip.
    GTEST_SKIP() << "[  SKIPPED ] " << kNoMoto;
  }
};
[[maybe_unused]] ::testing::Environment* const kMotoEnvironment =
    ::testing::AddGlobalTestEnvironment(new MotoEnvironment);

// moto 5 ships this AMI in every region; KASM_TEST_MOTO_AMI overrides it.
std::string motoImage() {
  const char* v = std::getenv("KASM_TEST_MOTO_AMI");
  return v && *v ? v : "ami-1e749f67";
}

Ec2Options motoOptions() {
  Ec2Options o;
  o.region = "us-east-1";
  o.endpoint = motoUrl();
  o.access_key_id = "AKIDMOTOTEST";
  o.secret_access_key = "moto-does-not-check-this-secret";
  o.image_id = motoImage();
  o.instance_type = "t3.micro";
  o.request_timeout = std::chrono::seconds(20);
  o.max_retries = 2;
  o.retry_base_delay = std::chrono::milliseconds(20);
  return o;
}

std::unique_ptr<spi::VmProvider> makeMotoProvider() {
  if (motoUrl().empty()) {
    ADD_FAILURE() << "required service missing (KASM_REQUIRE_SERVICES=1): " << kNoMoto;
    return nullptr;
  }
  auto made = makeEc2Provider(motoOptions());
  if (!made.ok()) {
    ADD_FAILURE() << made.error().toString();
    return nullptr;
  }
  return std::move(*made);
}

std::string randomHex(std::size_t digits) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < digits; ++i) out.push_back(hex[secureRandomU64() & 15]);
  return out;
}

class AwsEc2Moto : public ::testing::Test {
 protected:
  void SetUp() override {
    if (motoUrl().empty()) KASM_SKIP_OR_FAIL(kNoMoto);
    installation_ = "moto-" + randomHex(8);
    auto client = detail::Ec2Client::fromOptions(motoOptions());
    ASSERT_TRUE(client.ok()) << client.error().toString();
    client_ = std::move(*client);
  }

  void TearDown() override {
    for (auto& provider : providers_) {
      auto left = provider->list({{std::string(spi::vm_tags::kInstallation), installation_}});
      if (left.ok())
        for (const auto& vm : *left) (void)provider->destroy(vm.id);
    }
  }

  spi::VmProvider& provider(const Ec2Options& o) {
    auto made = makeEc2Provider(o);
    EXPECT_TRUE(made.ok()) << made.error().toString();
    providers_.push_back(std::move(*made));
    return *providers_.back();
  }

  spi::VmSpec spec(const std::string& vm, const std::string& config = "cfg-1") const {
    spi::VmSpec s;
    s.name = "kasm-moto-" + vm;
    s.client_token = "ct-" + vm;
    s.user_data = "#!/bin/sh\necho kasm > /tmp/kasm-agent\n";
    s.tags = {{std::string(spi::vm_tags::kInstallation), installation_},
              {std::string(spi::vm_tags::kConfig), config},
              {std::string(spi::vm_tags::kVm), vm}};
    return s;
  }

  // One action through the same signed client the provider uses.
  detail::XmlElement call(const std::string& action, const detail::QueryParams& params) {
    auto answer = client_->call(action, params);
    EXPECT_TRUE(answer.ok()) << action << ": " << answer.error().toString();
    return answer.ok() ? std::move(*answer) : detail::XmlElement{};
  }

  // The instance's <item> from DescribeInstances.
  detail::XmlElement describe(const std::string& id) {
    detail::XmlElement root = call("DescribeInstances", {{"InstanceId.1", id}});
    const detail::XmlElement* item = root.findDescendant("instancesSet");
    item = item ? item->child("item") : nullptr;
    EXPECT_NE(item, nullptr) << id;
    return item ? *item : detail::XmlElement{};
  }

  std::string installation_;
  std::unique_ptr<detail::Ec2Client> client_;
  std::vector<std::unique_ptr<spi::VmProvider>> providers_;
};

TEST_F(AwsEc2Moto, RunsInASubnetWithSecurityGroupsAKeyPairUserDataAndTags) {
  const std::string vpc = call("CreateVpc", {{"CidrBlock", "10.20.0.0/16"}}).findDescendant("vpcId")->text;
  const std::string subnet =
      call("CreateSubnet", {{"VpcId", vpc}, {"CidrBlock", "10.20.1.0/24"}}).findDescendant("subnetId")->text;
  std::vector<std::string> groups;
  for (int i = 0; i < 2; ++i) {
    groups.push_back(call("CreateSecurityGroup", {{"GroupName", "kasm-" + installation_ + "-" + std::to_string(i)},
                                                  {"GroupDescription", "kasm aws tests"},
                                                  {"VpcId", vpc}})
                         .childText("groupId"));
  }
  const std::string key = "kasm-" + installation_;
  call("CreateKeyPair", {{"KeyName", key}});
  ASSERT_FALSE(vpc.empty() || subnet.empty() || groups[0].empty() || groups[1].empty());

  Ec2Options o = motoOptions();
  o.subnet_id = subnet;
  o.security_group_ids = groups;
  o.key_name = key;
  o.tags = {{"team", "vdi & co"}};
  const spi::VmSpec s = spec("net1");
  auto made = provider(o).create(s);
  ASSERT_TRUE(made.ok()) << made.error().toString();
  EXPECT_EQ(made->private_address.rfind("10.20.1.", 0), 0u) << made->private_address;
  EXPECT_TRUE(made->launched_at.has_value());

  const detail::XmlElement item = describe(made->id);
  EXPECT_EQ(item.childText("subnetId"), subnet);
  EXPECT_EQ(item.childText("vpcId"), vpc);
  EXPECT_EQ(item.childText("keyName"), key);
  EXPECT_EQ(item.childText("imageId"), motoImage());
  EXPECT_EQ(item.childText("instanceType"), "t3.micro");
  std::vector<std::string> seen_groups;
  if (const auto* set = item.child("groupSet"))
    for (const auto* g : set->childrenNamed("item")) seen_groups.push_back(g->childText("groupId"));
  std::sort(seen_groups.begin(), seen_groups.end());
  std::sort(groups.begin(), groups.end());
  EXPECT_EQ(seen_groups, groups);
  const spi::VmInstance vm = detail::instanceFromXml(item);
  EXPECT_EQ(vm.tags.at("Name"), "kasm-moto-net1");
  EXPECT_EQ(vm.tags.at("team"), "vdi & co");
  EXPECT_EQ(vm.tags.at(std::string(spi::vm_tags::kVm)), "net1");

  const detail::XmlElement user_data =
      call("DescribeInstanceAttribute", {{"InstanceId", made->id}, {"Attribute", "userData"}});
  const detail::XmlElement* value = user_data.findDescendant("userData");
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(value->childText("value"), detail::base64Encode(s.user_data));
}

TEST_F(AwsEc2Moto, ListFollowsEveryPageAndMatchesEveryTag) {
  Ec2Options o = motoOptions();
  o.list_page_size = 5;  // EC2's smallest page: seven machines take two pages.
  spi::VmProvider& p = provider(o);
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    auto made = p.create(spec("page" + std::to_string(i), i < 2 ? "cfg-a" : "cfg-b"));
    ASSERT_TRUE(made.ok()) << made.error().toString();
    ids.push_back(made->id);
  }
  auto all = p.list({{std::string(spi::vm_tags::kInstallation), installation_}});
  ASSERT_TRUE(all.ok()) << all.error().toString();
  std::vector<std::string> listed;
  for (const auto& vm : *all) listed.push_back(vm.id);
  std::sort(listed.begin(), listed.end());
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(listed, ids);

  auto cfg_a = p.list(
      {{std::string(spi::vm_tags::kInstallation), installation_}, {std::string(spi::vm_tags::kConfig), "cfg-a"}});
  ASSERT_TRUE(cfg_a.ok());
  EXPECT_EQ(cfg_a->size(), 2u);
  for (const auto& vm : *cfg_a) EXPECT_EQ(vm.tags.at(std::string(spi::vm_tags::kConfig)), "cfg-a");
}

TEST_F(AwsEc2Moto, TerminatedMachinesStayListedAsTerminated) {
  spi::VmProvider& p = provider(motoOptions());
  auto a = p.create(spec("term-a"));
  auto b = p.create(spec("term-b"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(p.destroy(a->id).ok());
  auto status = p.status(a->id);
  ASSERT_TRUE(status.ok()) << status.error().toString();
  EXPECT_TRUE(status->state == spi::VmState::kTerminated || status->state == spi::VmState::kStopping);
  auto listed = p.list({{std::string(spi::vm_tags::kInstallation), installation_}});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  for (const auto& vm : *listed) {
    if (vm.id == a->id) {
      EXPECT_FALSE(vm.state == spi::VmState::kRunning || vm.state == spi::VmState::kPending);
    } else {
      EXPECT_EQ(vm.id, b->id);
      EXPECT_EQ(vm.state, spi::VmState::kRunning);
    }
  }
  EXPECT_TRUE(p.destroy(a->id).ok());
}

TEST_F(AwsEc2Moto, MotosRefusalsAreMapped) {
  Ec2Options o = motoOptions();
  o.subnet_id = "subnet-00000000000000000";
  auto made = provider(o).create(spec("bad-subnet"));
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().code(), ErrorCode::kInvalidArgument) << made.error().toString();
  EXPECT_NE(made.error().message().find("InvalidSubnetID.NotFound"), std::string::npos) << made.error().message();
  auto missing = provider(motoOptions()).status("i-0123456789abcdef0");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message().find("InvalidInstanceID.NotFound"), std::string::npos);
}

TEST_F(AwsEc2Moto, TheRegistryMakesAWorkingProviderFromJson) {
  spi::VmProviderRegistry registry;
  ASSERT_TRUE(registerEc2Provider(registry).ok());
  auto made = registry.create("aws-ec2", R"({"region": "us-east-1", "endpoint": ")" + motoUrl() +
                                             R"(", "access_key_id": "AKIDMOTO", "secret_access_key": "s",
                                             "image_id": ")" +
                                             motoImage() + R"(", "instance_type": "t3.micro",
                                             "max_retries": 1, "request_timeout_seconds": 20})");
  ASSERT_TRUE(made.ok()) << made.error().toString();
  providers_.push_back(std::move(*made));
  auto vm = providers_.back()->create(spec("json"));
  ASSERT_TRUE(vm.ok()) << vm.error().toString();
  auto status = providers_.back()->status(vm->id);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->tags.at(std::string(spi::vm_tags::kVm)), "json");
}

}  // namespace
}  // namespace kasm::aws

// In the suite's own namespace: gtest's macro needs the fixture's unqualified name.
namespace kasm::testing {
INSTANTIATE_TEST_SUITE_P(AwsEc2Moto, VmProviderConformance,
                         ::testing::Values(VmProviderUnderTest{"aws-ec2", aws::makeMotoProvider, "i-0123456789abcdef0",
                                                               /*client_token_idempotent=*/false}));
}  // namespace kasm::testing
