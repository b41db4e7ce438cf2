// The RFB client-message filter (see rfb_filter.hpp). Layouts, all big-endian, type byte first:
//   SetPixelFormat          0    20 bytes
//   SetEncodings            2    4 + 4 * u16 count at [2]
//   FramebufferUpdateRequest 3   10
//   KeyEvent                4    8
//   PointerEvent            5    6
//   ClientCutText           6    8 + s32 length at [4]; a negative length is the extended
//                                clipboard form, whose payload is |length| bytes
//   EnableContinuousUpdates 150  10
//   ClientFence             248  9 + u8 length at [8]
//   xvp                     250  4
//   SetDesktopSize          251  8 + 16 * u8 screens at [6]
//   QEMU                    255  subtype at [1]: 0 extended key event, 12; 1 audio, u16 operation
//                                at [2]: 0 enable and 1 disable are 4, 2 set format is 10

#include "net/rfb_filter.hpp"

#include <algorithm>
#include <cstring>

namespace kasm::net::detail {

namespace {

std::uint32_t big16(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 8) | p[1];
}
std::uint32_t big32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

// What the first `have` bytes of a message tell: the header bytes needed before its length is
// known (`need` > have), or its whole length.
struct Measure {
  std::uint8_t need = 0;
  std::uint64_t length = 0;
  RfbFilterError error = RfbFilterError::kNone;
};

Measure measureMessage(const unsigned char* head, std::uint8_t have) {
  auto fixed = [](std::uint64_t n) { return Measure{0, n, RfbFilterError::kNone}; };
  auto more = [](std::uint8_t n) { return Measure{n, 0, RfbFilterError::kNone}; };
  switch (static_cast<RfbClientType>(head[0])) {
    case RfbClientType::kSetPixelFormat: return fixed(20);
    case RfbClientType::kSetEncodings: return have < 4 ? more(4) : fixed(4 + 4 * std::uint64_t{big16(head + 2)});
    case RfbClientType::kFramebufferUpdateRequest: return fixed(10);
    case RfbClientType::kKeyEvent: return fixed(8);
    case RfbClientType::kPointerEvent: return fixed(6);
    case RfbClientType::kClientCutText: {
      if (have < 8) return more(8);
      const std::uint32_t raw = big32(head + 4);
      // The extended form sends -length; the magnitude of INT32_MIN is 2^31, beyond the limit.
      const std::uint64_t text = (raw & 0x80000000u) ? (std::uint64_t{1} << 32) - raw : raw;
      if (text > kMaxRfbCutText) return Measure{0, 0, RfbFilterError::kMessageTooLong};
      return fixed(8 + text);
    }
    case RfbClientType::kEnableContinuousUpdates: return fixed(10);
    case RfbClientType::kClientFence: return have < 9 ? more(9) : fixed(9 + std::uint64_t{head[8]});
    case RfbClientType::kXvp: return fixed(4);
    case RfbClientType::kSetDesktopSize: return have < 8 ? more(8) : fixed(8 + 16 * std::uint64_t{head[6]});
    case RfbClientType::kQemu:
      if (have < 2) return more(2);
      if (head[1] == 0) return fixed(12);
      if (head[1] == 1) {
        if (have < 4) return more(4);
        switch (big16(head + 2)) {
          case 0:
          case 1: return fixed(4);
          case 2: return fixed(10);
          default: break;
        }
      }
      return Measure{0, 0, RfbFilterError::kUnknownType};
  }
  return Measure{0, 0, RfbFilterError::kUnknownType};
}

}  // namespace

std::string_view rfbFilterErrorText(RfbFilterError error) {
  switch (error) {
    case RfbFilterError::kNone: return "no error";
    case RfbFilterError::kUnknownType: return "the viewer sent an RFB message of an unknown type";
    case RfbFilterError::kMessageTooLong: return "the viewer sent a clipboard text beyond the proxy's limit";
  }
  return "unknown filter error";
}

bool isRfbInput(std::uint8_t type) {
  switch (static_cast<RfbClientType>(type)) {
    case RfbClientType::kKeyEvent:
    case RfbClientType::kPointerEvent:
    case RfbClientType::kClientCutText:
    case RfbClientType::kXvp:
    case RfbClientType::kSetDesktopSize:
    case RfbClientType::kQemu: return true;
    default: return false;
  }
}

RfbFilterError RfbClientFilter::measure() {
  const Measure m = measureMessage(head_, head_len_);
  if (m.error != RfbFilterError::kNone) return m.error;
  if (m.need > head_len_) {
    head_need_ = m.need;
    phase_ = Phase::kHeader;
  } else {
    length_ = m.length;
    remaining_ = m.length - head_len_;
    phase_ = Phase::kBody;
  }
  return RfbFilterError::kNone;
}

RfbFilterResult RfbClientFilter::filter(std::span<unsigned char> data, bool view_only,
                                        std::vector<RfbClientMessage>* seen) {
  RfbFilterResult result;
  if (phase_ == Phase::kFailed) {
    result.error = error_;
    return result;
  }
  unsigned char* const p = data.data();
  const std::size_t n = data.size();
  std::size_t in = 0, out = 0;
  // Bytes [in, in + k) belong to the current message: kept (moved down to `out`) or skipped.
  auto pass = [&](std::size_t k) {
    if (forward_) {
      if (out != in) std::memmove(p + out, p + in, k);
      out += k;
    }
    in += k;
  };
  while (in < n) {
    switch (phase_) {
      case Phase::kType:
        head_[0] = p[in];
        head_len_ = 1;
        forward_ = !(view_only && isRfbInput(head_[0]));
        if (!forward_) ++result.dropped;
        pass(1);
        error_ = measure();
        break;
      case Phase::kHeader: {
        const std::size_t k = std::min<std::size_t>(head_need_ - head_len_, n - in);
        std::memcpy(head_ + head_len_, p + in, k);
        head_len_ = static_cast<std::uint8_t>(head_len_ + k);
        pass(k);
        if (head_len_ == head_need_) error_ = measure();
        break;
      }
      case Phase::kBody: {
        const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n - in));
        pass(k);
        remaining_ -= k;
        break;
      }
      case Phase::kFailed: break;
    }
    if (error_ != RfbFilterError::kNone) {
      phase_ = Phase::kFailed;
      result.kept = out;
      result.error = error_;
      return result;
    }
    if (phase_ == Phase::kBody && remaining_ == 0) {
      if (seen) seen->push_back({head_[0], length_, forward_});
      phase_ = Phase::kType;
    }
  }
  result.kept = out;
  return result;
}

}  // namespace kasm::net::detail
