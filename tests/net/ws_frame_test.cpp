// The VNC bridge's WebSocket framing (src/net/ws_frame.hpp) on its own: the three length forms,
// fragmented messages with control frames between their fragments, input cut at every byte
// boundary and fed a byte at a time, unmasking in place, every protocol error the reader refuses,
// the server's frame headers, and the handshake's accept key.

#include "net/ws_frame.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kasm::net::detail {
namespace {

using Bytes = std::vector<unsigned char>;

struct FrameSpec {
  std::uint8_t opcode = 0x2;
  std::string payload;
  bool fin = true;
  bool masked = true;
  std::uint8_t rsv = 0;          // Bits 0x70 of the first byte.
  int length_form = 0;           // 0: shortest; 7, 16 or 64: that form, whatever the length.
  std::uint64_t length = ~0ull;  // Declared length when not the payload's.
};

// A client frame as a browser would send it (or, with the spec's knobs, as it must not).
Bytes frame(const FrameSpec& f) {
  Bytes out;
  out.push_back(static_cast<unsigned char>((f.fin ? 0x80 : 0) | f.rsv | f.opcode));
  const std::uint64_t len = f.length == ~0ull ? f.payload.size() : f.length;
  const int form = f.length_form != 0 ? f.length_form : len < 126 ? 7 : len <= 0xFFFF ? 16 : 64;
  const unsigned char mask_bit = f.masked ? 0x80 : 0;
  if (form == 7) {
    out.push_back(static_cast<unsigned char>(mask_bit | len));
  } else if (form == 16) {
    out.push_back(mask_bit | 126);
    out.push_back(static_cast<unsigned char>(len >> 8));
    out.push_back(static_cast<unsigned char>(len));
  } else {
    out.push_back(mask_bit | 127);
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<unsigned char>(len >> (8 * i)));
  }
  const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
  if (f.masked) out.insert(out.end(), key, key + 4);
  for (std::size_t i = 0; i < f.payload.size(); ++i) {
    out.push_back(static_cast<unsigned char>(f.payload[i]) ^ (f.masked ? key[i % 4] : 0));
  }
  return out;
}

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 + 3);
  return s;
}

std::string u16(unsigned v) {
  return {char(v >> 8), char(v & 0xFF)};
}

// What a reader made of some input: the payload joined, and its events in order ("ping:abc",
// "pong:", "close:1000", "error:<text>").
struct Parsed {
  std::string payload;
  std::vector<std::string> events;
};

// Feeds `input` in pieces cut at `cuts` (ascending offsets), each piece as a read of its own, the
// payload written to a separate buffer.
Parsed parseInPieces(const Bytes& input, const std::vector<std::size_t>& cuts) {
  WsFrameReader reader;
  Parsed out;
  std::size_t begin = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(input.size());
  for (std::size_t end : ends) {
    Bytes piece(input.begin() + static_cast<std::ptrdiff_t>(begin), input.begin() + static_cast<std::ptrdiff_t>(end));
    std::size_t at = 0;
    do {
      Bytes sink(piece.size() - at + 1);
      const auto r = reader.read({piece.data() + at, piece.size() - at}, sink.data());
      out.payload.append(reinterpret_cast<const char*>(sink.data()), r.produced);
      at += r.consumed;
      const auto control = reader.controlPayload();
      const std::string cp(reinterpret_cast<const char*>(control.data()), control.size());
      switch (r.event) {
        case WsEvent::kPing: out.events.push_back("ping:" + cp); break;
        case WsEvent::kPong: out.events.push_back("pong:" + cp); break;
        case WsEvent::kClose: out.events.push_back("close:" + std::to_string(reader.closeCode())); return out;
        case WsEvent::kError:
          out.events.push_back("error:" + std::string(wsFrameErrorText(reader.error())));
          return out;
        case WsEvent::kNone: break;
      }
    } while (at < piece.size());
    begin = end;
  }
  return out;
}

Parsed parseWhole(const Bytes& input) {
  return parseInPieces(input, {});
}

WsFrameError errorOf(const Bytes& input) {
  WsFrameReader reader;
  Bytes sink(input.size() + 1);
  std::size_t at = 0;
  while (at < input.size()) {
    const auto r = reader.read({input.data() + at, input.size() - at}, sink.data());
    at += r.consumed;
    if (r.event == WsEvent::kError || r.event == WsEvent::kClose) break;
  }
  return reader.error();
}

TEST(WsFrameReader, UnmasksPayloadsOfEveryLengthForm) {
  for (std::size_t n : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 70000u}) {
    const auto p = pattern(n);
    const auto parsed = parseWhole(frame({.opcode = 0x2, .payload = p}));
    EXPECT_EQ(parsed.payload, p) << n;
    EXPECT_TRUE(parsed.events.empty()) << n;
  }
  // Text frames are bytes to the bridge as well.
  EXPECT_EQ(parseWhole(frame({.opcode = 0x1, .payload = "RFB 003.008\n"})).payload, "RFB 003.008\n");
}

// A stream as a viewer may send it: a whole message, a message in three fragments with a ping and
// a pong between them, an empty frame, then a close.
Bytes sampleStream() {
  return frame({.opcode = 0x2, .payload = "RFB 003.008\n"}) + frame({.opcode = 0x2, .payload = "ab", .fin = false}) +
         frame({.opcode = 0x9, .payload = "are you there"}) +
         frame({.opcode = 0x0, .payload = pattern(300), .fin = false}) + frame({.opcode = 0xA, .payload = ""}) +
         frame({.opcode = 0x0, .payload = "yz"}) + frame({.opcode = 0x2, .payload = ""}) +
         frame({.opcode = 0x8, .payload = u16(1001) + "bye"});
}

const Parsed kSampleExpected{"RFB 003.008\nab" + pattern(300) + "yz", {"ping:are you there", "pong:", "close:1001"}};

TEST(WsFrameReader, JoinsFragmentsAndReportsControlFramesBetweenThem) {
  const auto parsed = parseWhole(sampleStream());
  EXPECT_EQ(parsed.payload, kSampleExpected.payload);
  EXPECT_EQ(parsed.events, kSampleExpected.events);
}

TEST(WsFrameReader, InputCutAtEveryByteBoundaryParsesTheSame) {
  const auto input = sampleStream();
  for (std::size_t cut = 1; cut < input.size(); ++cut) {
    const auto parsed = parseInPieces(input, {cut});
    ASSERT_EQ(parsed.payload, kSampleExpected.payload) << "cut at " << cut;
    ASSERT_EQ(parsed.events, kSampleExpected.events) << "cut at " << cut;
  }
  // And twice, at every pair of boundaries close to each other (headers cut in three).
  for (std::size_t a = 1; a + 1 < input.size(); ++a) {
    for (std::size_t b = a + 1; b < input.size() && b < a + 12; ++b) {
      const auto parsed = parseInPieces(input, {a, b});
      ASSERT_EQ(parsed.payload, kSampleExpected.payload) << "cuts at " << a << ", " << b;
      ASSERT_EQ(parsed.events, kSampleExpected.events) << "cuts at " << a << ", " << b;
    }
  }
}

TEST(WsFrameReader, OneByteAtATime) {
  const auto input = sampleStream();
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
  const auto parsed = parseInPieces(input, cuts);
  EXPECT_EQ(parsed.payload, kSampleExpected.payload);
  EXPECT_EQ(parsed.events, kSampleExpected.events);
}

// As the bridge uses it: the payload written over the frames in the same buffer, reads of any size.
TEST(WsFrameReader, UnmasksInPlaceOverItsOwnInput) {
  const auto p = pattern(5000);
  const Bytes stream = frame({.opcode = 0x2, .payload = p.substr(0, 10)}) +
                       frame({.opcode = 0x2, .payload = p.substr(10, 2000), .fin = false}) +
                       frame({.opcode = 0x0, .payload = p.substr(2010)});
  for (std::size_t read_size : {1u, 3u, 7u, 64u, 1000u, 100000u}) {
    WsFrameReader reader;
    std::string got;
    for (std::size_t begin = 0; begin < stream.size(); begin += read_size) {
      Bytes buf(stream.begin() + static_cast<std::ptrdiff_t>(begin),
                stream.begin() + static_cast<std::ptrdiff_t>(std::min(stream.size(), begin + read_size)));
      const auto r = reader.read(buf, buf.data());
      ASSERT_EQ(r.consumed, buf.size());
      ASSERT_EQ(r.event, WsEvent::kNone);
      got.append(reinterpret_cast<const char*>(buf.data()), r.produced);
    }
    EXPECT_EQ(got, p) << "reads of " << read_size;
    EXPECT_TRUE(reader.atMessageBoundary());
  }
}

TEST(WsFrameReader, ACloseFrameGivesItsCodeAndEndsTheStream) {
  EXPECT_EQ(parseWhole(frame({.opcode = 0x8, .payload = ""})).events, std::vector<std::string>{"close:1005"})
      << "no code: 1005, which is never sent";
  EXPECT_EQ(parseWhole(frame({.opcode = 0x8, .payload = u16(1000)})).events, std::vector<std::string>{"close:1000"});
  EXPECT_EQ(parseWhole(frame({.opcode = 0x8, .payload = u16(4999) + "reason"})).events,
            std::vector<std::string>{"close:4999"});
  // Nothing after the close frame is read.
  WsFrameReader reader;
  const Bytes input = frame({.opcode = 0x8, .payload = u16(1000)}) + frame({.opcode = 0x2, .payload = "late"});
  Bytes sink(input.size());
  const auto r = reader.read(input, sink.data());
  EXPECT_EQ(r.event, WsEvent::kClose);
  EXPECT_EQ(r.consumed, 8u);
  const auto again = reader.read({input.data() + r.consumed, input.size() - r.consumed}, sink.data());
  EXPECT_EQ(again.event, WsEvent::kClose);
  EXPECT_EQ(again.consumed, 0u);
  EXPECT_EQ(again.produced, 0u);
}

TEST(WsFrameReader, ValidCloseCodes) {
  for (unsigned code : {1000u, 1001u, 1002u, 1003u, 1007u, 1008u, 1009u, 1010u, 1011u, 1012u, 1013u, 3000u, 4999u}) {
    EXPECT_TRUE(isValidWsCloseCode(static_cast<std::uint16_t>(code))) << code;
  }
  for (unsigned code : {0u, 999u, 1004u, 1005u, 1006u, 1014u, 1015u, 1016u, 2999u, 5000u, 65535u}) {
    EXPECT_FALSE(isValidWsCloseCode(static_cast<std::uint16_t>(code))) << code;
  }
}

// Every protocol error, each found as soon as the bytes that show it have arrived.
TEST(WsFrameReader, RefusesEveryProtocolError) {
  struct Case {
    const char* name;
    Bytes input;
    WsFrameError error;
  };
  const std::vector<Case> cases = {
      {"RSV1", frame({.payload = "x", .rsv = 0x40}), WsFrameError::kReservedBits},
      {"RSV2", frame({.payload = "x", .rsv = 0x20}), WsFrameError::kReservedBits},
      {"RSV3 on a control frame", frame({.opcode = 0x9, .payload = "", .rsv = 0x10}), WsFrameError::kReservedBits},
      {"opcode 3", frame({.opcode = 0x3, .payload = "x"}), WsFrameError::kReservedOpcode},
      {"opcode 0xB", frame({.opcode = 0xB, .payload = ""}), WsFrameError::kReservedOpcode},
      {"unmasked", frame({.payload = "x", .masked = false}), WsFrameError::kUnmasked},
      {"ping of 126 bytes", frame({.opcode = 0x9, .payload = pattern(126)}), WsFrameError::kControlTooLong},
      {"fragmented ping", frame({.opcode = 0x9, .payload = "x", .fin = false}), WsFrameError::kControlFragmented},
      {"continuation first", frame({.opcode = 0x0, .payload = "x"}), WsFrameError::kUnexpectedContinuation},
      {"new message inside a fragmented one",
       frame({.opcode = 0x2, .payload = "a", .fin = false}) + frame({.opcode = 0x2, .payload = "b"}),
       WsFrameError::kExpectedContinuation},
      {"16-bit length of 125", frame({.payload = pattern(125), .length_form = 16}), WsFrameError::kBadLength},
      {"64-bit length of 65535", frame({.payload = pattern(65535), .length_form = 64}), WsFrameError::kBadLength},
      {"64-bit length with its top bit set", frame({.payload = "", .length_form = 64, .length = 1ull << 63}),
       WsFrameError::kBadLength},
      {"frame beyond the limit", frame({.payload = "", .length = kWsMaxFrameBytes + 1}), WsFrameError::kFrameTooLong},
      {"close of one byte", frame({.opcode = 0x8, .payload = "x"}), WsFrameError::kBadClosePayload},
      {"close code 1005", frame({.opcode = 0x8, .payload = u16(1005)}), WsFrameError::kBadCloseCode},
      {"close code 999", frame({.opcode = 0x8, .payload = u16(999)}), WsFrameError::kBadCloseCode},
      {"close code 2000", frame({.opcode = 0x8, .payload = u16(2000)}), WsFrameError::kBadCloseCode},
      {"close code 5000", frame({.opcode = 0x8, .payload = u16(5000)}), WsFrameError::kBadCloseCode},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(errorOf(c.input), c.error) << c.name;
    // The same input a byte at a time fails the same way.
    const auto parsed = parseInPieces(c.input, [&] {
      std::vector<std::size_t> cuts;
      for (std::size_t i = 1; i < c.input.size(); ++i) cuts.push_back(i);
      return cuts;
    }());
    ASSERT_FALSE(parsed.events.empty()) << c.name;
    EXPECT_EQ(parsed.events.back(), "error:" + std::string(wsFrameErrorText(c.error))) << c.name;
  }
  // Errors in the first two bytes are found from those two alone; a failed reader stays failed.
  WsFrameReader reader;
  const Bytes two = {0xC2, 0x85};  // RSV1, binary, masked.
  unsigned char sink[4];
  EXPECT_EQ(reader.read(two, sink).event, WsEvent::kError);
  EXPECT_EQ(reader.error(), WsFrameError::kReservedBits);
  const auto later = frame({.payload = "fine"});
  const auto r = reader.read(later, sink);
  EXPECT_EQ(r.event, WsEvent::kError);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(wsCloseCodeFor(WsFrameError::kFrameTooLong), kWsCloseTooBig);
  EXPECT_EQ(wsCloseCodeFor(WsFrameError::kUnmasked), kWsCloseProtocolError);
}

TEST(WsFrameHeader, ServerFramesAreUnmaskedInTheShortestForm) {
  unsigned char h[kWsMaxServerHeader];
  EXPECT_EQ(writeWsFrameHeader(h, WsOpcode::kBinary, 0), 2u);
  EXPECT_EQ(Bytes(h, h + 2), (Bytes{0x82, 0x00}));
  EXPECT_EQ(writeWsFrameHeader(h, WsOpcode::kBinary, 125), 2u);
  EXPECT_EQ(Bytes(h, h + 2), (Bytes{0x82, 125}));
  EXPECT_EQ(writeWsFrameHeader(h, WsOpcode::kBinary, 126), 4u);
  EXPECT_EQ(Bytes(h, h + 4), (Bytes{0x82, 126, 0x00, 126}));
  EXPECT_EQ(writeWsFrameHeader(h, WsOpcode::kPong, 0xFFFF), 4u);
  EXPECT_EQ(Bytes(h, h + 4), (Bytes{0x8A, 126, 0xFF, 0xFF}));
  EXPECT_EQ(writeWsFrameHeader(h, WsOpcode::kBinary, 0x10000), 10u);
  EXPECT_EQ(Bytes(h, h + 10), (Bytes{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}));
  EXPECT_EQ(writeWsFrameHeader(h, WsOpcode::kClose, 2), 2u);
  EXPECT_EQ(h[0], 0x88);
  for (std::uint64_t n : {0ull, 125ull, 126ull, 65535ull, 65536ull, 1ull << 40}) {
    EXPECT_EQ(wsFrameHeaderSize(n), writeWsFrameHeader(h, WsOpcode::kBinary, n)) << n;
  }
}

TEST(WsFrameHeader, AcceptKeyOfTheRfcExample) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(wsAcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

}  // namespace
}  // namespace kasm::net::detail
