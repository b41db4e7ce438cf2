#include "backends/rdp/rfb_protocol.hpp"

#include <cstring>

namespace kasm::rdp::detail {

namespace {

std::uint16_t big16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
std::uint32_t big32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

std::uint32_t scale(std::uint8_t v, std::uint16_t max) {
  return max == 255 ? v : (std::uint32_t{v} * max + 127) / 255;
}

}  // namespace

void putU16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}

void putU32(std::string& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xFF));
}

std::uint32_t PixelFormat::pack(std::uint8_t r, std::uint8_t g, std::uint8_t b) const {
  return (scale(r, red_max) << red_shift) | (scale(g, green_max) << green_shift) | (scale(b, blue_max) << blue_shift);
}

void appendPixel(std::string& out, const PixelFormat& format, std::uint32_t pixel) {
  const std::size_t n = format.bytesPerPixel();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t shift = format.big_endian ? 8 * (n - 1 - i) : 8 * i;
    out.push_back(static_cast<char>((pixel >> shift) & 0xFF));
  }
}

void appendRow(std::string& out, const PixelFormat& format, const std::uint8_t* src, std::size_t width) {
  if (format == PixelFormat::native()) {
    // The framebuffer's bytes are already R, G, B, X: a copy (the padding byte is sent as it is).
    out.append(reinterpret_cast<const char*>(src), width * 4);
    return;
  }
  for (std::size_t i = 0; i < width; ++i, src += 4) appendPixel(out, format, format.pack(src[0], src[1], src[2]));
}

void ClientMsgReader::append(std::span<const std::uint8_t> bytes) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 65536) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

std::optional<ClientMsg> ClientMsgReader::next() {
  if (!error_.empty()) return std::nullopt;
  const std::size_t have = buf_.size() - pos_;
  if (have == 0) return std::nullopt;
  const std::uint8_t* p = buf_.data() + pos_;
  ClientMsg msg;
  std::size_t need = 0;
  switch (p[0]) {
    case 0:  // SetPixelFormat
      need = 20;
      if (have < need) return std::nullopt;
      {
        auto& f = msg.pixel_format.format;
        f.bits_per_pixel = p[4];
        f.depth = p[5];
        f.big_endian = p[6] != 0;
        f.true_colour = p[7] != 0;
        f.red_max = big16(p + 8);
        f.green_max = big16(p + 10);
        f.blue_max = big16(p + 12);
        f.red_shift = p[14];
        f.green_shift = p[15];
        f.blue_shift = p[16];
      }
      msg.type = ClientMsgType::kSetPixelFormat;
      break;
    case 2:  // SetEncodings
      if (have < 4) return std::nullopt;
      need = 4 + 4 * std::size_t{big16(p + 2)};
      if (have < need) return std::nullopt;
      for (std::size_t i = 4; i < need; i += 4)
        msg.encodings.encodings.push_back(static_cast<std::int32_t>(big32(p + i)));
      msg.type = ClientMsgType::kSetEncodings;
      break;
    case 3:  // FramebufferUpdateRequest
      need = 10;
      if (have < need) return std::nullopt;
      msg.update = {p[1] != 0, big16(p + 2), big16(p + 4), big16(p + 6), big16(p + 8)};
      msg.type = ClientMsgType::kUpdateRequest;
      break;
    case 4:  // KeyEvent
      need = 8;
      if (have < need) return std::nullopt;
      msg.key = {p[1] != 0, big32(p + 4), 0};
      msg.type = ClientMsgType::kKey;
      break;
    case 5:  // PointerEvent, with ExtendedMouseButtons a fourth byte when bit 7 is the marker.
      need = extended_pointer_ && (p[1] & 0x80) ? 7 : 6;
      if (have < need) return std::nullopt;
      msg.pointer.mask = p[1] & (need == 7 ? 0x7F : 0xFF);
      if (need == 7) msg.pointer.mask |= static_cast<std::uint16_t>((p[6] & 0x03) << 7);
      msg.pointer.x = big16(p + 2);
      msg.pointer.y = big16(p + 4);
      msg.type = ClientMsgType::kPointer;
      break;
    case 6: {  // ClientCutText; a negative length is the extended clipboard, not announced here.
      if (have < 8) return std::nullopt;
      const auto len = static_cast<std::int32_t>(big32(p + 4));
      const std::uint32_t size = len < 0 ? static_cast<std::uint32_t>(-static_cast<std::int64_t>(len)) : len;
      if (size > kMaxCutText) {
        error_ = "the viewer sent a clipboard text beyond the limit";
        return std::nullopt;
      }
      need = 8 + std::size_t{size};
      if (have < need) return std::nullopt;
      if (len >= 0) {
        msg.cut_text.latin1.assign(reinterpret_cast<const char*>(p + 8), size);
        msg.type = ClientMsgType::kCutText;
      }
      break;
    }
    case 150:  // EnableContinuousUpdates (never announced; harmless)
      need = 10;
      if (have < need) return std::nullopt;
      break;
    case 248:  // ClientFence
      if (have < 9) return std::nullopt;
      need = 9 + std::size_t{p[8]};
      if (have < need) return std::nullopt;
      break;
    case 250:  // xvp
      need = 4;
      if (have < need) return std::nullopt;
      break;
    case 251: {  // SetDesktopSize
      if (have < 8) return std::nullopt;
      const std::size_t screens = p[6];
      need = 8 + 16 * screens;
      if (have < need) return std::nullopt;
      msg.desktop_size.w = big16(p + 2);
      msg.desktop_size.h = big16(p + 4);
      for (std::size_t i = 0; i < screens; ++i) {
        const std::uint8_t* s = p + 8 + 16 * i;
        msg.desktop_size.screens.push_back(
            {big32(s), big16(s + 4), big16(s + 6), big16(s + 8), big16(s + 10), big32(s + 12)});
      }
      msg.type = ClientMsgType::kSetDesktopSize;
      break;
    }
    case 255: {  // QEMU: extended key event (subtype 0) and audio (subtype 1)
      if (have < 2) return std::nullopt;
      if (p[1] == 0) {
        need = 12;
        if (have < need) return std::nullopt;
        msg.key = {big16(p + 2) != 0, big32(p + 4), big32(p + 8)};
        msg.type = ClientMsgType::kKey;
      } else if (p[1] == 1) {
        if (have < 4) return std::nullopt;
        need = big16(p + 2) == 2 ? 10 : 4;
        if (have < need) return std::nullopt;
      } else {
        error_ = "the viewer sent an unknown QEMU message";
        return std::nullopt;
      }
      break;
    }
    default: error_ = "the viewer sent an RFB message of unknown type " + std::to_string(p[0]); return std::nullopt;
  }
  pos_ += need;
  return msg;
}

std::string securityFailure(std::string_view reason) {
  std::string out(1, '\0');
  putU32(out, static_cast<std::uint32_t>(reason.size()));
  out.append(reason);
  return out;
}

std::string serverInit(std::uint16_t width, std::uint16_t height, std::string_view name) {
  std::string out;
  putU16(out, width);
  putU16(out, height);
  const PixelFormat f = PixelFormat::native();
  out.push_back(static_cast<char>(f.bits_per_pixel));
  out.push_back(static_cast<char>(f.depth));
  out.push_back(static_cast<char>(f.big_endian ? 1 : 0));
  out.push_back(static_cast<char>(f.true_colour ? 1 : 0));
  putU16(out, f.red_max);
  putU16(out, f.green_max);
  putU16(out, f.blue_max);
  out.push_back(static_cast<char>(f.red_shift));
  out.push_back(static_cast<char>(f.green_shift));
  out.push_back(static_cast<char>(f.blue_shift));
  out.append(3, '\0');
  putU32(out, static_cast<std::uint32_t>(name.size()));
  out.append(name);
  return out;
}

UpdateBuilder::UpdateBuilder() {
  out_.assign(4, '\0');  // type 0, padding, count patched by finish().
}

void UpdateBuilder::rectHeader(std::uint16_t x, std::uint16_t y, std::uint16_t w, std::uint16_t h,
                               std::int32_t encoding) {
  putU16(out_, x);
  putU16(out_, y);
  putU16(out_, w);
  putU16(out_, h);
  putU32(out_, static_cast<std::uint32_t>(encoding));
  ++rects_;
}

std::string UpdateBuilder::finish() {
  out_[2] = static_cast<char>(rects_ >> 8);
  out_[3] = static_cast<char>(rects_ & 0xFF);
  std::string done = std::move(out_);
  out_.assign(4, '\0');
  rects_ = 0;
  return done;
}

void appendExtendedDesktopSize(UpdateBuilder& update, std::uint16_t reason, std::uint16_t status, std::uint16_t width,
                               std::uint16_t height) {
  update.rectHeader(reason, status, width, height, kEncodingExtendedDesktopSize);
  auto& out = update.body();
  out.push_back(1);  // One screen...
  out.append(3, '\0');
  putU32(out, 0);  // ...with id 0, covering the whole desktop.
  putU16(out, 0);
  putU16(out, 0);
  putU16(out, width);
  putU16(out, height);
  putU32(out, 0);
}

std::string serverCutText(std::string_view latin1) {
  std::string out(4, '\0');
  out[0] = 3;
  putU32(out, static_cast<std::uint32_t>(latin1.size()));
  out.append(latin1);
  return out;
}

}  // namespace kasm::rdp::detail
