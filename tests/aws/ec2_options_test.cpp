// parseEc2Options: every field, its defaults, and errors that name the field (and never the secret).

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "kasm/aws/ec2_provider.hpp"

namespace kasm::aws {
namespace {

constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

// The required fields, with `fields` (raw JSON values by name) added or replacing them; a field set
// to "" is left out.
std::string config(const std::map<std::string, std::string>& fields = {}) {
  std::map<std::string, std::string> all = {{"region", "\"eu-west-1\""},
                                            {"access_key_id", "\"AKIDEXAMPLE\""},
                                            {"secret_access_key", "\"" + std::string(kSecret) + "\""},
                                            {"image_id", "\"ami-1\""},
                                            {"instance_type", "\"t3.large\""}};
  for (const auto& [k, v] : fields) all[k] = v;
  std::string out = "{";
  for (const auto& [k, v] : all) {
    if (v.empty()) continue;
    if (out.size() > 1) out += ", ";
    out += "\"" + k + "\": " + v;
  }
  return out + "}";
}

void expectFieldError(const std::string& json, const std::string& field) {
  auto parsed = parseEc2Options(json);
  ASSERT_FALSE(parsed.ok()) << json;
  EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(parsed.error().message().find(field), std::string::npos) << parsed.error().message();
  EXPECT_EQ(parsed.error().message().find(kSecret), std::string::npos) << "the secret leaked into an error";
}

TEST(AwsEc2Options, MinimalConfigurationGetsDefaults) {
  auto o = parseEc2Options(config());
  ASSERT_TRUE(o.ok()) << o.error().toString();
  EXPECT_EQ(o->region, "eu-west-1");
  EXPECT_EQ(o->endpoint, "https://ec2.eu-west-1.amazonaws.com");
  EXPECT_EQ(o->access_key_id, "AKIDEXAMPLE");
  EXPECT_EQ(o->secret_access_key, kSecret);
  EXPECT_EQ(o->request_timeout, std::chrono::seconds(30));
  EXPECT_EQ(o->max_retries, 5);
  EXPECT_TRUE(o->subnet_id.empty());
  EXPECT_TRUE(o->security_group_ids.empty());
  EXPECT_TRUE(o->tags.empty());
}

TEST(AwsEc2Options, EveryFieldIsRead) {
  auto o = parseEc2Options(config({{"endpoint", R"("http://127.0.0.1:5000")"},
                                   {"session_token", R"("tok")"},
                                   {"subnet_id", R"("subnet-1")"},
                                   {"security_group_ids", R"(["sg-1", "sg-2"])"},
                                   {"key_name", R"("ops key")"},
                                   {"iam_instance_profile", R"("arn:aws:iam::123:instance-profile/kasm")"},
                                   {"tags", R"({"team": "vdi", "cost": ""})"},
                                   {"request_timeout_seconds", "2.5"},
                                   {"max_retries", "0"}}));
  ASSERT_TRUE(o.ok()) << o.error().toString();
  EXPECT_EQ(o->endpoint, "http://127.0.0.1:5000");
  EXPECT_EQ(o->session_token, "tok");
  EXPECT_EQ(o->subnet_id, "subnet-1");
  EXPECT_EQ(o->security_group_ids, (std::vector<std::string>{"sg-1", "sg-2"}));
  EXPECT_EQ(o->key_name, "ops key");
  EXPECT_EQ(o->iam_instance_profile, "arn:aws:iam::123:instance-profile/kasm");
  EXPECT_EQ(o->tags, (std::map<std::string, std::string>{{"team", "vdi"}, {"cost", ""}}));
  EXPECT_EQ(o->request_timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(o->max_retries, 0);
}

TEST(AwsEc2Options, ErrorsNameTheField) {
  expectFieldError("", "must be a JSON object");
  expectFieldError("[1]", "must be a JSON object");
  expectFieldError("{\"region\": ", "must be a JSON object");
  expectFieldError(R"({"access_key_id": "a", "secret_access_key": "b", "image_id": "i", "instance_type": "t"})",
                   "'region' is required");
  expectFieldError(R"({"region": "us-east-1"})", "'access_key_id' is required");
  expectFieldError(R"({"region": "us-east-1", "access_key_id": "a"})", "'secret_access_key' is required");
  expectFieldError(config({{"regoin", R"("x")"}}), "unknown field 'regoin'");
  expectFieldError(config({{"region", R"(5)"}}), "'region' must be a string");
  expectFieldError(config({{"region", R"("US East")"}}), "'region' must be lowercase");
  expectFieldError(config({{"endpoint", R"("ftp://x")"}}), "endpoint");
  expectFieldError(config({{"endpoint", R"("https://")"}}), "has no host");
  expectFieldError(config({{"endpoint", R"("https://h/?a=1")"}}), "query");
  expectFieldError(config({{"security_group_ids", R"("sg-1")"}}), "'security_group_ids' must be an array");
  expectFieldError(config({{"security_group_ids", R"([1])"}}), "'security_group_ids' must be an array");
  expectFieldError(config({{"security_group_ids", R"([""])"}}), "'security_group_ids' must hold non-empty");
  expectFieldError(config({{"tags", R"(["a"])"}}), "'tags' must be an object");
  expectFieldError(config({{"tags", R"({"a": 1})"}}), "'tags' key 'a' must have a string value");
  expectFieldError(config({{"tags", R"({"Name": "x"})"}}), "'tags' must not set 'Name'");
  expectFieldError(config({{"tags", R"({"kasm:vm": "x"})"}}), "'tags' must not set 'kasm:vm'");
  expectFieldError(config({{"tags", R"({"aws:x": "x"})"}}), "'tags' must not set 'aws:x'");
  expectFieldError(config({{"request_timeout_seconds", R"("30")"}}), "'request_timeout_seconds' must be a number");
  expectFieldError(config({{"request_timeout_seconds", R"(0)"}}), "'request_timeout_seconds' must be more than 0");
  expectFieldError(config({{"max_retries", R"(2.5)"}}), "'max_retries' must be a whole number");
  expectFieldError(config({{"max_retries", R"(21)"}}), "'max_retries' must be between 0 and 20");
  expectFieldError(config({{"max_retries", R"(-1)"}}), "'max_retries' must be between 0 and 20");
  expectFieldError(config({{"image_id", R"("")"}}), "'image_id' is required");
  expectFieldError(config({{"instance_type", R"("")"}}), "'instance_type' is required");
  expectFieldError(config({{"iam_instance_profile", R"("a b")"}}), "'iam_instance_profile'");
}

TEST(AwsEc2Options, TheSecretIsNeverQuotedBack) {
  const std::string bad_secret = "has space secret-material";
  auto o = parseEc2Options(R"({"region": "us-east-1", "access_key_id": "a", "secret_access_key": ")" + bad_secret +
                           R"(", "image_id": "ami-1", "instance_type": "t3.large"})");
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.error().message().find("'secret_access_key'"), std::string::npos);
  EXPECT_EQ(o.error().message().find("secret-material"), std::string::npos);
  auto with_user = parseEc2Options(config({{"endpoint", R"("https://user:hunter2@ec2.example")"}}));
  ASSERT_FALSE(with_user.ok());
  EXPECT_EQ(with_user.error().message().find("hunter2"), std::string::npos);
}

TEST(AwsEc2Options, RegistersUnderItsNameAndTheFactoryParses) {
  spi::VmProviderRegistry registry;
  ASSERT_TRUE(registerEc2Provider(registry).ok());
  EXPECT_TRUE(registry.contains("aws-ec2"));
  EXPECT_EQ(registerEc2Provider(registry).error().code(), ErrorCode::kAlreadyExists);
  auto made = registry.create("aws-ec2", config({{"endpoint", R"("http://127.0.0.1:9")"}}));
  ASSERT_TRUE(made.ok()) << made.error().toString();
  auto refused = registry.create("aws-ec2", "{}");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
}

TEST(AwsEc2Options, MakeValidatesOptionsMadeInCode) {
  Ec2Options o;
  o.region = "us-east-1";
  o.access_key_id = "a";
  o.secret_access_key = "b";
  o.image_id = "ami-1";
  o.instance_type = "t3.micro";
  auto made = makeEc2Provider(o);
  ASSERT_TRUE(made.ok()) << made.error().toString();
  o.list_page_size = 2;
  EXPECT_EQ(makeEc2Provider(o).error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace kasm::aws
