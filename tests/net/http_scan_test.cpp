// The proxy fast path's head scanner: what it takes as plain, and what it leaves to Beast.

#include "net/http_scan.hpp"

#include <gtest/gtest.h>

#include <string>

namespace kasm::net::detail {
namespace {

TEST(HttpScan, ReadsAPlainRequestHead) {
  MessageHead head;
  const std::string bytes = "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nCookie:  a=1 \r\n\r\nrest";
  ASSERT_EQ(scanRequestHead(bytes, head), ScanResult::kSimple);
  EXPECT_EQ(head.method, "GET");
  EXPECT_EQ(head.target, "/a?b=1");
  EXPECT_EQ(head.version, 11);
  ASSERT_EQ(head.field_count, 3u);
  EXPECT_EQ(head.fields[1].value, "");
  EXPECT_EQ(head.find("cookie")->value, "a=1");
  EXPECT_EQ(head.head_bytes, bytes.size() - 4);
  EXPECT_EQ(scanRequestHead("GET / HTTP/1.1\r\nHost: x\r\n", head), ScanResult::kIncomplete);
}

TEST(HttpScan, LeavesAnythingUnusualToBeast) {
  MessageHead head;
  for (const char* bytes : {
           "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  // obs-fold
           "GET / HTTP/1.1\nHost: x\r\n\r\n",               // bare LF
           "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",         // space in a name
           "GET / HTTP/1.1\r\nX: a\x01"
           "b\r\n\r\n",                   // control character
           "GET  / HTTP/1.1\r\n\r\n",     // double space
           "GET / HTTP/2.0\r\n\r\n",      // other version
           "GET /a b HTTP/1.1\r\n\r\n",   // space in the target
           "\r\nGET / HTTP/1.1\r\n\r\n",  // leading empty line
           ": x\r\n\r\n",
           // Fields Beast interprets and refuses when malformed (found by the http_scan fuzz target).
           "GET / HTTP/1.1\r\nConnection: Upgrn: 36\r\n\r\n",
           "GET / HTTP/1.1\r\nConnection: keep alive\r\n\r\n",
           "GET / HTTP/1.1\r\nTransfer-Encoding: chunked;\r\n\r\n",
           "GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
       }) {
    EXPECT_EQ(scanRequestHead(bytes, head), ScanResult::kComplex) << bytes;
  }
  EXPECT_EQ(scanRequestHead("GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n", head), ScanResult::kSimple);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 65; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(scanRequestHead(many + "\r\n", head), ScanResult::kComplex);
}

TEST(HttpScan, ReadsResponseHeads) {
  MessageHead head;
  ASSERT_EQ(scanResponseHead("HTTP/1.0 204 No Content\r\nX: y\r\n\r\n", head), ScanResult::kSimple);
  EXPECT_EQ(head.status, 204);
  EXPECT_EQ(head.reason, "No Content");
  EXPECT_EQ(head.version, 10);
  EXPECT_EQ(scanResponseHead("HTTP/1.1 200 \r\n\r\n", head), ScanResult::kSimple);
  EXPECT_EQ(scanResponseHead("HTTP/1.1 200\r\n\r\n", head), ScanResult::kComplex);
  EXPECT_EQ(scanResponseHead("HTTP/1.1 2x0 OK\r\n\r\n", head), ScanResult::kComplex);
  EXPECT_EQ(scanResponseHead("HTTP/1.1 099 Low\r\n\r\n", head), ScanResult::kComplex);
}

TEST(HttpScan, ParsesLengthsAndTokenLists) {
  std::size_t n = 0;
  EXPECT_TRUE(parseLength("0", n));
  EXPECT_TRUE(parseLength("1048576", n));
  EXPECT_EQ(n, 1048576u);
  for (const char* bad : {"", "-1", "+1", "1 2", "0x10", "1234567890123456789"})
    EXPECT_FALSE(parseLength(bad, n)) << bad;
  EXPECT_TRUE(listHasToken("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(listHasToken(" close ", "close"));
  EXPECT_FALSE(listHasToken("closed", "close"));
}

}  // namespace
}  // namespace kasm::net::detail
