#pragma once

// Internal to kasm::rdp: ZRLE (RFC 6143 7.7.6), the compressed encoding served to viewers that list
// it (noVNC does). Tiles of 64x64 pixels are sent as one colour, as a packed palette of up to 16
// colours, or raw, in "compressed pixels" of three bytes where the format allows, and the whole
// rectangle goes through one zlib stream that lives as long as the connection (the viewer keeps
// the matching inflater). Desktops are mostly flat colour and text, so palettes and zlib bring a
// full 1280x800 screen from 4 MB raw to tens of kilobytes.

#include <zlib.h>

#include <cstdint>
#include <string>

#include "backends/rdp/rfb_protocol.hpp"

namespace kasm::rdp::detail {

class ZrleEncoder {
 public:
  ZrleEncoder();
  ~ZrleEncoder();
  ZrleEncoder(const ZrleEncoder&) = delete;
  ZrleEncoder& operator=(const ZrleEncoder&) = delete;

  // Appends the ZRLE data (u32 length, then the compressed tiles) of the rectangle at (x, y) of an
  // RGBX framebuffer with `stride` bytes per row, in the client's `format`. False when zlib fails.
  bool encode(std::string& out, const PixelFormat& format, const std::uint8_t* frame, std::size_t stride,
              std::uint16_t x, std::uint16_t y, std::uint16_t w, std::uint16_t h);

 private:
  void encodeTile(const PixelFormat& format, const std::uint8_t* frame, std::size_t stride, int x, int y, int w, int h);
  void appendCpixel(const PixelFormat& format, std::uint32_t rgb);

  z_stream zs_{};
  bool ok_ = false;
  std::string tiles_;  // Uncompressed tile data of the rectangle being encoded, reused.
  std::string pixel_;  // Scratch for one pixel.
};

}  // namespace kasm::rdp::detail
