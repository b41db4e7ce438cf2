#include "backends/rdp/zrle_encoder.hpp"

#include <algorithm>
#include <array>

namespace kasm::rdp::detail {

namespace {

constexpr int kTile = 64;
// zlib level 1: on two shared cores the encoder's CPU time matters more than the last few percent
// of size, and flat desktop content compresses well at any level.
constexpr int kZlibLevel = 1;

std::uint32_t rgbAt(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16);
}

// How many bytes of a pixel ZRLE sends, and from which end (RFC 6143 7.7.6: a CPIXEL is 3 bytes
// when the format is 32bpp true colour with depth <= 24 and all colour bits in either the lower or
// the upper three bytes).
struct CpixelShape {
  int bytes = 4;
  bool upper = false;
};

CpixelShape cpixelShape(const PixelFormat& f) {
  if (f.bits_per_pixel != 32 || !f.true_colour || f.depth > 24) return {};
  const std::uint64_t all = (std::uint64_t{f.red_max} << f.red_shift) | (std::uint64_t{f.green_max} << f.green_shift) |
                            (std::uint64_t{f.blue_max} << f.blue_shift);
  if (all < (1u << 24)) return {3, false};
  if ((all & 0xFF) == 0) return {3, true};
  return {};
}

}  // namespace

ZrleEncoder::ZrleEncoder() {
  ok_ = deflateInit(&zs_, kZlibLevel) == Z_OK;
}

ZrleEncoder::~ZrleEncoder() {
  if (ok_) deflateEnd(&zs_);
}

void ZrleEncoder::appendCpixel(const PixelFormat& format, std::uint32_t rgb) {
  const std::uint32_t v = format.pack(rgb & 0xFF, (rgb >> 8) & 0xFF, (rgb >> 16) & 0xFF);
  const CpixelShape shape = cpixelShape(format);
  pixel_.clear();
  appendPixel(pixel_, format, v);
  if (shape.bytes == 4 || pixel_.size() != 4) {
    tiles_ += pixel_;
    return;
  }
  // In little-endian order the low three bytes come first; in big-endian order, last.
  const bool low_first = !format.big_endian;
  const std::size_t from = (shape.upper == low_first) ? 1 : 0;
  tiles_.append(pixel_, from, 3);
}

void ZrleEncoder::encodeTile(const PixelFormat& format, const std::uint8_t* frame, std::size_t stride, int x, int y,
                             int w, int h) {
  std::array<std::uint32_t, 16> palette{};
  int colours = 0;
  for (int row = 0; row < h && colours <= 16; ++row) {
    const std::uint8_t* p = frame + (y + row) * stride + x * 4;
    for (int col = 0; col < w; ++col, p += 4) {
      const std::uint32_t c = rgbAt(p);
      if (colours > 0 && palette[colours - 1] == c) continue;
      if (std::find(palette.begin(), palette.begin() + colours, c) != palette.begin() + colours) continue;
      if (colours == 16) {
        colours = 17;
        break;
      }
      palette[colours++] = c;
    }
  }
  if (colours == 1) {
    tiles_.push_back(1);
    appendCpixel(format, palette[0]);
    return;
  }
  if (colours <= 16) {
    tiles_.push_back(static_cast<char>(colours));
    for (int i = 0; i < colours; ++i) appendCpixel(format, palette[i]);
    const int bits = colours <= 2 ? 1 : colours <= 4 ? 2 : 4;
    for (int row = 0; row < h; ++row) {
      const std::uint8_t* p = frame + (y + row) * stride + x * 4;
      unsigned acc = 0;
      int used = 0;
      for (int col = 0; col < w; ++col, p += 4) {
        const std::uint32_t c = rgbAt(p);
        const auto index =
            static_cast<unsigned>(std::find(palette.begin(), palette.begin() + colours, c) - palette.begin());
        acc = (acc << bits) | index;
        used += bits;
        if (used == 8) {
          tiles_.push_back(static_cast<char>(acc));
          acc = 0;
          used = 0;
        }
      }
      if (used > 0) tiles_.push_back(static_cast<char>(acc << (8 - used)));
    }
    return;
  }
  tiles_.push_back(0);  // Raw CPIXELs.
  for (int row = 0; row < h; ++row) {
    const std::uint8_t* p = frame + (y + row) * stride + x * 4;
    for (int col = 0; col < w; ++col, p += 4) appendCpixel(format, rgbAt(p));
  }
}

bool ZrleEncoder::encode(std::string& out, const PixelFormat& format, const std::uint8_t* frame, std::size_t stride,
                         std::uint16_t x, std::uint16_t y, std::uint16_t w, std::uint16_t h) {
  if (!ok_) return false;
  tiles_.clear();
  for (int ty = y; ty < y + h; ty += kTile) {
    for (int tx = x; tx < x + w; tx += kTile) {
      encodeTile(format, frame, stride, tx, ty, std::min(kTile, x + w - tx), std::min(kTile, y + h - ty));
    }
  }
  const std::size_t length_at = out.size();
  out.append(4, '\0');
  const std::size_t start = out.size();
  zs_.next_in = reinterpret_cast<Bytef*>(tiles_.data());
  zs_.avail_in = static_cast<uInt>(tiles_.size());
  do {
    const std::size_t chunk = deflateBound(&zs_, zs_.avail_in) + 64;
    const std::size_t before = out.size();
    out.resize(before + chunk);
    zs_.next_out = reinterpret_cast<Bytef*>(out.data() + before);
    zs_.avail_out = static_cast<uInt>(chunk);
    if (deflate(&zs_, Z_SYNC_FLUSH) == Z_STREAM_ERROR) return false;
    out.resize(before + chunk - zs_.avail_out);
  } while (zs_.avail_in > 0 || zs_.avail_out == 0);
  const auto length = static_cast<std::uint32_t>(out.size() - start);
  for (int i = 0; i < 4; ++i) out[length_at + i] = static_cast<char>((length >> (24 - 8 * i)) & 0xFF);
  return true;
}

}  // namespace kasm::rdp::detail
