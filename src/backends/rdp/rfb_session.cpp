#include "backends/rdp/rfb_session.hpp"

#include <algorithm>

#include "backends/rdp/keyboard_map.hpp"

namespace kasm::rdp::detail {

namespace {

constexpr int kTile = 64;
constexpr std::uint8_t kShiftScancode = 0x2A;

}  // namespace

void RfbSession::attach(RdpInput& input, std::uint16_t width, std::uint16_t height) {
  input_ = &input;
  resizeGrid(width, height);
}

void RfbSession::resizeGrid(std::uint16_t width, std::uint16_t height) {
  width_ = width;
  height_ = height;
  tiles_x_ = (width_ + kTile - 1) / kTile;
  tiles_y_ = (height_ + kTile - 1) / kTile;
  dirty_.assign(tiles_x_ * tiles_y_, 1);  // After a (re)size the whole screen is sent.
}

bool RfbSession::supports(std::int32_t encoding) const {
  return std::find(encodings_.begin(), encodings_.end(), encoding) != encodings_.end();
}

bool RfbSession::hasDirty() const {
  return std::find(dirty_.begin(), dirty_.end(), 1) != dirty_.end();
}

void RfbSession::markDirty(std::int32_t x, std::int32_t y, std::int32_t w, std::int32_t h) {
  const std::int32_t x0 = std::max(0, x), y0 = std::max(0, y);
  const std::int32_t x1 = std::min<std::int32_t>(width_, x + w), y1 = std::min<std::int32_t>(height_, y + h);
  if (x1 <= x0 || y1 <= y0) return;
  for (std::int32_t ty = y0 / kTile; ty <= (y1 - 1) / kTile; ++ty) {
    for (std::int32_t tx = x0 / kTile; tx <= (x1 - 1) / kTile; ++tx) dirty_[ty * tiles_x_ + tx] = 1;
  }
}

void RfbSession::onPaint(const std::vector<DirtyRect>& rects) {
  for (const auto& r : rects) markDirty(r.x, r.y, r.w, r.h);
}

void RfbSession::onResize(std::uint16_t width, std::uint16_t height) {
  resizeGrid(width, height);
  resize_pending_ = true;
  resize_reason_ = resize_requested_ ? 1 : 0;
  resize_status_ = 0;
  resize_requested_ = false;
}

void RfbSession::onCursor(const CursorImage& cursor) {
  cursor_ = cursor;
  cursor_pending_ = true;
}

void RfbSession::onClipboardText(std::string latin1) {
  pending_out_ += serverCutText(latin1);
}

bool RfbSession::receive(std::span<const std::uint8_t> bytes) {
  reader_.append(bytes);
  while (auto msg = reader_.next()) handle(*msg);
  if (!reader_.error().empty()) error_ = reader_.error();
  return error_.empty();
}

void RfbSession::handle(const ClientMsg& msg) {
  switch (msg.type) {
    case ClientMsgType::kSetPixelFormat: {
      const PixelFormat& f = msg.pixel_format.format;
      const bool usable = f.true_colour && (f.bits_per_pixel == 32 || f.bits_per_pixel == 16 || f.bits_per_pixel == 8);
      if (!usable) {
        error_ = "the viewer asked for a colour-map pixel format, which is not served";
        return;
      }
      format_ = f;
      std::fill(dirty_.begin(), dirty_.end(), 1);
      break;
    }
    case ClientMsgType::kSetEncodings:
      encodings_ = msg.encodings.encodings;
      reader_.setExtendedPointer(extended_mouse_buttons_ && supports(kEncodingExtendedMouseButtons));
      announce_pending_ = true;
      if (cursor_) cursor_pending_ = true;
      break;
    case ClientMsgType::kUpdateRequest:
      request_pending_ = true;
      if (!msg.update.incremental) markDirty(msg.update.x, msg.update.y, msg.update.w, msg.update.h);
      break;
    case ClientMsgType::kKey: handleKey(msg.key); break;
    case ClientMsgType::kPointer:
      if (input_) {
        input_->sendPointer(msg.pointer.mask, std::min<std::uint16_t>(msg.pointer.x, width_ ? width_ - 1 : 0),
                            std::min<std::uint16_t>(msg.pointer.y, height_ ? height_ - 1 : 0));
      }
      break;
    case ClientMsgType::kCutText:
      if (input_) input_->setClipboardText(msg.cut_text.latin1);
      break;
    case ClientMsgType::kSetDesktopSize:
      // Passed on when the server can resize; otherwise refused at once (status 1, "prohibited"),
      // as the RFB spec asks. A granted request is answered when the server's resize arrives.
      if (input_ && input_->requestResize(msg.desktop_size.w, msg.desktop_size.h)) {
        resize_requested_ = true;
      } else {
        resize_pending_ = true;
        resize_reason_ = 1;
        resize_status_ = 1;
      }
      break;
    case ClientMsgType::kIgnored: break;
  }
}

void RfbSession::handleKey(const KeyMsg& key) {
  if (!input_) return;
  if (key.keysym == 0xFFE1 || key.keysym == 0xFFE2) shift_down_ = key.down;
  if (auto sc = scancodeFromQemuKeycode(key.scancode)) {
    input_->sendKey(key.down, sc->code, sc->extended);
    return;
  }
  if (auto sc = scancodeForFunctionKey(key.keysym)) {
    input_->sendKey(key.down, sc->code, sc->extended);
    return;
  }
  const auto cp = codepointForKeysym(key.keysym);
  if (!cp) return;
  if (input_->unicodeInput()) {
    input_->sendUnicode(key.down, *cp);
    return;
  }
  // Without Unicode input only the US layout's characters can be typed from a keysym; Shift is
  // pressed around the key when the character needs it and the viewer does not hold it already.
  const auto us = usKeyForAscii(*cp);
  if (!us) return;
  const bool add_shift = key.down && us->shift && !shift_down_;
  if (add_shift) input_->sendKey(true, kShiftScancode, false);
  input_->sendKey(key.down, us->scancode.code, false);
  if (add_shift) input_->sendKey(false, kShiftScancode, false);
}

void RfbSession::appendCursor(UpdateBuilder& update) {
  const CursorImage& c = *cursor_;
  update.rectHeader(c.hot_x, c.hot_y, c.width, c.height, kEncodingCursor);
  auto& out = update.body();
  const std::size_t pixels = std::size_t{c.width} * c.height;
  for (std::size_t i = 0; i < pixels; ++i) {
    const std::uint8_t* p = c.rgba.data() + i * 4;
    appendPixel(out, format_, format_.pack(p[0], p[1], p[2]));
  }
  const std::size_t row_bytes = (c.width + 7) / 8;
  for (std::size_t y = 0; y < c.height; ++y) {
    for (std::size_t bx = 0; bx < row_bytes; ++bx) {
      std::uint8_t bits = 0;
      for (std::size_t b = 0; b < 8; ++b) {
        const std::size_t x = bx * 8 + b;
        if (x < c.width && c.rgba[(y * c.width + x) * 4 + 3] >= 128) bits |= static_cast<std::uint8_t>(0x80 >> b);
      }
      out.push_back(static_cast<char>(bits));
    }
  }
}

void RfbSession::appendPixels(UpdateBuilder& update, const RdpFrame& frame) {
  const bool zrle = supports(kEncodingZrle);
  // Each row of tiles becomes rectangles of horizontally adjacent dirty tiles.
  for (std::size_t ty = 0; ty < tiles_y_; ++ty) {
    std::size_t tx = 0;
    while (tx < tiles_x_) {
      if (!dirty_[ty * tiles_x_ + tx]) {
        ++tx;
        continue;
      }
      const std::size_t start = tx;
      while (tx < tiles_x_ && dirty_[ty * tiles_x_ + tx]) dirty_[ty * tiles_x_ + tx++] = 0;
      const auto x = static_cast<std::uint16_t>(start * kTile);
      const auto y = static_cast<std::uint16_t>(ty * kTile);
      const auto w = static_cast<std::uint16_t>(std::min<std::size_t>(tx * kTile, frame.width) - x);
      const auto h = static_cast<std::uint16_t>(std::min<std::size_t>(y + kTile, frame.height) - y);
      if (w == 0 || h == 0) continue;
      if (zrle) {
        update.rectHeader(x, y, w, h, kEncodingZrle);
        if (zrle_.encode(update.body(), format_, frame.pixels, frame.stride, x, y, w, h)) continue;
        error_ = "zlib failed";
        return;
      }
      update.rectHeader(x, y, w, h, kEncodingRaw);
      for (std::uint16_t row = 0; row < h; ++row) {
        appendRow(update.body(), format_, frame.pixels + (y + row) * frame.stride + std::size_t{x} * 4, w);
      }
    }
  }
}

std::string RfbSession::takeOutput(const RdpFrame& frame) {
  std::string out = std::move(pending_out_);
  pending_out_.clear();
  if (!request_pending_ || !input_) return out;
  UpdateBuilder update;
  if (resize_pending_) {
    if (supports(kEncodingExtendedDesktopSize)) {
      appendExtendedDesktopSize(update, resize_reason_, resize_status_, width_, height_);
    } else if (supports(kEncodingDesktopSize) && resize_status_ == 0) {
      update.rectHeader(0, 0, width_, height_, kEncodingDesktopSize);
    }
    resize_pending_ = false;
  }
  if (announce_pending_) {
    // An empty rectangle of a pseudo-encoding tells noVNC the server speaks it.
    if (supports(kEncodingQemuExtendedKey)) update.rectHeader(0, 0, 0, 0, kEncodingQemuExtendedKey);
    // The desktop's layout, unasked (reason 0): how a viewer learns it may send SetDesktopSize, which
    // is what lets the desktop fit the browser's window (noVNC resizes only after it).
    if (supports(kEncodingExtendedDesktopSize) && !resize_pending_) {
      appendExtendedDesktopSize(update, 0, 0, width_, height_);
    }
    if (extended_mouse_buttons_ && supports(kEncodingExtendedMouseButtons)) {
      update.rectHeader(0, 0, 0, 0, kEncodingExtendedMouseButtons);
    }
    announce_pending_ = false;
  }
  if (cursor_pending_ && cursor_ && supports(kEncodingCursor)) {
    appendCursor(update);
    cursor_pending_ = false;
  }
  if (frame.width == width_ && frame.height == height_) appendPixels(update, frame);
  if (update.rects() == 0) return out;
  request_pending_ = false;
  out += update.finish();
  return out;
}

}  // namespace kasm::rdp::detail
