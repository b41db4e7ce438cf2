// What the aws-ec2 provider sends and how it reads answers, against a loopback capture server with
// canned EC2 XML: every RunInstances field, the signature, retries, error mapping and paging.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "aws/capture_server.hpp"
#include "backends/aws/ec2_instances.hpp"
#include "backends/aws/sigv4.hpp"
#include "kasm/aws/ec2_provider.hpp"

namespace kasm::aws {
namespace {

using testing::CaptureServer;

constexpr const char* kSecret = "test/Secret+Key=0123456789abcdefEXAMPLE";

Ec2Options optionsFor(const CaptureServer& server) {
  Ec2Options o;
  o.region = "us-east-1";
  o.endpoint = server.url();
  o.access_key_id = "AKIDTEST";
  o.secret_access_key = kSecret;
  o.image_id = "ami-1e749f67";
  o.instance_type = "t3.micro";
  o.max_retries = 3;
  o.retry_base_delay = std::chrono::milliseconds(1);
  o.retry_max_delay = std::chrono::milliseconds(4);
  o.request_timeout = std::chrono::seconds(5);
  return o;
}

std::unique_ptr<spi::VmProvider> make(const Ec2Options& o) {
  auto made = makeEc2Provider(o);
  EXPECT_TRUE(made.ok()) << made.error().toString();
  return made.ok() ? std::move(*made) : nullptr;
}

spi::VmSpec specFor(const std::string& vm) {
  spi::VmSpec s;
  s.name = "kasm-test-" + vm;
  s.client_token = "token-" + vm;
  s.user_data = "#!/bin/sh\necho 'kasm {test}' & exit 0\n";
  s.tags = {{"kasm:installation", "inst 1"}, {"kasm:autoscale-config", "cfg-1"}, {"kasm:vm", vm}};
  return s;
}

std::string percentDecode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The form body as name -> value; fails the test on a duplicate name or a byte that should be encoded.
std::map<std::string, std::string> formFields(const std::string& body) {
  std::map<std::string, std::string> out;
  for (char c : body) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.' || c == '~' || c == '%' || c == '=' || c == '&';
    EXPECT_TRUE(ok) << "'" << c << "' is not form-encoded in " << body;
  }
  std::size_t start = 0;
  while (start <= body.size()) {
    const auto end = std::min(body.find('&', start), body.size());
    const std::string pair = body.substr(start, end - start);
    const auto eq = pair.find('=');
    EXPECT_NE(eq, std::string::npos) << pair;
    if (eq != std::string::npos) {
      EXPECT_TRUE(out.emplace(percentDecode(pair.substr(0, eq)), percentDecode(pair.substr(eq + 1))).second) << pair;
    }
    start = end + 1;
  }
  return out;
}

// Recomputes the Authorization header from what arrived; empty when it verifies, else why not.
std::string signatureProblem(const CaptureServer::Request& r, const std::string& secret) {
  const auto auth = r.headers.find("authorization");
  if (auth == r.headers.end()) return "no Authorization header";
  const std::string& a = auth->second;
  const auto sh = a.find("SignedHeaders=");
  if (sh == std::string::npos) return "no SignedHeaders in " + a;
  const std::string signed_list = a.substr(sh + 14, a.find(',', sh) - sh - 14);
  detail::SignableRequest s;
  s.method = r.method;
  s.path = r.target;
  s.payload = r.body;
  std::size_t start = 0;
  while (start < signed_list.size()) {
    const auto end = std::min(signed_list.find(';', start), signed_list.size());
    const std::string name = signed_list.substr(start, end - start);
    if (!r.headers.count(name)) return "signed header " + name + " was not sent";
    s.headers.emplace_back(name, r.headers.at(name));
    start = end + 1;
  }
  for (const char* needed : {"host", "x-amz-date", "content-type"})
    if (signed_list.find(needed) == std::string::npos) return std::string(needed) + " is not signed";
  const detail::SigningScope scope{r.headers.at("x-amz-date"), "us-east-1", "ec2"};
  const std::string access = a.substr(a.find("Credential=") + 11, a.find('/') - a.find("Credential=") - 11);
  const std::string expected = detail::authorizationHeader({access, secret, ""}, scope, s);
  return expected == a ? "" : "sent " + a + "\nexpected " + expected;
}

std::string errorXml(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>" + code + "</Code><Message>" +
         message + "</Message></Error></Errors><RequestID>req-err-1</RequestID></Response>";
}

std::string instanceXml(const std::string& id, const std::string& state,
                        const std::map<std::string, std::string>& tags = {}) {
  std::string xml = "<item><instanceId>" + id +
                    "</instanceId><imageId>ami-1e749f67</imageId><instanceState><code>16</code>"
                    "<name>" +
                    state +
                    "</name></instanceState><privateIpAddress>10.0.1.5</privateIpAddress>"
                    "<groupSet><item><groupId>sg-1</groupId></item></groupSet>"
                    "<launchTime>2024-05-06T09:00:00.000Z</launchTime><tagSet>";
  for (const auto& [k, v] : tags) xml += "<item><key>" + k + "</key><value>" + v + "</value></item>";
  return xml + "</tagSet></item>";
}

std::string runXml(const std::string& id) {
  return "<RunInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r</requestId>"
         "<reservationId>r-1</reservationId><ownerId>1</ownerId><groupSet/><instancesSet>" +
         instanceXml(id, "pending") + "</instancesSet></RunInstancesResponse>";
}

std::string describeXml(const std::vector<std::string>& items, const std::string& next_token = "") {
  std::string xml =
      "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r"
      "</requestId><reservationSet>";
  for (const auto& item : items)
    xml += "<item><reservationId>r-x</reservationId><instancesSet>" + item + "</instancesSet></item>";
  xml += "</reservationSet>";
  if (!next_token.empty()) xml += "<nextToken>" + next_token + "</nextToken>";
  return xml + "</DescribeInstancesResponse>";
}

TEST(AwsEc2Requests, RunInstancesSendsEveryFieldSignedAndFormEncoded) {
  CaptureServer server;
  server.enqueue(200, runXml("i-0abc1234567890def"));
  Ec2Options o = optionsFor(server);
  o.session_token = "session/token+1";
  o.subnet_id = "subnet-123";
  o.security_group_ids = {"sg-1", "sg-2"};
  o.key_name = "ops key";
  o.iam_instance_profile = "kasm-agents";
  o.tags = {{"team", "vdi & co"}};
  auto provider = make(o);
  const spi::VmSpec spec = specFor("vm1");
  auto made = provider->create(spec);
  ASSERT_TRUE(made.ok()) << made.error().toString();
  EXPECT_EQ(made->id, "i-0abc1234567890def");
  EXPECT_EQ(made->state, spi::VmState::kPending);
  EXPECT_EQ(made->private_address, "10.0.1.5");
  ASSERT_TRUE(made->launched_at.has_value());
  EXPECT_EQ(toUnixMillis(*made->launched_at), 1714986000000);
  EXPECT_EQ(made->tags.at("kasm:vm"), "vm1");  // The answer had none: the ones sent.

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& r = requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/");
  EXPECT_EQ(r.headers.at("content-type"), "application/x-www-form-urlencoded; charset=utf-8");
  EXPECT_EQ(r.headers.at("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(r.headers.at("x-amz-security-token"), "session/token+1");
  EXPECT_EQ(signatureProblem(r, kSecret), "");
  EXPECT_EQ(r.body.find(kSecret), std::string::npos);
  for (const auto& [name, value] : r.headers) {
    if (name != "authorization") {
      EXPECT_EQ(value.find(kSecret), std::string::npos) << name;
    }
  }

  const auto f = formFields(r.body);
  const std::map<std::string, std::string> expected = {{"Action", "RunInstances"},
                                                       {"Version", "2016-11-15"},
                                                       {"ImageId", "ami-1e749f67"},
                                                       {"InstanceType", "t3.micro"},
                                                       {"MinCount", "1"},
                                                       {"MaxCount", "1"},
                                                       {"ClientToken", "token-vm1"},
                                                       {"SubnetId", "subnet-123"},
                                                       {"SecurityGroupId.1", "sg-1"},
                                                       {"SecurityGroupId.2", "sg-2"},
                                                       {"KeyName", "ops key"},
                                                       {"IamInstanceProfile.Name", "kasm-agents"},
                                                       {"UserData", detail::base64Encode(spec.user_data)},
                                                       {"TagSpecification.1.ResourceType", "instance"}};
  for (const auto& [k, v] : expected) {
    ASSERT_TRUE(f.count(k)) << k << " missing from " << r.body;
    EXPECT_EQ(f.at(k), v) << k;
  }
  EXPECT_NE(r.body.find("KeyName=ops%20key"), std::string::npos);
  EXPECT_EQ(f.at("UserData"), "IyEvYmluL3NoCmVjaG8gJ2thc20ge3Rlc3R9JyAmIGV4aXQgMAo=");
  std::map<std::string, std::string> tags;
  for (int i = 1; f.count("TagSpecification.1.Tag." + std::to_string(i) + ".Key"); ++i) {
    const std::string p = "TagSpecification.1.Tag." + std::to_string(i);
    ASSERT_TRUE(f.count(p + ".Value")) << p;
    tags[f.at(p + ".Key")] = f.at(p + ".Value");
  }
  const std::map<std::string, std::string> expected_tags = {{"Name", "kasm-test-vm1"},
                                                            {"kasm:installation", "inst 1"},
                                                            {"kasm:autoscale-config", "cfg-1"},
                                                            {"kasm:vm", "vm1"},
                                                            {"team", "vdi & co"}};
  EXPECT_EQ(tags, expected_tags);
  EXPECT_FALSE(f.count("IamInstanceProfile.Arn"));
}

TEST(AwsEc2Requests, OptionalFieldsAreLeftOutAndAnArnIsSentAsArn) {
  CaptureServer server;
  server.enqueue(200, runXml("i-0abc1234567890def"));
  server.enqueue(200, runXml("i-0abc1234567890de0"));
  Ec2Options o = optionsFor(server);
  auto provider = make(o);
  spi::VmSpec spec = specFor("vm2");
  spec.user_data.clear();
  ASSERT_TRUE(provider->create(spec).ok());
  o.iam_instance_profile = "arn:aws:iam::123456789012:instance-profile/kasm";
  ASSERT_TRUE(make(o)->create(spec).ok());
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  const auto plain = formFields(requests[0].body);
  for (const char* absent : {"SubnetId", "SecurityGroupId.1", "KeyName", "IamInstanceProfile.Name", "UserData"})
    EXPECT_FALSE(plain.count(absent)) << absent;
  EXPECT_FALSE(requests[0].headers.count("x-amz-security-token"));
  EXPECT_EQ(signatureProblem(requests[0], kSecret), "");
  EXPECT_EQ(formFields(requests[1].body).at("IamInstanceProfile.Arn"), o.iam_instance_profile);
}

TEST(AwsEc2Requests, ASpecEc2WouldRefuseIsRefusedBeforeSending) {
  CaptureServer server;
  auto provider = make(optionsFor(server));
  spi::VmSpec no_token = specFor("a");
  no_token.client_token.clear();
  EXPECT_EQ(provider->create(no_token).error().code(), ErrorCode::kInvalidArgument);
  spi::VmSpec long_token = specFor("a");
  long_token.client_token = std::string(65, 'x');
  EXPECT_EQ(provider->create(long_token).error().code(), ErrorCode::kInvalidArgument);
  spi::VmSpec big = specFor("a");
  big.user_data = std::string(16 * 1024 + 1, 'x');
  EXPECT_EQ(provider->create(big).error().code(), ErrorCode::kInvalidArgument);
  spi::VmSpec many = specFor("a");
  for (int i = 0; i < 60; ++i) many.tags["t" + std::to_string(i)] = "v";
  EXPECT_EQ(provider->create(many).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(server.requests().empty());
}

TEST(AwsEc2Requests, ThrottlingIsRetriedWithTheSameClientTokenThenSucceeds) {
  CaptureServer server;
  server.enqueue(503, errorXml("RequestLimitExceeded", "Request limit exceeded."));
  server.enqueue(503, errorXml("RequestLimitExceeded", "Request limit exceeded."));
  server.enqueue(200, runXml("i-0abc1234567890def"));
  auto made = make(optionsFor(server))->create(specFor("vm3"));
  ASSERT_TRUE(made.ok()) << made.error().toString();
  EXPECT_EQ(made->id, "i-0abc1234567890def");
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const auto& r : requests) {
    EXPECT_EQ(formFields(r.body).at("ClientToken"), "token-vm3");
    EXPECT_EQ(signatureProblem(r, kSecret), "");
  }
}

TEST(AwsEc2Requests, ThrottlingPastMaxRetriesIsResourceExhausted) {
  CaptureServer server;
  Ec2Options o = optionsFor(server);
  o.max_retries = 2;
  for (int i = 0; i < 3; ++i) server.enqueue(503, errorXml("RequestLimitExceeded", "Request limit exceeded."));
  server.enqueue(200, runXml("i-0abc1234567890def"));  // Never reached.
  auto made = make(o)->create(specFor("vm4"));
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(made.error().message().find("RequestLimitExceeded: Request limit exceeded."), std::string::npos);
  EXPECT_NE(made.error().message().find("gave up after 3 attempts"), std::string::npos) << made.error().message();
  EXPECT_EQ(server.requests().size(), 3u);

  CaptureServer capacity;
  o = optionsFor(capacity);
  o.max_retries = 1;
  capacity.enqueue(500, errorXml("InsufficientInstanceCapacity", "We currently do not have sufficient capacity."));
  capacity.enqueue(500, errorXml("InsufficientInstanceCapacity", "We currently do not have sufficient capacity."));
  EXPECT_EQ(make(o)->create(specFor("vm4")).error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(capacity.requests().size(), 2u);
}

TEST(AwsEc2Requests, RefusalsAreMappedOnceWithAwsWords) {
  struct Case {
    int status;
    std::string code;
    ErrorCode expected;
  };
  const std::vector<Case> cases = {{403, "UnauthorizedOperation", ErrorCode::kPermissionDenied},
                                   {401, "AuthFailure", ErrorCode::kPermissionDenied},
                                   {403, "SignatureDoesNotMatch", ErrorCode::kPermissionDenied},
                                   {400, "InvalidAMIID.NotFound", ErrorCode::kInvalidArgument},
                                   {400, "InvalidParameterValue", ErrorCode::kInvalidArgument},
                                   {400, "MissingParameter", ErrorCode::kInvalidArgument},
                                   {400, "InvalidSubnetID.NotFound", ErrorCode::kInvalidArgument},
                                   {400, "InstanceLimitExceeded", ErrorCode::kResourceExhausted},
                                   {400, "IdempotentParameterMismatch", ErrorCode::kFailedPrecondition},
                                   {400, "OperationNotPermitted", ErrorCode::kFailedPrecondition}};
  for (const auto& c : cases) {
    CaptureServer server;
    server.enqueue(c.status, errorXml(c.code, "You are not allowed &amp; that's that."));
    auto made = make(optionsFor(server))->create(specFor("vm5"));
    ASSERT_FALSE(made.ok()) << c.code;
    EXPECT_EQ(made.error().code(), c.expected) << c.code << ": " << made.error().toString();
    EXPECT_NE(made.error().message().find(c.code + ": You are not allowed & that's that."), std::string::npos)
        << made.error().message();
    EXPECT_NE(made.error().message().find("RunInstances"), std::string::npos);
    EXPECT_EQ(made.error().message().find(kSecret), std::string::npos);
    EXPECT_EQ(server.requests().size(), 1u) << c.code << " must not be retried";
  }
}

TEST(AwsEc2Requests, ServerFailuresAreRetriedThenUnavailable) {
  CaptureServer server;
  for (int i = 0; i < 4; ++i)
    server.enqueue(500, i % 2 ? "oops, not XML" : errorXml("InternalError", "An internal error."));
  auto made = make(optionsFor(server))->create(specFor("vm6"));
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(made.error().message().find("HTTP 500"), std::string::npos) << made.error().message();
  EXPECT_NE(made.error().message().find("gave up after 4 attempts"), std::string::npos);
  EXPECT_EQ(server.requests().size(), 4u);

  CaptureServer recovering;
  recovering.enqueue(500, errorXml("InternalError", "An internal error."));
  recovering.enqueue(CaptureServer::kCloseWithoutAnswer, "");
  recovering.enqueue(200, "<RunInstancesResponse><instancesSet>");  // Cut short: not a document.
  recovering.enqueue(200, runXml("i-0abc1234567890def"));
  auto later = make(optionsFor(recovering))->create(specFor("vm6"));
  ASSERT_TRUE(later.ok()) << later.error().toString();
  EXPECT_EQ(recovering.requests().size(), 4u);
}

TEST(AwsEc2Requests, TransportFailuresAreUnavailable) {
  Ec2Options o;
  {
    CaptureServer gone;  // A port that was free a moment ago and is closed now.
    o = optionsFor(gone);
  }
  o.max_retries = 1;
  auto refused = make(o)->status("i-0abc1234567890def");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnavailable) << refused.error().toString();

  CaptureServer slow;
  slow.enqueue(CaptureServer::kHang, "");
  o = optionsFor(slow);
  o.max_retries = 0;
  o.request_timeout = std::chrono::milliseconds(200);
  const auto start = std::chrono::steady_clock::now();
  auto timed_out = make(o)->status("i-0abc1234567890def");
  ASSERT_FALSE(timed_out.ok());
  EXPECT_EQ(timed_out.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(timed_out.error().message().find("imeout"), std::string::npos) << timed_out.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1400));
}

TEST(AwsEc2Requests, AnOversizedAnswerIsRefused) {
  CaptureServer server;
  std::string huge = "<DescribeInstancesResponse><x>";
  huge += std::string(kMaxEc2ResponseBytes + 1, 'a');
  huge += "</x></DescribeInstancesResponse>";
  server.enqueue(200, huge);
  Ec2Options o = optionsFor(server);
  o.max_retries = 0;
  auto listed = make(o)->list({{"kasm:installation", "x"}});
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(listed.error().message().find("larger than"), std::string::npos) << listed.error().message();
}

TEST(AwsEc2Requests, ListFollowsEveryPageAndFiltersByEveryTag) {
  CaptureServer server;
  const std::map<std::string, std::string> mine = {{"kasm:installation", "inst-1"}, {"kasm:autoscale-config", "c"}};
  server.enqueue(200, describeXml({instanceXml("i-00000000000000001", "running", mine),
                                   instanceXml("i-00000000000000002", "pending", mine)},
                                  "page-2-token"));
  auto not_exact = mine;
  not_exact["kasm:installation"] = "inst-10";  // What a wildcard filter could let through.
  server.enqueue(200, describeXml({instanceXml("i-00000000000000003", "terminated", mine),
                                   instanceXml("i-00000000000000004", "running", not_exact)}));
  Ec2Options o = optionsFor(server);
  o.list_page_size = 5;
  auto listed = make(o)->list(mine);
  ASSERT_TRUE(listed.ok()) << listed.error().toString();
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[0].id, "i-00000000000000001");
  EXPECT_EQ((*listed)[0].state, spi::VmState::kRunning);
  EXPECT_EQ((*listed)[0].tags.at("kasm:installation"), "inst-1");
  EXPECT_EQ((*listed)[1].state, spi::VmState::kPending);
  EXPECT_EQ((*listed)[2].id, "i-00000000000000003");
  EXPECT_EQ((*listed)[2].state, spi::VmState::kTerminated);

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  const auto first = formFields(requests[0].body);
  const auto second = formFields(requests[1].body);
  EXPECT_EQ(first.at("Action"), "DescribeInstances");
  EXPECT_EQ(first.at("MaxResults"), "5");
  EXPECT_FALSE(first.count("NextToken"));
  EXPECT_EQ(second.at("NextToken"), "page-2-token");
  for (const auto& f : {first, second}) {
    std::map<std::string, std::string> filters;
    for (int i = 1; f.count("Filter." + std::to_string(i) + ".Name"); ++i)
      filters[f.at("Filter." + std::to_string(i) + ".Name")] = f.at("Filter." + std::to_string(i) + ".Value.1");
    EXPECT_EQ(filters, (std::map<std::string, std::string>{{"tag:kasm:installation", "inst-1"},
                                                           {"tag:kasm:autoscale-config", "c"}}));
  }
  for (const auto& r : requests) EXPECT_EQ(signatureProblem(r, kSecret), "");
}

TEST(AwsEc2Requests, ARepeatedNextTokenEndsTheListingWithAnError) {
  CaptureServer server;
  for (int i = 0; i < 3; ++i) server.enqueue(200, describeXml({}, "same-token"));
  auto listed = make(optionsFor(server))->list({{"kasm:installation", "x"}});
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code(), ErrorCode::kUnavailable);
}

TEST(AwsEc2Requests, StatusReadsOneInstanceAndUnknownIdsAreNotFound) {
  CaptureServer server;
  server.enqueue(200, describeXml({instanceXml("i-0abc1234567890def", "shutting-down", {{"kasm:vm", "v"}})}));
  server.enqueue(400, errorXml("InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist"));
  server.enqueue(400, errorXml("InvalidInstanceID.Malformed", "Invalid id: \"i-zz\""));
  server.enqueue(200, describeXml({}));
  auto provider = make(optionsFor(server));
  auto vm = provider->status("i-0abc1234567890def");
  ASSERT_TRUE(vm.ok()) << vm.error().toString();
  EXPECT_EQ(vm->state, spi::VmState::kStopping);
  EXPECT_EQ(vm->tags.at("kasm:vm"), "v");
  EXPECT_EQ(provider->status("i-0123456789abcdef0").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(provider->status("i-zzzzzzzzzzzz").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(provider->status("i-0123456789abcdef1").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(server.requests().size(), 4u);
  EXPECT_EQ(formFields(server.requests()[0].body).at("InstanceId.1"), "i-0abc1234567890def");
  // Ids EC2 cannot have issued are not asked about.
  for (const char* bad : {"", "vm-404", "i-", "i-0123&Action=RunInstances", "i-../../etc"})
    EXPECT_EQ(provider->status(bad).error().code(), ErrorCode::kNotFound) << bad;
  EXPECT_EQ(server.requests().size(), 4u);
}

TEST(AwsEc2Requests, DestroyTerminatesAndAGoneMachineIsSuccess) {
  CaptureServer server;
  server.enqueue(200,
                 "<TerminateInstancesResponse><instancesSet><item><instanceId>i-0abc1234567890def</instanceId>"
                 "<currentState><code>32</code><name>shutting-down</name></currentState></item></instancesSet>"
                 "</TerminateInstancesResponse>");
  server.enqueue(400, errorXml("InvalidInstanceID.NotFound", "The instance ID does not exist"));
  server.enqueue(403, errorXml("UnauthorizedOperation", "You are not authorized to perform this operation."));
  auto provider = make(optionsFor(server));
  EXPECT_TRUE(provider->destroy("i-0abc1234567890def").ok());
  EXPECT_TRUE(provider->destroy("i-0123456789abcdef0").ok());
  auto denied = provider->destroy("i-0123456789abcdef0");
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_TRUE(provider->destroy("not-an-ec2-id").ok());
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  const auto f = formFields(requests[0].body);
  EXPECT_EQ(f.at("Action"), "TerminateInstances");
  EXPECT_EQ(f.at("InstanceId.1"), "i-0abc1234567890def");
}

}  // namespace
}  // namespace kasm::aws
