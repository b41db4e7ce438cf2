// captureVncSnapshot against a scripted RFB server on loopback: the handshake, a frame in two Raw
// rectangles, the picture scaled and encoded as a PNG whose pixels are read back here; and the
// failures a desktop can cause (refusal, garbage, silence) as errors, never hangs.

#include "kasm/net/vnc_snapshot.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "net/net_test_support.hpp"

namespace kasm::net {
namespace {

using namespace kasm::net::testing;

std::uint32_t big32(const std::string& s, std::size_t at) {
  return (std::uint32_t(std::uint8_t(s[at])) << 24) | (std::uint32_t(std::uint8_t(s[at + 1])) << 16) |
         (std::uint32_t(std::uint8_t(s[at + 2])) << 8) | std::uint8_t(s[at + 3]);
}

// Reads back what encodePngRgb wrote: width, height and the RGB rows (stored deflate blocks).
struct Png {
  int width = 0, height = 0;
  std::vector<unsigned char> rgb;
};
Png decodeStoredPng(const std::string& png) {
  Png out;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::size_t at = 8;
  std::string idat;
  while (at + 8 <= png.size()) {
    const auto len = big32(png, at);
    const std::string type = png.substr(at + 4, 4);
    const std::string data = png.substr(at + 8, len);
    if (type == "IHDR") {
      out.width = static_cast<int>(big32(data, 0));
      out.height = static_cast<int>(big32(data, 4));
    } else if (type == "IDAT") {
      idat += data;
    }
    at += 12 + len;
  }
  std::string raw;
  std::size_t p = 2;  // zlib header
  for (;;) {
    const bool last = idat[p] & 1;
    const std::size_t n = std::uint8_t(idat[p + 1]) | (std::uint8_t(idat[p + 2]) << 8);
    raw.append(idat, p + 5, n);
    p += 5 + n;
    if (last) break;
  }
  for (int y = 0; y < out.height; ++y) {
    const std::size_t row = static_cast<std::size_t>(y) * (out.width * 3 + 1);
    EXPECT_EQ(raw[row], 0) << "filter type of row " << y;
    out.rgb.insert(out.rgb.end(), raw.begin() + row + 1, raw.begin() + row + 1 + out.width * 3);
  }
  return out;
}

std::string be16(int v) {
  return {char(v >> 8), char(v & 0xFF)};
}
std::string be32(std::uint32_t v) {
  return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

// An RFB server offering security None with a 4x2 desktop: left half red, right half blue, sent
// as two Raw rectangles in little-endian 0x00RRGGBB (the format the client asks for).
void serveDesktop(tcp::socket& s) {
  asio::write(s, asio::buffer(std::string("RFB 003.008\n")));
  char version[12];
  asio::read(s, asio::buffer(version));
  asio::write(s, asio::buffer(std::string("\x01\x01", 2)));  // One type: None.
  char choice;
  asio::read(s, asio::buffer(&choice, 1));
  asio::write(s, asio::buffer(be32(0)));  // SecurityResult OK.
  char shared;
  asio::read(s, asio::buffer(&shared, 1));
  std::string init = be16(4) + be16(2) + std::string(16, '\0') + be32(4) + "test";
  asio::write(s, asio::buffer(init));
  char set_format[20], set_enc[8], request[10];
  asio::read(s, asio::buffer(set_format));
  asio::read(s, asio::buffer(set_enc));
  asio::read(s, asio::buffer(request));
  auto pixel = [](unsigned r, unsigned g, unsigned b) { return std::string{char(b), char(g), char(r), 0}; };
  std::string update = std::string("\x00\x00", 2) + be16(2);
  update += be16(0) + be16(0) + be16(2) + be16(2) + be32(0);
  for (int i = 0; i < 4; ++i) update += pixel(255, 0, 0);
  update += be16(2) + be16(0) + be16(2) + be16(2) + be32(0);
  for (int i = 0; i < 4; ++i) update += pixel(0, 0, 255);
  asio::write(s, asio::buffer(update));
  char rest[64];
  beast::error_code ec;
  s.read_some(asio::buffer(rest), ec);  // Until the client hangs up.
}

TEST(VncSnapshot, TakesAFrameScalesItAndEncodesAPng) {
  LoopbackListener desktop{serveDesktop};
  auto full = captureVncSnapshot({.upstream = desktop.address(), .width = 300});
  ASSERT_TRUE(full.ok()) << full.error().toString();
  Png png = decodeStoredPng(*full);
  ASSERT_EQ(png.width, 4);  // Never wider than the desktop.
  ASSERT_EQ(png.height, 2);
  EXPECT_EQ((std::vector<int>{png.rgb[0], png.rgb[1], png.rgb[2]}), (std::vector<int>{255, 0, 0}));
  EXPECT_EQ((std::vector<int>{png.rgb[9], png.rgb[10], png.rgb[11]}), (std::vector<int>{0, 0, 255}));

  auto half = captureVncSnapshot({.upstream = desktop.address(), .width = 2});
  ASSERT_TRUE(half.ok());
  png = decodeStoredPng(*half);
  ASSERT_EQ(png.width, 2);
  ASSERT_EQ(png.height, 1);
  EXPECT_EQ((std::vector<int>{png.rgb[0], png.rgb[2], png.rgb[3], png.rgb[5]}), (std::vector<int>{255, 0, 0, 255}));
}

TEST(VncSnapshot, DesktopsThatMisbehaveAreErrors) {
  LoopbackListener garbage{
      [](tcp::socket& s) { asio::write(s, asio::buffer(std::string("HTTP/1.1 200 OK\r\n\r\n"))); }};
  auto r = captureVncSnapshot({.upstream = garbage.address()});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss);

  LoopbackListener silent{[](tcp::socket& s) {
    char b[16];
    beast::error_code ec;
    s.read_some(asio::buffer(b), ec);
  }};
  r = captureVncSnapshot({.upstream = silent.address(), .timeout = std::chrono::milliseconds(300)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kDeadlineExceeded);

  LoopbackListener auth_only{[](tcp::socket& s) {
    asio::write(s, asio::buffer(std::string("RFB 003.008\n")));
    char version[12];
    asio::read(s, asio::buffer(version));
    asio::write(s, asio::buffer(std::string("\x01\x02", 2)));  // VncAuth only, and we have no password.
    char b[16];
    beast::error_code ec;
    s.read_some(asio::buffer(b), ec);
  }};
  r = captureVncSnapshot({.upstream = auth_only.address()});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kPermissionDenied);

  EXPECT_EQ(captureVncSnapshot({.upstream = "not-an-address:1"}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(captureVncSnapshot({.upstream = "127.0.0.1:1", .width = 0}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(captureVncSnapshot({.upstream = "127.0.0.1:1"}).error().code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace kasm::net
