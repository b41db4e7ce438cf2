#pragma once

// The conformance suite every spi::VmProvider passes (kasm/spi/vm_provider.hpp). Include this
// header in exactly one source file of a test binary and instantiate it there:
//
//   INSTANTIATE_TEST_SUITE_P(Command, VmProviderConformance,
//                            ::testing::Values(VmProviderUnderTest{"command", makeProvider, "vm-404"}));
//
// Each test tags its machines with an installation id of its own, so runs and parallel tests do not
// see each other's machines, and destroys what it made.

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "kasm/core/enum_names.hpp"
#include "kasm/core/secure_random.hpp"
#include "kasm/spi/vm_provider.hpp"

namespace kasm::testing {

struct VmProviderUnderTest {
  std::string name;
  std::function<std::unique_ptr<spi::VmProvider>()> make;
  std::string unknown_id;  // A well-formed id the provider does not know.
  // False for a provider whose test double ignores the idempotency key (moto's EC2): the key is then
  // tested elsewhere against what the provider sends.
  bool client_token_idempotent = true;
};

inline std::ostream& operator<<(std::ostream& os, const VmProviderUnderTest& p) {
  return os << p.name;
}

class VmProviderConformance : public ::testing::TestWithParam<VmProviderUnderTest> {
 protected:
  void SetUp() override {
    provider_ = GetParam().make();
    ASSERT_NE(provider_, nullptr);
    installation_ = "test-" + randomHex(6);
  }
  void TearDown() override {
    if (!provider_) return;
    auto left = provider_->list({{std::string(spi::vm_tags::kInstallation), installation_}});
    if (left.ok())
      for (const auto& vm : *left) (void)provider_->destroy(vm.id);
  }

  static std::string randomHex(std::size_t digits) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < digits; ++i) out.push_back(hex[secureRandomU64() & 15]);
    return out;
  }

  spi::VmSpec spec(const std::string& vm) const {
    spi::VmSpec s;
    s.name = "kasm-test-" + vm;
    s.client_token = vm;
    s.user_data = "#!/bin/sh\necho 'kasm {test}' > /dev/null\n";
    s.tags = {{std::string(spi::vm_tags::kInstallation), installation_},
              {std::string(spi::vm_tags::kConfig), "cfg-1"},
              {std::string(spi::vm_tags::kVm), vm}};
    return s;
  }

  static bool live(spi::VmState s) { return s != spi::VmState::kTerminated; }

  std::unique_ptr<spi::VmProvider> provider_;
  std::string installation_;
};

TEST_P(VmProviderConformance, CreatesListsReportsAndDestroysAMachine) {
  const std::string vm = randomHex(8);
  auto made = provider_->create(spec(vm));
  ASSERT_TRUE(made.ok()) << made.error().toString();
  EXPECT_FALSE(made->id.empty());
  EXPECT_NE(made->state, spi::VmState::kTerminated);

  auto listed = provider_->list({{std::string(spi::vm_tags::kInstallation), installation_}});
  ASSERT_TRUE(listed.ok()) << listed.error().toString();
  auto it = std::find_if(listed->begin(), listed->end(), [&](const auto& v) { return v.id == made->id; });
  ASSERT_NE(it, listed->end()) << "the machine just made is not listed by its tags";
  EXPECT_EQ(it->tags.at(std::string(spi::vm_tags::kVm)), vm);
  EXPECT_EQ(it->tags.at(std::string(spi::vm_tags::kConfig)), "cfg-1");

  auto status = provider_->status(made->id);
  ASSERT_TRUE(status.ok()) << status.error().toString();
  EXPECT_EQ(status->id, made->id);
  EXPECT_TRUE(live(status->state));

  ASSERT_TRUE(provider_->destroy(made->id).ok());
  auto after = provider_->status(made->id);
  EXPECT_TRUE(!after.ok() ? after.error().code() == ErrorCode::kNotFound
                          : after->state == spi::VmState::kTerminated || after->state == spi::VmState::kStopping)
      << (after.ok() ? std::string(enumName(after->state)) : after.error().toString());
  auto relisted = provider_->list({{std::string(spi::vm_tags::kInstallation), installation_}});
  ASSERT_TRUE(relisted.ok());
  for (const auto& v : *relisted) {
    if (v.id == made->id) {
      EXPECT_FALSE(v.state == spi::VmState::kPending || v.state == spi::VmState::kRunning);
    }
  }
  EXPECT_TRUE(provider_->destroy(made->id).ok()) << "destroying a destroyed machine must succeed";
}

TEST_P(VmProviderConformance, ListMatchesEveryTagGiven) {
  const std::string a = randomHex(8), b = randomHex(8);
  auto va = provider_->create(spec(a));
  auto vb = provider_->create(spec(b));
  ASSERT_TRUE(va.ok() && vb.ok());
  auto only_a =
      provider_->list({{std::string(spi::vm_tags::kInstallation), installation_}, {std::string(spi::vm_tags::kVm), a}});
  ASSERT_TRUE(only_a.ok()) << only_a.error().toString();
  ASSERT_EQ(only_a->size(), 1u);
  EXPECT_EQ(only_a->front().id, va->id);
  auto other = provider_->list({{std::string(spi::vm_tags::kInstallation), installation_ + "-other"}});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());
}

TEST_P(VmProviderConformance, OneClientTokenMakesOneMachine) {
  if (!GetParam().client_token_idempotent) GTEST_SKIP() << "this provider's double ignores the key; tested apart";
  const std::string vm = randomHex(8);
  auto first = provider_->create(spec(vm));
  auto again = provider_->create(spec(vm));
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(first->id, again->id);
  auto listed = provider_->list({{std::string(spi::vm_tags::kInstallation), installation_}});
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(std::count_if(listed->begin(), listed->end(), [](const auto& v) { return live(v.state); }), 1);
}

TEST_P(VmProviderConformance, AnUnknownMachineIsNotFoundAndDestroyingItSucceeds) {
  auto status = provider_->status(GetParam().unknown_id);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code(), ErrorCode::kNotFound) << status.error().toString();
  EXPECT_TRUE(provider_->destroy(GetParam().unknown_id).ok());
}

}  // namespace kasm::testing
