// The terminal frames of the SSH gateway (src/backends/ssh/ssh_frames.hpp): exact bytes, a stream
// cut anywhere or run together, and every way a frame can be wrong.

#include "backends/ssh/ssh_frames.hpp"

#include <gtest/gtest.h>

#include <random>

namespace kasm::ssh {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

std::vector<Frame> readAll(FrameReader& reader, std::string_view data) {
  std::vector<Frame> frames;
  auto fed = reader.feed(data, frames);
  EXPECT_TRUE(fed.ok()) << fed.error().toString();
  return frames;
}

TEST(SshFrames, EncodesTheDocumentedBytes) {
  EXPECT_EQ(encodeFrame(FrameType::kInput, "ls\r"), bytes({0x01, 0, 0, 0, 3, 'l', 's', '\r'}));
  EXPECT_EQ(encodeResize({100, 40}), bytes({0x02, 0, 0, 0, 4, 0, 100, 0, 40}));
  EXPECT_EQ(encodeResize({300, 1}), bytes({0x02, 0, 0, 0, 4, 0x01, 0x2c, 0, 1}));
  EXPECT_EQ(encodeFrame(FrameType::kPing, ""), bytes({0x03, 0, 0, 0, 0}));
  EXPECT_EQ(encodeExit(3), bytes({0x85, 0, 0, 0, 4, 0, 0, 0, 3}));
  EXPECT_EQ(encodeExit(-1), bytes({0x85, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(encodeFrame(FrameType::kError, "no"), bytes({0x84, 0, 0, 0, 2, 'n', 'o'}));
}

TEST(SshFrames, DecodesFixedSizePayloads) {
  auto size = decodeResize(bytes({0x01, 0x2c, 0, 50}));
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, (TerminalSize{300, 50}));
  EXPECT_FALSE(decodeResize(bytes({0, 0, 0, 50})).ok());
  EXPECT_FALSE(decodeResize(bytes({0, 80, 0, 0})).ok());
  EXPECT_FALSE(decodeResize("abc").ok());
  auto status = decodeExit(bytes({0xff, 0xff, 0xff, 0xfe}));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(*status, -2);
}

TEST(SshFrames, ReadsFramesRunTogether) {
  std::string stream = encodeFrame(FrameType::kInput, "a") + encodeResize({90, 30}) +
                       encodeFrame(FrameType::kPing, "p1") + encodeFrame(FrameType::kInput, "");
  FrameReader reader;
  auto frames = readAll(reader, stream);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].type, FrameType::kInput);
  EXPECT_EQ(frames[0].payload, "a");
  EXPECT_EQ(frames[1].type, FrameType::kResize);
  EXPECT_EQ(frames[2].payload, "p1");
  EXPECT_EQ(frames[3].payload, "");
  EXPECT_TRUE(reader.atBoundary());
}

TEST(SshFrames, ReadsAFrameCutIntoSingleBytes) {
  const std::string payload = "echo hello\r";
  const std::string stream = encodeFrame(FrameType::kOutput, payload);
  FrameReader reader;
  std::vector<Frame> frames;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    ASSERT_TRUE(reader.feed(stream.substr(i, 1), frames).ok());
    if (i + 1 < stream.size()) {
      EXPECT_TRUE(frames.empty());
      EXPECT_FALSE(reader.atBoundary());
    }
  }
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, FrameType::kOutput);
  EXPECT_EQ(frames[0].payload, payload);
}

// Any cut of a random stream gives back the frames that were written, in order.
TEST(SshFrames, RandomCutsGiveBackTheSameFrames) {
  std::mt19937 rng(20240611);
  const FrameType types[] = {FrameType::kInput, FrameType::kOutput, FrameType::kReady, FrameType::kError};
  for (int round = 0; round < 50; ++round) {
    std::vector<Frame> written;
    std::string stream;
    const int count = 1 + static_cast<int>(rng() % 20);
    for (int i = 0; i < count; ++i) {
      Frame f;
      f.type = types[rng() % 4];
      f.payload.resize(rng() % (rng() % 8 == 0 ? kMaxFramePayload + 1 : 300));
      for (auto& c : f.payload) c = static_cast<char>(rng());
      appendFrame(stream, f.type, f.payload);
      written.push_back(std::move(f));
    }
    FrameReader reader;
    std::vector<Frame> read;
    std::size_t at = 0;
    while (at < stream.size()) {
      const std::size_t n = std::min<std::size_t>(stream.size() - at, 1 + rng() % 9000);
      ASSERT_TRUE(reader.feed(std::string_view(stream).substr(at, n), read).ok());
      at += n;
    }
    ASSERT_EQ(read.size(), written.size());
    for (std::size_t i = 0; i < read.size(); ++i) {
      EXPECT_EQ(read[i].type, written[i].type);
      EXPECT_EQ(read[i].payload, written[i].payload);
    }
    EXPECT_TRUE(reader.atBoundary());
  }
}

TEST(SshFrames, ChunksLongBytesIntoBoundedFrames) {
  const std::string data(150 * 1024, 'x');
  std::string stream;
  appendChunked(stream, FrameType::kInput, data);
  FrameReader reader;
  auto frames = readAll(reader, stream);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].payload.size(), kMaxFramePayload);
  EXPECT_EQ(frames[2].payload.size(), data.size() - 2 * kMaxFramePayload);
  std::string empty;
  appendChunked(empty, FrameType::kInput, "");
  EXPECT_TRUE(empty.empty());
}

TEST(SshFrames, RefusesAnOversizedLengthBeforeItsPayload) {
  FrameReader reader;
  std::vector<Frame> frames;
  // 64 KiB + 1: refused from the header alone, without waiting for the payload.
  auto fed = reader.feed(bytes({0x01, 0x00, 0x01, 0x00, 0x01}), frames);
  ASSERT_FALSE(fed.ok());
  EXPECT_EQ(fed.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(fed.error().message().find("bad length"), std::string::npos);
  EXPECT_TRUE(reader.failed());
  // A failed reader stays failed.
  EXPECT_FALSE(reader.feed(encodeFrame(FrameType::kInput, "x"), frames).ok());
  EXPECT_TRUE(frames.empty());
}

TEST(SshFrames, RefusesAnUnknownTypeAtItsFirstByte) {
  FrameReader reader;
  std::vector<Frame> frames;
  auto fed = reader.feed(encodeFrame(FrameType::kInput, "ok") + bytes({0x07}), frames);
  ASSERT_FALSE(fed.ok());
  EXPECT_NE(fed.error().message().find("unknown ssh terminal frame type 0x07"), std::string::npos);
  // The frame before the bad byte was still read.
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, "ok");
  // A stream that is not ours at all (an HTTP request, say) fails at once.
  FrameReader other;
  EXPECT_FALSE(other.feed("GET / HTTP/1.1\r\n", frames).ok());
}

TEST(SshFrames, RefusesFixedSizeFramesOfTheWrongSize) {
  for (const auto& bad : {bytes({0x02, 0, 0, 0, 3, 0, 80, 0}), bytes({0x02, 0, 0, 0, 5, 0, 80, 0, 24, 0}),
                          bytes({0x85, 0, 0, 0, 0}), bytes({0x03, 0, 0, 0, 65})}) {
    FrameReader reader;
    std::vector<Frame> frames;
    EXPECT_FALSE(reader.feed(bad, frames).ok()) << "type " << static_cast<int>(static_cast<unsigned char>(bad[0]));
  }
}

TEST(SshFrames, TellsClientTypesFromGatewayTypes) {
  EXPECT_TRUE(isClientFrame(FrameType::kInput));
  EXPECT_TRUE(isClientFrame(FrameType::kResize));
  EXPECT_TRUE(isClientFrame(FrameType::kPing));
  EXPECT_FALSE(isClientFrame(FrameType::kOutput));
  EXPECT_FALSE(isClientFrame(FrameType::kExit));
  EXPECT_EQ(frameTypeName(FrameType::kReady), "ready");
}

}  // namespace
}  // namespace kasm::ssh
