// Signature Version 4 against AWS's published test suite (the "aws-sig-v4-test-suite" vectors: example
// credentials AKIDEXAMPLE, region us-east-1, service "service", 2015-08-30 12:36:00 UTC).

#include "backends/aws/sigv4.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kasm::aws::detail {
namespace {

const AwsCredentials kSuiteCredentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const SigningScope kSuiteScope{"20150830T123600Z", "us-east-1", "service"};

SignableRequest suiteRequest(std::string method, std::string path = "/") {
  SignableRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  return r;
}

std::string suiteAuthorization(const std::string& signed_headers, const std::string& signature) {
  return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=" +
         signed_headers + ", Signature=" + signature;
}

TEST(AwsSigV4Suite, GetVanillaEveryStep) {
  const SignableRequest r = suiteRequest("GET");
  const std::string creq = canonicalRequest(r);
  EXPECT_EQ(creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const std::string sts = stringToSign(kSuiteScope, creq);
  EXPECT_EQ(sts,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(signature(kSuiteCredentials.secret_access_key, kSuiteScope, sts),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, r),
            suiteAuthorization("host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
}

TEST(AwsSigV4Suite, GetVanillaQueryOrderKeyCase) {
  SignableRequest r = suiteRequest("GET");
  r.query = {{"Param2", "value2"}, {"Param1", "value1"}};
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, r),
            suiteAuthorization("host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"));
}

TEST(AwsSigV4Suite, GetVanillaQueryUnreserved) {
  SignableRequest r = suiteRequest("GET");
  const std::string unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  r.query = {{unreserved, unreserved}};
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, r),
            suiteAuthorization("host;x-amz-date", "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"));
}

TEST(AwsSigV4Suite, GetVanillaUtf8Query) {
  SignableRequest r = suiteRequest("GET");
  r.query = {{"\xE1\x88\xB4", "bar"}};
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, r),
            suiteAuthorization("host;x-amz-date", "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"));
}

TEST(AwsSigV4Suite, GetUnreservedAndUtf8Paths) {
  EXPECT_EQ(
      authorizationHeader(kSuiteCredentials, kSuiteScope,
                          suiteRequest("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")),
      suiteAuthorization("host;x-amz-date", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"));
  const SignableRequest utf8 = suiteRequest("GET", "/\xE1\x88\xB4");
  EXPECT_NE(canonicalRequest(utf8).find("\n/%E1%88%B4\n"), std::string::npos);
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, utf8),
            suiteAuthorization("host;x-amz-date", "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"));
}

TEST(AwsSigV4Suite, GetHeaderValueTrim) {
  SignableRequest r = suiteRequest("GET");
  r.headers.emplace_back("My-Header1", " value1");
  r.headers.emplace_back("My-Header2", " \"a   b   c\"");
  EXPECT_NE(canonicalRequest(r).find("my-header1:value1\nmy-header2:\"a b c\"\n"), std::string::npos);
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, r),
            suiteAuthorization("host;my-header1;my-header2;x-amz-date",
                               "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"));
}

TEST(AwsSigV4Suite, GetHeaderKeyDuplicateKeepsValueOrder) {
  SignableRequest r = suiteRequest("GET");
  r.headers.emplace_back("My-Header1", "value2");
  r.headers.emplace_back("My-Header1", "value2");
  r.headers.emplace_back("My-Header1", "value1");
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, r),
            suiteAuthorization("host;my-header1;x-amz-date",
                               "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"));
}

TEST(AwsSigV4Suite, GetHeaderValueOrder) {
  SignableRequest r = suiteRequest("GET");
  for (const char* v : {"value4", "value1", "value3", "value2"}) r.headers.emplace_back("My-Header1", v);
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, r),
            suiteAuthorization("host;my-header1;x-amz-date",
                               "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"));
}

TEST(AwsSigV4Suite, PostVanillaAndHeaderCases) {
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, suiteRequest("POST")),
            suiteAuthorization("host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"));
  SignableRequest key_case = suiteRequest("POST");
  key_case.headers = {{"HOST", "example.amazonaws.com"}, {"X-AMZ-DATE", "20150830T123600Z"}};
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, key_case),
            suiteAuthorization("host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"));
  SignableRequest value_case = suiteRequest("POST");
  value_case.headers.emplace_back("My-Header1", "VALUE1");
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, value_case),
            suiteAuthorization("host;my-header1;x-amz-date",
                               "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"));
  SignableRequest key_sort = suiteRequest("POST");
  key_sort.headers.emplace_back("My-Header1", "value1");
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, key_sort),
            suiteAuthorization("host;my-header1;x-amz-date",
                               "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"));
}

TEST(AwsSigV4Suite, PostVanillaQueryAndNonUnreserved) {
  SignableRequest r = suiteRequest("POST");
  r.query = {{"Param1", "value1"}};
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, r),
            suiteAuthorization("host;x-amz-date", "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"));
  SignableRequest odd = suiteRequest("POST");
  odd.query = {{"@#$%^", ""}, {"+", "/,?><`\";:\\|][{}"}};
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, odd),
            suiteAuthorization("host;x-amz-date", "66c82657c86e26fb25238d0e69f011edc4c6df5ae71119d7cb98ed9b87393c1e"));
  SignableRequest space = suiteRequest("POST");
  space.query = {{"p", ""}};
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, space),
            suiteAuthorization("host;x-amz-date", "e71688addb58a26418614085fb730ba3faa623b461c17f48f2fbdb9361b94a9b"));
}

TEST(AwsSigV4Suite, PostStsHeaderBefore) {
  SignableRequest r = suiteRequest("POST");
  r.headers.emplace_back(
      "X-Amz-Security-Token",
      "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTf"
      "lfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HF"
      "vlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr"
      "4rvx3iSIlTJabIQwj2ICCR/oLxBA==");
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, r),
            suiteAuthorization("host;x-amz-date;x-amz-security-token",
                               "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"));
}

TEST(AwsSigV4Suite, PostXWwwFormUrlencoded) {
  SignableRequest r = suiteRequest("POST");
  r.headers.insert(r.headers.begin(), {"Content-Type", "application/x-www-form-urlencoded"});
  r.payload = "Param1=value1";
  EXPECT_EQ(canonicalRequest(r),
            "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, r),
            suiteAuthorization("content-type;host;x-amz-date",
                               "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"));
  r.headers.front().second = "application/x-www-form-urlencoded; charset=utf8";
  EXPECT_EQ(authorizationHeader(kSuiteCredentials, kSuiteScope, r),
            suiteAuthorization("content-type;host;x-amz-date",
                               "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"));
}

TEST(AwsSigV4, EncodingAndDates) {
  EXPECT_EQ(uriEncode("a b/c~*"), "a%20b%2Fc~%2A");
  EXPECT_EQ(uriEncode("a b/c", /*encode_slash=*/false), "a%20b/c");
  EXPECT_EQ(amzDate(fromUnixMillis(1440938160000)), "20150830T123600Z");
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace kasm::aws::detail
