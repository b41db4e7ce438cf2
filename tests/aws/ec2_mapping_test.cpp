// The pure pieces of the aws-ec2 provider: states, times, ids, endpoints, error classes, backoff.

#include <gtest/gtest.h>

#include <string>

#include "backends/aws/ec2_client.hpp"
#include "backends/aws/ec2_instances.hpp"

namespace kasm::aws::detail {
namespace {

TEST(AwsEc2Mapping, InstanceStates) {
  EXPECT_EQ(vmStateFromEc2("pending"), spi::VmState::kPending);
  EXPECT_EQ(vmStateFromEc2("running"), spi::VmState::kRunning);
  EXPECT_EQ(vmStateFromEc2("stopping"), spi::VmState::kStopping);
  EXPECT_EQ(vmStateFromEc2("shutting-down"), spi::VmState::kStopping);
  EXPECT_EQ(vmStateFromEc2("stopped"), spi::VmState::kStopped);
  EXPECT_EQ(vmStateFromEc2("terminated"), spi::VmState::kTerminated);
  EXPECT_EQ(vmStateFromEc2("Running"), spi::VmState::kUnknown);
  EXPECT_EQ(vmStateFromEc2(""), spi::VmState::kUnknown);
}

TEST(AwsEc2Mapping, LaunchTimes) {
  EXPECT_EQ(toUnixMillis(*parseEc2Time("2015-08-30T12:36:00.000Z")), 1440938160000);
  EXPECT_EQ(toUnixMillis(*parseEc2Time("2015-08-30T12:36:00Z")), 1440938160000);
  EXPECT_EQ(toUnixMillis(*parseEc2Time("2015-08-30T12:36:00.5Z")), 1440938160500);
  EXPECT_EQ(toUnixMillis(*parseEc2Time("2015-08-30T12:36:00.123456+00:00")), 1440938160123);
  EXPECT_EQ(toUnixMillis(*parseEc2Time("2015-08-30T14:36:00+02:00")), 1440938160000);
  for (const char* bad : {"", "2015-08-30", "2015-08-30T12:36:00", "2015-02-30T12:36:00Z", "2015-08-30T25:36:00Z",
                          "2015-08-30T12:36:00.Z", "2015-08-30T12:36:00Zjunk", "yyyy-08-30T12:36:00Z"})
    EXPECT_FALSE(parseEc2Time(bad).has_value()) << bad;
}

TEST(AwsEc2Mapping, InstanceIdsAndBase64) {
  EXPECT_TRUE(plausibleInstanceId("i-0123456789abcdef0"));
  EXPECT_TRUE(plausibleInstanceId("i-12345678"));
  EXPECT_FALSE(plausibleInstanceId("i-1234567"));
  EXPECT_FALSE(plausibleInstanceId("vm-12345678"));
  EXPECT_FALSE(plausibleInstanceId("i-0123456789abcdef0&x=1"));
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("f"), "Zg==");
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
}

TEST(AwsEc2Mapping, Endpoints) {
  auto ep = parseEndpoint("http://127.0.0.1:5000");
  ASSERT_TRUE(ep.ok()) << ep.error().toString();
  EXPECT_EQ(ep->host, "127.0.0.1:5000");
  EXPECT_EQ(ep->path, "/");
  ep = parseEndpoint("https://EC2.us-east-1.amazonaws.com/");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->host, "ec2.us-east-1.amazonaws.com");
  for (const char* bad : {"", "ec2.example", "ftp://h", "https://", "https://h?x", "https://h#f", "https://u@h",
                          "https://h h", "https://h/a b", "file:///etc/passwd"})
    EXPECT_EQ(parseEndpoint(bad).error().code(), ErrorCode::kInvalidArgument) << bad;
}

TEST(AwsEc2Mapping, FormEncoding) {
  EXPECT_EQ(formEncode({{"A", "b c"}, {"Tag.1.Key", "kasm:vm"}, {"V", "x&y=z+/~"}}),
            "A=b%20c&Tag.1.Key=kasm%3Avm&V=x%26y%3Dz%2B%2F~");
}

TEST(AwsEc2Mapping, ErrorClasses) {
  const auto xml = [](const std::string& code) {
    return "<Response><Errors><Error><Code>" + code + "</Code><Message>m</Message></Error></Errors></Response>";
  };
  struct Case {
    long status;
    std::string body;
    ErrorCode code;
    bool retriable;
  };
  const std::vector<Case> cases = {
      {503, xml("RequestLimitExceeded"), ErrorCode::kResourceExhausted, true},
      {400, xml("Throttling"), ErrorCode::kResourceExhausted, true},
      {500, xml("InsufficientInstanceCapacity"), ErrorCode::kResourceExhausted, true},
      {400, xml("VcpuLimitExceeded"), ErrorCode::kResourceExhausted, false},
      {401, xml("AuthFailure"), ErrorCode::kPermissionDenied, false},
      {403, xml("UnauthorizedOperation"), ErrorCode::kPermissionDenied, false},
      {403, xml("SignatureDoesNotMatch"), ErrorCode::kPermissionDenied, false},
      {400, xml("InvalidClientTokenId"), ErrorCode::kPermissionDenied, false},
      {400, xml("InvalidInstanceID.NotFound"), ErrorCode::kNotFound, false},
      {400, xml("InvalidInstanceID.Malformed"), ErrorCode::kNotFound, false},
      {400, xml("InvalidAMIID.Malformed"), ErrorCode::kInvalidArgument, false},
      {400, xml("InvalidParameterValue"), ErrorCode::kInvalidArgument, false},
      {400, xml("MissingParameter"), ErrorCode::kInvalidArgument, false},
      {400, xml("UnknownParameter"), ErrorCode::kInvalidArgument, false},
      {500, xml("InternalError"), ErrorCode::kUnavailable, true},
      {503, xml("Unavailable"), ErrorCode::kUnavailable, true},
      {502, "<html>bad gateway</html>", ErrorCode::kUnavailable, true},
      {500, "", ErrorCode::kUnavailable, true},
      {429, "", ErrorCode::kResourceExhausted, true},
      {403, "", ErrorCode::kPermissionDenied, false},
      {404, "not xml", ErrorCode::kFailedPrecondition, false},
      {400, xml("IncorrectInstanceState"), ErrorCode::kFailedPrecondition, false},
      {400, "<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>", ErrorCode::kResourceExhausted,
       true},
  };
  for (const auto& c : cases) {
    const Ec2Failure f = classifyEc2Failure("RunInstances", c.status, c.body);
    EXPECT_EQ(f.error.code(), c.code) << c.status << " " << c.body << " -> " << f.error.toString();
    EXPECT_EQ(f.retriable, c.retriable) << c.body;
    EXPECT_NE(f.error.message().find("RunInstances"), std::string::npos);
  }
  EXPECT_LT(classifyEc2Failure("X", 400,
                               "<Response><Errors><Error><Code>InvalidX</Code><Message>" + std::string(5000, 'm') +
                                   "</Message></Error></Errors></Response>")
                .error.message()
                .size(),
            1200u);
}

TEST(AwsEc2Mapping, BackoffDoublesWithJitterUpToTheCap) {
  using std::chrono::milliseconds;
  for (int i = 0; i < 200; ++i) {
    const Duration d0 = backoffDelay(0, milliseconds(100), milliseconds(1000));
    EXPECT_GE(d0, milliseconds(50));
    EXPECT_LE(d0, milliseconds(100));
    const Duration d2 = backoffDelay(2, milliseconds(100), milliseconds(1000));
    EXPECT_GE(d2, milliseconds(200));
    EXPECT_LE(d2, milliseconds(400));
    const Duration d30 = backoffDelay(30, milliseconds(100), milliseconds(1000));
    EXPECT_GE(d30, milliseconds(500));
    EXPECT_LE(d30, milliseconds(1000));
  }
  EXPECT_LE(backoffDelay(3, Duration(0), Duration(0)), milliseconds(1));
}

}  // namespace
}  // namespace kasm::aws::detail
