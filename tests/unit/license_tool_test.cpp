// The kasm-license vendor tool end to end: key pair, activation key, activation for an
// installation, then verification and installation by the library.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kasm/kasm.hpp"
#include "kasm/license/licensing.hpp"
#include "kasm/license/text.hpp"

namespace kasm {
namespace {

namespace fs = std::filesystem;

class LicenseToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "kasm-license-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Runs the tool with `args`; returns its exit status, with stdout and stderr kept.
  int run(const std::string& args) {
    // Appended piece by piece: GCC 12 warns falsely (-Warray-bounds) on one long chain of operator+.
    std::string cmd = "'";
    cmd += KASM_LICENSE_TOOL;
    cmd += "' ";
    cmd += args;
    cmd += " >'";
    cmd += path("stdout");
    cmd += "' 2>'";
    cmd += path("stderr");
    cmd += "'";
    const int status = std::system(cmd.c_str());
    out_ = read(path("stdout"));
    err_ = read(path("stderr"));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  static std::string read(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  fs::path dir_;
  std::string out_, err_;
};

TEST_F(LicenseToolTest, KeygenIssueActivateAndVerifyWithTheLibrary) {
  // The installation side: its id, as an admin page would show it.
  ManualClock clock{std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now())};
  auto store = makeMemoryStore();

  ASSERT_EQ(run("keygen --private-key " + path("vendor.pem") + " --public-key " + path("vendor.pub")), 0) << err_;
  auto pub = license::VerifyingKey::fromPem(read(path("vendor.pub")));
  ASSERT_TRUE(pub.ok()) << pub.error().toString();
  license::LicensePolicy policy;
  policy.verifying_keys = {*pub};
  license::Licensing licensing(*store, clock, policy);
  const std::string installation = licensing.installationId().value();

  ASSERT_EQ(run("issue --private-key " + path("vendor.pem") +
                " --customer 'ACME Corp' --type named_users --limit 3 --days 30 --features staging,sharing"
                " --id purchase-7 --out " +
                path("activation.txt")),
            0)
      << err_;
  auto activation = license::readActivationKey(read(path("activation.txt")), std::span(&pub.value(), 1));
  ASSERT_TRUE(activation.ok()) << activation.error().toString();
  EXPECT_EQ(activation->id, "purchase-7");
  EXPECT_EQ(activation->limit, 3);

  ASSERT_EQ(run("activate --private-key " + path("vendor.pem") + " --activation-key " + path("activation.txt") +
                " --installation-id " + installation + " --out " + path("license.txt")),
            0)
      << err_;
  const std::string text = read(path("license.txt"));
  auto doc = license::readLicense(text, std::span(&pub.value(), 1));
  ASSERT_TRUE(doc.ok()) << doc.error().toString();
  EXPECT_EQ(doc->installation_id, installation);
  EXPECT_EQ(doc->customer, "ACME Corp");
  EXPECT_EQ(doc->type, LicenseType::kNamedUsers);
  EXPECT_EQ(doc->features, (std::set<std::string>{"sharing", "staging"}));

  // The tool stamps the licence with its own clock, in whole seconds: bring the installation's
  // clock up to now, or a second that turned while the tool ran makes the licence "not yet valid".
  clock.advance(std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now()) - clock.now());
  auto added = licensing.addLicense(text);
  ASSERT_TRUE(added.ok()) << added.error().toString();
  auto st = licensing.status();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->state, license::LicenseState::kExpiring);  // 30 days is inside the warning period.
  EXPECT_EQ(st->limit, 3);
  EXPECT_TRUE(licensing.requireFeature("staging").ok());

  ASSERT_EQ(run("verify --public-key " + path("vendor.pub") + " --license " + path("license.txt") +
                " --installation-id " + installation),
            0)
      << err_;
  EXPECT_NE(out_.find("limit: 3"), std::string::npos) << out_;
  EXPECT_NE(out_.find("type: named_users"), std::string::npos) << out_;
}

TEST_F(LicenseToolTest, RefusesWithClearMessages) {
  ASSERT_EQ(run("keygen --private-key " + path("a.pem") + " --public-key " + path("a.pub")), 0) << err_;
  ASSERT_EQ(run("keygen --private-key " + path("b.pem") + " --public-key " + path("b.pub")), 0) << err_;
  EXPECT_EQ(run("keygen --private-key " + path("a.pem") + " --public-key " + path("c.pub")), 1);
  EXPECT_NE(err_.find("already exists"), std::string::npos) << err_;

  ASSERT_EQ(run("issue --private-key " + path("a.pem") +
                " --customer ACME --type concurrent_sessions --limit 5 --days 10 --out " + path("act.txt")),
            0)
      << err_;
  // Activation keys verify against the signing key's own public half.
  EXPECT_EQ(run("activate --private-key " + path("b.pem") + " --activation-key " + path("act.txt") +
                " --installation-id abc --out " + path("lic.txt")),
            1);
  EXPECT_NE(err_.find("signature"), std::string::npos) << err_;
  EXPECT_EQ(run("activate --private-key " + path("a.pem") + " --activation-key " + path("act.txt") +
                " --installation-id 'not an id' --out " + path("lic.txt")),
            1);
  EXPECT_NE(err_.find("not a valid installation id"), std::string::npos) << err_;
  ASSERT_EQ(run("activate --private-key " + path("a.pem") + " --activation-key " + path("act.txt") +
                " --installation-id abc --out " + path("lic.txt")),
            0)
      << err_;
  EXPECT_EQ(run("verify --public-key " + path("b.pub") + " --license " + path("lic.txt")), 1);
  EXPECT_EQ(run("verify --public-key " + path("a.pub") + " --license " + path("lic.txt") + " --installation-id xyz"),
            1);
  EXPECT_NE(err_.find("for installation abc, not xyz"), std::string::npos) << err_;

  EXPECT_EQ(run("issue --private-key " + path("a.pem") + " --customer ACME --type seats --limit 5 --days 10"), 2);
  EXPECT_NE(err_.find("--type must be one of"), std::string::npos) << err_;
  EXPECT_EQ(run("frobnicate"), 2);
  EXPECT_EQ(run(""), 2);
}

}  // namespace
}  // namespace kasm
