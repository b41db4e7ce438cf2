// The RFB session of the rdp backend over a recording input and a synthetic framebuffer: what is
// sent and when (only on request, only what changed), ZRLE decoded back to the same pixels, resize
// answers, and how keys and buttons are turned into RDP input. No server needed.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backends/rdp/rfb_session.hpp"
#include "rfb_test_client.hpp"

namespace kasm::rdp::detail {
namespace {

struct RecordingInput : RdpInput {
  struct Key {
    bool down;
    std::uint8_t code;
    bool extended;
  };
  std::vector<Key> keys;
  std::vector<std::pair<bool, char32_t>> unicode;
  std::vector<std::uint16_t> masks;
  std::string clipboard;
  bool unicode_supported = false;
  bool can_resize = false;
  std::pair<int, int> resize_asked{0, 0};

  void sendKey(bool down, std::uint8_t code, bool extended) override { keys.push_back({down, code, extended}); }
  void sendUnicode(bool down, char32_t cp) override { unicode.emplace_back(down, cp); }
  bool unicodeInput() const override { return unicode_supported; }
  void sendPointer(std::uint16_t mask, std::uint16_t, std::uint16_t) override { masks.push_back(mask); }
  void setClipboardText(std::string latin1) override { clipboard = std::move(latin1); }
  bool requestResize(std::uint16_t w, std::uint16_t h) override {
    resize_asked = {w, h};
    return can_resize;
  }
};

// A 150x90 RGBX frame (more than one tile each way, with partial tiles) and an RFB viewer fed by
// the session's output through a socketpair.
class RfbSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0);
    pixels_.resize(kW * kH * 4);
    for (int y = 0; y < kH; ++y)
      for (int x = 0; x < kW; ++x) setPixel(x, y, static_cast<std::uint8_t>(x), static_cast<std::uint8_t>(y), 0x40);
    // The server half of the handshake, written ahead (the viewer's answers are drained).
    std::string hello = "RFB 003.008\n";
    hello += std::string("\x01\x01", 2) + std::string(4, '\0') + serverInit(kW, kH, "test");
    serverWrite(hello);
    client_ = std::make_unique<testing::RfbTestClient>(fds_[1]);
    ASSERT_EQ(client_->handshake(2000), "");
    drainServerSide();
    session_.attach(input_, kW, kH);
  }
  void TearDown() override {
    close(fds_[0]);
    close(fds_[1]);
  }
  void setPixel(int x, int y, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
    std::uint8_t* p = pixels_.data() + (y * kW + x) * 4;
    p[0] = r;
    p[1] = g;
    p[2] = b;
  }
  RdpFrame frame() const { return {pixels_.data(), kW * 4, kW, kH}; }
  void serverWrite(const std::string& s) {
    ASSERT_EQ(write(fds_[0], s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  void drainServerSide() {
    char buf[4096];
    while (recv(fds_[0], buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
  }
  void clientSends(const std::vector<std::uint8_t>& m) { ASSERT_TRUE(session_.receive(m)); }
  void request(bool incremental) {
    clientSends({3, static_cast<std::uint8_t>(incremental ? 1 : 0), 0, 0, 0, 0, 0, kW, 0, kH});
  }
  void encodings(std::initializer_list<std::int32_t> list) {
    std::vector<std::uint8_t> m = {2, 0, 0, static_cast<std::uint8_t>(list.size())};
    for (auto e : list)
      for (int s = 24; s >= 0; s -= 8)
        m.push_back(static_cast<std::uint8_t>((static_cast<std::uint32_t>(e) >> s) & 0xFF));
    clientSends(m);
  }
  bool framesEqual() const {
    for (int y = 0; y < kH; ++y)
      for (int x = 0; x < kW; ++x) {
        const std::uint8_t* p = pixels_.data() + (y * kW + x) * 4;
        if (client_->pixel(x, y) != (p[0] | (p[1] << 8u) | (std::uint32_t{p[2]} << 16))) return false;
      }
    return true;
  }

  static constexpr std::uint16_t kW = 150, kH = 90;
  int fds_[2] = {-1, -1};
  std::vector<std::uint8_t> pixels_;
  RecordingInput input_;
  RfbSession session_{false};
  std::unique_ptr<testing::RfbTestClient> client_;
};

TEST_F(RfbSessionTest, SendsNothingUntilAskedThenTheWholeFrameInZrle) {
  encodings({16, 0});
  EXPECT_EQ(session_.takeOutput(frame()), "");  // No request yet.
  request(false);
  serverWrite(session_.takeOutput(frame()));
  auto msg = client_->readMessage(2000);
  ASSERT_EQ(msg.type, 0);
  EXPECT_GT(msg.pixel_rects, 0);
  EXPECT_TRUE(framesEqual());
  // An incremental request with nothing changed is held, not answered with an empty update.
  request(true);
  EXPECT_EQ(session_.takeOutput(frame()), "");
  EXPECT_TRUE(session_.updateRequested());
}

TEST_F(RfbSessionTest, OnlyDirtyTilesAreSentAndRawWorksToo) {
  encodings({0});
  request(false);
  serverWrite(session_.takeOutput(frame()));
  ASSERT_EQ(client_->readMessage(2000).type, 0);
  setPixel(140, 80, 0xFF, 0xFF, 0xFF);
  session_.onPaint({DirtyRect{140, 80, 1, 1}});
  request(true);
  const std::string update = session_.takeOutput(frame());
  serverWrite(update);
  auto msg = client_->readMessage(2000);
  ASSERT_EQ(msg.type, 0);
  EXPECT_EQ(msg.pixel_rects, 1);
  // One partial tile: 150-128 = 22 by 90-64 = 26 pixels, raw.
  EXPECT_EQ(update.size(), 4u + 12u + 22u * 26u * 4u);
  EXPECT_TRUE(framesEqual());
}

TEST_F(RfbSessionTest, QemuKeyAckAndCursorFollowSetEncodings) {
  encodings({16, -258, -239});
  CursorImage cursor{2, 2, 1, 1, std::vector<std::uint8_t>(16, 0xFF)};
  session_.onCursor(cursor);
  request(true);
  serverWrite(session_.takeOutput(frame()));
  auto msg = client_->readMessage(2000);
  ASSERT_EQ(msg.type, 0);
  EXPECT_TRUE(msg.cursor);
  EXPECT_GE(msg.rects, 2);
}

TEST_F(RfbSessionTest, SetDesktopSizeIsRefusedWithoutDisplayControl) {
  encodings({16, -308});
  request(false);
  serverWrite(session_.takeOutput(frame()));
  ASSERT_EQ(client_->readMessage(2000).type, 0);
  clientSends({251, 0, 0, 200, 0, 100, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200, 0, 100, 0, 0, 0, 0});
  EXPECT_EQ(input_.resize_asked, std::make_pair(200, 100));
  request(true);
  serverWrite(session_.takeOutput(frame()));
  auto msg = client_->readMessage(2000);
  ASSERT_TRUE(msg.desktop_size_status);
  EXPECT_EQ(*msg.desktop_size_status, 1);  // Prohibited.
  EXPECT_EQ(msg.desktop_size_reason, 1);   // Answer to this client.
}

TEST_F(RfbSessionTest, ServerResizeIsAnnouncedWithTheNewFrame) {
  encodings({16, -308});
  session_.onResize(100, 50);
  std::vector<std::uint8_t> small(100 * 50 * 4, 0x20);
  request(true);
  serverWrite(session_.takeOutput({small.data(), 400, 100, 50}));
  auto msg = client_->readMessage(2000);
  ASSERT_TRUE(msg.desktop_size_status);
  EXPECT_EQ(*msg.desktop_size_status, 0);
  EXPECT_EQ(msg.desktop_size_reason, 0);
  EXPECT_EQ(client_->width, 100);
  EXPECT_EQ(client_->height, 50);
  EXPECT_GT(msg.pixel_rects, 0);
}

TEST_F(RfbSessionTest, KeysBecomeScancodesOrUnicode) {
  clientSends({4, 1, 0, 0, 0, 0, 0, 'A'});  // 'A' without Unicode input: Shift around 0x1E.
  ASSERT_EQ(input_.keys.size(), 3u);
  EXPECT_EQ(input_.keys[0].code, 0x2A);
  EXPECT_TRUE(input_.keys[0].down);
  EXPECT_EQ(input_.keys[1].code, 0x1E);
  EXPECT_EQ(input_.keys[2].code, 0x2A);
  EXPECT_FALSE(input_.keys[2].down);
  input_.keys.clear();
  clientSends({255, 0, 0, 1, 0, 0, 0, 'q', 0, 0, 0, 0x10});  // QEMU: the scancode wins (AZERTY 'a' key).
  ASSERT_EQ(input_.keys.size(), 1u);
  EXPECT_EQ(input_.keys[0].code, 0x10);
  input_.unicode_supported = true;
  clientSends({4, 1, 0, 0, 0x01, 0, 0x20, 0xAC});  // U+20AC as a Unicode event.
  ASSERT_EQ(input_.unicode.size(), 1u);
  EXPECT_EQ(input_.unicode[0].second, U'\u20AC');
  clientSends({5, 0x09, 0, 5, 0, 5});  // Left + wheel up.
  ASSERT_EQ(input_.masks.size(), 1u);
  EXPECT_EQ(input_.masks[0], 0x09);
  clientSends({6, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c'});
  EXPECT_EQ(input_.clipboard, "abc");
}

TEST_F(RfbSessionTest, ServerClipboardIsSentWithoutARequest) {
  session_.onClipboardText("hi\n");
  serverWrite(session_.takeOutput(frame()));
  auto msg = client_->readMessage(2000);
  ASSERT_EQ(msg.type, 3);
  EXPECT_EQ(msg.cut_text, "hi\n");
}

}  // namespace
}  // namespace kasm::rdp::detail
