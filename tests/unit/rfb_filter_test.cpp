// The VNC bridge's RFB client-message filter (src/net/rfb_filter.hpp) on its own: every message type
// measured and classified, streams cut at every byte boundary, an access change in the middle of a
// message, unknown types and oversized clipboard texts; and the VNC Authentication response
// against known answers (computed with `openssl enc -des-ecb` on the bit-reversed key).

#include "net/rfb_filter.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "auth/vnc_auth.hpp"

namespace kasm::net::detail {
namespace {

std::string u16(unsigned v) {
  return {char(v >> 8), char(v & 0xFF)};
}
std::string u32(std::uint32_t v) {
  return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

struct Msg {
  std::string name;
  std::string bytes;
  bool input;
};

std::string setPixelFormat() {
  return std::string("\x00\x00\x00\x00", 4) + std::string("\x20\x18\x00\x01\x00\xff\x00\xff\x00\xff\x10\x08\x00", 13) +
         std::string(3, '\0');
}
std::string setEncodings(unsigned n) {
  std::string m = std::string("\x02\x00", 2) + u16(n);
  for (unsigned i = 0; i < n; ++i) m += u32(static_cast<std::uint32_t>(-223 - static_cast<int>(i)));
  return m;
}
std::string updateRequest() {
  return std::string("\x03\x01", 2) + u16(0) + u16(0) + u16(640) + u16(480);
}
std::string keyEvent() {
  return std::string("\x04\x01\x00\x00", 4) + u32(0x61);
}
std::string pointerEvent() {
  return std::string("\x05\x01", 2) + u16(10) + u16(20);
}
std::string cutText(const std::string& text) {
  return std::string("\x06\x00\x00\x00", 4) + u32(static_cast<std::uint32_t>(text.size())) + text;
}
// The extended clipboard form: the length is negated, the payload is flags and (here) zlib bytes.
std::string extendedCutText(const std::string& payload) {
  return std::string("\x06\x00\x00\x00", 4) +
         u32(static_cast<std::uint32_t>(-static_cast<std::int32_t>(payload.size()))) + payload;
}
std::string continuousUpdates() {
  return std::string("\x96\x01", 2) + u16(0) + u16(0) + u16(640) + u16(480);
}
std::string fence(const std::string& payload) {
  return std::string("\xf8\x00\x00\x00", 4) + u32(0x80000003) + char(payload.size()) + payload;
}
std::string xvp() {
  return std::string("\xfa\x00\x01\x04", 4);  // Version 1, reboot.
}
std::string setDesktopSize(unsigned screens) {
  std::string m = std::string("\xfb\x00", 2) + u16(1024) + u16(768) + char(screens) + '\0';
  for (unsigned i = 0; i < screens; ++i) m += u32(i) + u16(0) + u16(0) + u16(1024) + u16(768) + u32(0);
  return m;
}
std::string qemuKeyEvent() {
  return std::string("\xff\x00", 2) + u16(1) + u32(0x61) + u32(0x1e);
}

std::vector<Msg> everyMessage() {
  return {
      {"SetPixelFormat", setPixelFormat(), false},
      {"SetEncodings", setEncodings(7), false},
      {"SetEncodings0", setEncodings(0), false},
      {"FramebufferUpdateRequest", updateRequest(), false},
      {"KeyEvent", keyEvent(), true},
      {"PointerEvent", pointerEvent(), true},
      {"ClientCutText", cutText("hello"), true},
      {"ClientCutTextEmpty", cutText(""), true},
      {"ExtendedClipboard", extendedCutText(std::string("\x10\x00\x00\x01", 4) + "zlibdata"), true},
      {"EnableContinuousUpdates", continuousUpdates(), false},
      {"ClientFence", fence("abc"), false},
      {"ClientFenceEmpty", fence(""), false},
      {"Xvp", xvp(), true},
      {"SetDesktopSize", setDesktopSize(2), true},
      {"SetDesktopSize0", setDesktopSize(0), true},
      {"QemuExtendedKeyEvent", qemuKeyEvent(), true},
  };
}

std::vector<unsigned char> bytesOf(const std::string& s) {
  return {s.begin(), s.end()};
}

// Feeds `stream` in reads of the given sizes; returns what was forwarded.
std::string feed(RfbClientFilter& f, const std::string& stream, const std::vector<std::size_t>& cuts, bool view_only,
                 std::vector<RfbClientMessage>* seen, std::uint32_t* dropped = nullptr) {
  std::string out;
  std::size_t at = 0;
  auto step = [&](std::size_t n) {
    auto chunk = bytesOf(stream.substr(at, n));
    at += n;
    auto r = f.filter(chunk, view_only, seen);
    EXPECT_EQ(r.error, RfbFilterError::kNone);
    if (dropped) *dropped += r.dropped;
    out.append(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(r.kept));
  };
  for (auto c : cuts) step(c - at);
  step(stream.size() - at);
  return out;
}

TEST(RfbClientFilter, MeasuresAndClassifiesEveryMessageType) {
  for (const auto& m : everyMessage()) {
    for (bool view_only : {false, true}) {
      RfbClientFilter f;
      std::vector<RfbClientMessage> seen;
      auto data = bytesOf(m.bytes);
      auto r = f.filter(data, view_only, &seen);
      EXPECT_EQ(r.error, RfbFilterError::kNone) << m.name;
      ASSERT_EQ(seen.size(), 1u) << m.name;
      EXPECT_EQ(seen[0].type, static_cast<std::uint8_t>(m.bytes[0])) << m.name;
      EXPECT_EQ(seen[0].length, m.bytes.size()) << m.name;
      EXPECT_EQ(isRfbInput(seen[0].type), m.input) << m.name;
      const bool forwarded = !(view_only && m.input);
      EXPECT_EQ(seen[0].forwarded, forwarded) << m.name;
      EXPECT_EQ(r.kept, forwarded ? m.bytes.size() : 0u) << m.name;
      EXPECT_EQ(r.dropped, forwarded ? 0u : 1u) << m.name;
      EXPECT_TRUE(f.atBoundary()) << m.name;
    }
  }
}

TEST(RfbClientFilter, KeepsMessagesWholeAcrossReadsCutAtEveryByte) {
  std::string stream, harmless_only;
  std::size_t count = 0, inputs = 0;
  for (const auto& m : everyMessage()) {
    stream += m.bytes;
    if (!m.input) harmless_only += m.bytes;
    ++count;
    inputs += m.input ? 1 : 0;
  }
  for (bool view_only : {false, true}) {
    const std::string& expected = view_only ? harmless_only : stream;
    // Several messages in one read.
    {
      RfbClientFilter f;
      std::vector<RfbClientMessage> seen;
      std::uint32_t dropped = 0;
      EXPECT_EQ(feed(f, stream, {}, view_only, &seen, &dropped), expected);
      EXPECT_EQ(seen.size(), count);
      EXPECT_EQ(dropped, view_only ? inputs : 0u);
    }
    // Two reads, cut at every byte.
    for (std::size_t cut = 1; cut < stream.size(); ++cut) {
      RfbClientFilter f;
      std::vector<RfbClientMessage> seen;
      EXPECT_EQ(feed(f, stream, {cut}, view_only, &seen), expected) << "cut at " << cut;
      EXPECT_EQ(seen.size(), count) << "cut at " << cut;
    }
    // One byte per read.
    {
      RfbClientFilter f;
      std::vector<RfbClientMessage> seen;
      std::vector<std::size_t> cuts;
      for (std::size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
      std::uint32_t dropped = 0;
      EXPECT_EQ(feed(f, stream, cuts, view_only, &seen, &dropped), expected);
      EXPECT_EQ(seen.size(), count);
      EXPECT_EQ(dropped, view_only ? inputs : 0u);
    }
  }
}

TEST(RfbClientFilter, AnAccessChangeTakesEffectAtTheNextMessage) {
  RfbClientFilter f;
  const std::string key = keyEvent();
  auto first = bytesOf(key.substr(0, 3));
  EXPECT_EQ(f.filter(first, /*view_only=*/false).kept, 3u);
  // The rest of that key event keeps its fate; the next one is dropped.
  auto rest = bytesOf(key.substr(3) + keyEvent() + updateRequest());
  auto r = f.filter(rest, /*view_only=*/true);
  EXPECT_EQ(r.kept, key.size() - 3 + updateRequest().size());
  EXPECT_EQ(r.dropped, 1u);
  EXPECT_EQ(std::string(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(r.kept)),
            key.substr(3) + updateRequest());
  // And back: a message begun while view-only stays dropped to its end.
  auto half = bytesOf(pointerEvent().substr(0, 2));
  EXPECT_EQ(f.filter(half, true).kept, 0u);
  auto tail = bytesOf(pointerEvent().substr(2) + pointerEvent());
  r = f.filter(tail, false);
  EXPECT_EQ(r.kept, pointerEvent().size());
}

TEST(RfbClientFilter, AnUnknownTypeFailsForGood) {
  for (const std::string& bad : {std::string("\x07", 1), std::string("\x01", 1), std::string("\xfc", 1),
                                 std::string("\xff\x09", 2), std::string("\xff\x01\x00\x07", 4)}) {
    RfbClientFilter f;
    auto data = bytesOf(updateRequest() + bad + keyEvent());
    auto r = f.filter(data, false);
    EXPECT_EQ(r.error, RfbFilterError::kUnknownType);
    EXPECT_EQ(f.error(), RfbFilterError::kUnknownType);
    auto more = bytesOf(keyEvent());
    r = f.filter(more, false);
    EXPECT_EQ(r.error, RfbFilterError::kUnknownType);
    EXPECT_EQ(r.kept, 0u) << "nothing passes after an error";
  }
  EXPECT_FALSE(rfbFilterErrorText(RfbFilterError::kUnknownType).empty());
}

TEST(RfbClientFilter, QemuAudioMessagesAreMeasured) {
  RfbClientFilter f;
  std::vector<RfbClientMessage> seen;
  const std::string enable("\xff\x01\x00\x00", 4),
      format = std::string("\xff\x01\x00\x02", 4) + "\x03\x02" + u32(44100);
  auto data = bytesOf(enable + format + keyEvent());
  auto r = f.filter(data, false, &seen);
  EXPECT_EQ(r.error, RfbFilterError::kNone);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].length, 4u);
  EXPECT_EQ(seen[1].length, 10u);
}

TEST(RfbClientFilter, RefusesClipboardTextsBeyondTheLimit) {
  {
    RfbClientFilter f;  // At the limit: accepted, waiting for the text.
    auto data = bytesOf(std::string("\x06\x00\x00\x00", 4) + u32(kMaxRfbCutText));
    EXPECT_EQ(f.filter(data, false).error, RfbFilterError::kNone);
    EXPECT_FALSE(f.atBoundary());
  }
  for (std::uint32_t len :
       {kMaxRfbCutText + 1, 0x7fffffffu, static_cast<std::uint32_t>(-(kMaxRfbCutText + 1)), 0x80000000u}) {
    RfbClientFilter f;
    auto data = bytesOf(std::string("\x06\x00\x00\x00", 4) + u32(len));
    EXPECT_EQ(f.filter(data, true).error, RfbFilterError::kMessageTooLong) << len;
  }
}

TEST(RfbClientFilter, ExtendedClipboardLengthIsTheMagnitude) {
  RfbClientFilter f;
  std::vector<RfbClientMessage> seen;
  const std::string payload(300, 'z');
  auto data = bytesOf(extendedCutText(payload) + keyEvent());
  auto r = f.filter(data, true, &seen);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].length, 8 + payload.size());
  EXPECT_EQ(seen[1].type, 4);
  EXPECT_EQ(r.dropped, 2u);
  EXPECT_EQ(r.kept, 0u);
}

TEST(VncAuthResponse, MatchesKnownAnswers) {
  const unsigned char challenge[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  auto hex = [](const std::array<unsigned char, 16>& a) {
    static const char* d = "0123456789abcdef";
    std::string s;
    for (auto c : a) {
      s += d[c >> 4];
      s += d[c & 15];
    }
    return s;
  };
  EXPECT_EQ(hex(auth::detail::vncAuthResponse("secret12", challenge)), "adcd997f8e16fee575e973f93c2b62b4");
  EXPECT_EQ(hex(auth::detail::vncAuthResponse("secret12 and more", challenge)), "adcd997f8e16fee575e973f93c2b62b4")
      << "only the first 8 bytes count";
  EXPECT_EQ(hex(auth::detail::vncAuthResponse("pw", challenge)), "858600d9af143c9e6541d3dd92a835d0")
      << "padded with zeros";
}

}  // namespace
}  // namespace kasm::net::detail
