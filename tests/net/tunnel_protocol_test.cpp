// The reverse tunnel's wire format and its sealed open requests (kasm/tunnel/protocol.hpp).

#include <gtest/gtest.h>

#include "kasm/tunnel/protocol.hpp"

namespace kasm::tunnel {
namespace {

TimePoint at(std::int64_t seconds) {
  return TimePoint(std::chrono::seconds(seconds));
}

TEST(TunnelProtocol, FramesRoundTrip) {
  // A decoded frame views its message: the messages live as long as the frames.
  const std::string data_msg = encodeFrame(FrameType::kData, 7, "hello");
  auto data = decodeFrame(data_msg);
  ASSERT_TRUE(data.ok()) << data.error().toString();
  EXPECT_EQ(data->type, FrameType::kData);
  EXPECT_EQ(data->stream, 7u);
  EXPECT_EQ(data->payload, "hello");

  const std::string open_msg = encodeFrame(FrameType::kOpen, 0xfffffffe, "[::1]:5901");
  auto big = decodeFrame(open_msg);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->stream, 0xfffffffeu);
  EXPECT_EQ(big->payload, "[::1]:5901");

  const std::string window_msg = encodeWindow(3, 0x01020304);
  auto window = decodeFrame(window_msg);
  ASSERT_TRUE(window.ok());
  EXPECT_EQ(window->type, FrameType::kWindow);
  EXPECT_EQ(window->credit, 0x01020304u);

  const std::string close_msg = encodeFrame(FrameType::kClose, 9, "refused");
  auto close = decodeFrame(close_msg);
  ASSERT_TRUE(close.ok());
  EXPECT_EQ(close->payload, "refused");
  EXPECT_TRUE(decodeFrame(encodeFrame(FrameType::kOpened, 9)).ok());
  EXPECT_TRUE(decodeFrame(encodeFrame(FrameType::kData, 1, std::string(kMaxData, 'x'))).ok());
}

TEST(TunnelProtocol, RefusesMalformedFrames) {
  const std::vector<std::string> bad = {
      "",
      std::string("\x03\x00\x00\x00", 4),              // Short of a header.
      encodeFrame(static_cast<FrameType>(0), 1, "x"),  // Unknown types.
      encodeFrame(static_cast<FrameType>(6), 1, "x"),
      encodeFrame(FrameType::kData, 0, "x"),  // Stream 0.
      encodeFrame(FrameType::kData, 1, ""),   // Empty data.
      encodeFrame(FrameType::kData, 1, std::string(kMaxData + 1, 'x')),
      encodeFrame(FrameType::kWindow, 1, "abc"),    // Not 4 bytes.
      encodeWindow(1, 0),                           // Crediting nothing.
      encodeFrame(FrameType::kOpened, 1, "x"),      // Payload on opened.
      encodeFrame(FrameType::kOpen, 1, "no-port"),  // Malformed targets.
      encodeFrame(FrameType::kOpen, 1, "host:0"),
      encodeFrame(FrameType::kOpen, 1, "host:65536"),
      encodeFrame(FrameType::kOpen, 1, "a b:80"),
      encodeFrame(FrameType::kOpen, 1, "[zz]:80"),
      encodeFrame(FrameType::kClose, 1, std::string(kMaxReason + 1, 'r')),
  };
  for (const auto& m : bad) {
    auto f = decodeFrame(m);
    EXPECT_FALSE(f.ok()) << "accepted " << testing::PrintToString(m.substr(0, 16));
    if (!f.ok()) {
      EXPECT_EQ(f.error().code(), ErrorCode::kInvalidArgument);
    }
  }
}

TEST(TunnelProtocol, Targets) {
  for (auto t : {"127.0.0.1:8080", "desk-1.internal:443", "[::1]:5901"}) EXPECT_TRUE(isValidTarget(t)) << t;
  for (auto t :
       {"", ":80", "host:", "host:080", "host:-1", "host:8o", "ho/st:80", "[::1:80", "a:1:b", "[fe80::1%]:1"}) {
    EXPECT_FALSE(isValidTarget(t)) << t;
  }
}

TEST(TunnelProtocol, SealedOpenRequests) {
  const std::string key = deriveTunnelKey(std::string(32, 's'));
  EXPECT_GE(key.size(), 32u);
  EXPECT_NE(key, deriveTunnelKey(std::string(32, 't')));
  const AgentId agent("a1b2");
  std::string line = sealOpenRequest(key, agent, "10.0.0.5:32768", at(1000));
  ASSERT_EQ(line.back(), '\n');
  line.pop_back();

  auto ok = openSealedRequest(key, line, at(999));
  ASSERT_TRUE(ok.ok()) << ok.error().toString();
  EXPECT_EQ(ok->agent, agent);
  EXPECT_EQ(ok->target, "10.0.0.5:32768");
  EXPECT_TRUE(openSealedRequest(key, line, at(1000)).ok());

  auto expired = openSealedRequest(key, line, at(1001));
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code(), ErrorCode::kUnauthenticated);

  auto other_key = openSealedRequest(deriveTunnelKey(std::string(32, 'x')), line, at(999));
  ASSERT_FALSE(other_key.ok());
  EXPECT_EQ(other_key.error().code(), ErrorCode::kUnauthenticated);

  // Any field changed breaks the seal: another target, another agent, a later expiry.
  for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"10.0.0.5:32768", "10.0.0.5:22"}, {"a1b2", "a1b3"}, {" 1000 ", " 9000 "}}) {
    std::string forged = line;
    forged.replace(forged.find(from), from.size(), to);
    auto r = openSealedRequest(key, forged, at(999));
    ASSERT_FALSE(r.ok()) << forged;
    EXPECT_EQ(r.error().code(), ErrorCode::kUnauthenticated) << forged;
  }
  for (std::string malformed : {std::string(""), std::string("KASM-TUNNEL/1"), line + " extra",
                                "KASM-TUNNEL/2" + line.substr(13), line.substr(0, line.rfind(' '))}) {
    auto r = openSealedRequest(key, malformed, at(999));
    ASSERT_FALSE(r.ok()) << malformed;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << malformed;
  }
}

}  // namespace
}  // namespace kasm::tunnel
