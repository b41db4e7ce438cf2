// The VNC bridge's WebSocket framing (see ws_frame.hpp). A client frame (RFC 6455 section 5.2):
//   byte 0   FIN (0x80), RSV1-3 (0x70), opcode (0x0F)
//   byte 1   MASK (0x80), length (0x7F): 0-125 itself, 126 a 16-bit length follows, 127 a 64-bit one
//   then the extended length (big-endian), the 4-byte masking key, and the payload, each byte
//   XORed with the key's byte at its offset modulo 4.

#include "net/ws_frame.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

namespace kasm::net::detail {

namespace {

bool isControl(std::uint8_t opcode) {
  return (opcode & 0x8) != 0;
}

bool isKnownOpcode(std::uint8_t opcode) {
  switch (static_cast<WsOpcode>(opcode)) {
    case WsOpcode::kContinuation:
    case WsOpcode::kText:
    case WsOpcode::kBinary:
    case WsOpcode::kClose:
    case WsOpcode::kPing:
    case WsOpcode::kPong: return true;
  }
  return false;
}

}  // namespace

std::string_view wsFrameErrorText(WsFrameError error) {
  switch (error) {
    case WsFrameError::kNone: return "no error";
    case WsFrameError::kReservedBits: return "a WebSocket frame with reserved bits set";
    case WsFrameError::kReservedOpcode: return "a WebSocket frame with a reserved opcode";
    case WsFrameError::kUnmasked: return "an unmasked WebSocket frame from the client";
    case WsFrameError::kControlTooLong: return "a WebSocket control frame longer than 125 bytes";
    case WsFrameError::kControlFragmented: return "a fragmented WebSocket control frame";
    case WsFrameError::kUnexpectedContinuation: return "a WebSocket continuation frame outside a message";
    case WsFrameError::kExpectedContinuation: return "a new WebSocket message inside a fragmented one";
    case WsFrameError::kBadLength: return "a WebSocket frame length not in its shortest form";
    case WsFrameError::kFrameTooLong: return "a WebSocket frame longer than the bridge accepts";
    case WsFrameError::kBadClosePayload: return "a WebSocket close frame of one byte";
    case WsFrameError::kBadCloseCode: return "a WebSocket close frame with an invalid code";
  }
  return "unknown WebSocket error";
}

std::uint16_t wsCloseCodeFor(WsFrameError error) {
  return error == WsFrameError::kFrameTooLong ? kWsCloseTooBig : kWsCloseProtocolError;
}

bool isValidWsCloseCode(std::uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;  // Registered (3000-3999) and private (4000-4999) use.
  if (code < 1000 || code > 1013) return false;
  return code != 1004 && code != 1005 && code != 1006;  // Reserved, and the two never sent.
}

WsReadResult WsFrameReader::fail(WsReadResult r, WsFrameError error) {
  phase_ = Phase::kFailed;
  error_ = error;
  r.event = WsEvent::kError;
  return r;
}

WsFrameError WsFrameReader::checkFirstBytes() const {
  const std::uint8_t opcode = head_[0] & 0x0F;
  if ((head_[0] & 0x70) != 0) return WsFrameError::kReservedBits;
  if (!isKnownOpcode(opcode)) return WsFrameError::kReservedOpcode;
  if ((head_[1] & 0x80) == 0) return WsFrameError::kUnmasked;
  if (isControl(opcode)) {
    if ((head_[0] & 0x80) == 0) return WsFrameError::kControlFragmented;
    if ((head_[1] & 0x7F) > kWsMaxControlPayload) return WsFrameError::kControlTooLong;
  } else if (opcode == static_cast<std::uint8_t>(WsOpcode::kContinuation)) {
    if (!in_message_) return WsFrameError::kUnexpectedContinuation;
  } else if (in_message_) {
    return WsFrameError::kExpectedContinuation;
  }
  return WsFrameError::kNone;
}

WsFrameError WsFrameReader::startFrame() {
  const unsigned len7 = head_[1] & 0x7F;
  std::uint64_t length = len7;
  std::size_t at = 2;
  if (len7 == 126) {
    length = (std::uint64_t{head_[2]} << 8) | head_[3];
    at = 4;
    if (length < 126) return WsFrameError::kBadLength;
  } else if (len7 == 127) {
    length = 0;
    for (int i = 0; i < 8; ++i) length = (length << 8) | head_[2 + i];
    at = 10;
    if ((length >> 63) != 0 || length <= 0xFFFF) return WsFrameError::kBadLength;
  }
  if (length > kWsMaxFrameBytes) return WsFrameError::kFrameTooLong;
  std::memcpy(mask_, head_ + at, 4);
  opcode_ = head_[0] & 0x0F;
  fin_ = (head_[0] & 0x80) != 0;
  if (isControl(opcode_)) {
    control_len_ = 0;
  } else {
    in_message_ = !fin_;
  }
  remaining_ = length;
  mask_at_ = 0;
  head_len_ = 0;
  head_need_ = 2;
  phase_ = Phase::kPayload;
  return WsFrameError::kNone;
}

WsEvent WsFrameReader::finishControl() {
  switch (static_cast<WsOpcode>(opcode_)) {
    case WsOpcode::kPing: return WsEvent::kPing;
    case WsOpcode::kPong: return WsEvent::kPong;
    default: break;
  }
  // A close frame: nothing, or a code and an optional reason.
  if (control_len_ == 1) {
    error_ = WsFrameError::kBadClosePayload;
  } else if (control_len_ >= 2) {
    close_code_ = static_cast<std::uint16_t>((control_[0] << 8) | control_[1]);
    if (!isValidWsCloseCode(close_code_)) error_ = WsFrameError::kBadCloseCode;
  }
  if (error_ != WsFrameError::kNone) {
    phase_ = Phase::kFailed;
    return WsEvent::kError;
  }
  phase_ = Phase::kClosed;
  return WsEvent::kClose;
}

WsReadResult WsFrameReader::read(std::span<const unsigned char> in, unsigned char* out) {
  WsReadResult r;
  if (phase_ == Phase::kClosed) {
    r.event = WsEvent::kClose;
    return r;
  }
  if (phase_ == Phase::kFailed) {
    r.event = WsEvent::kError;
    return r;
  }
  const unsigned char* p = in.data();
  const std::size_t n = in.size();
  std::size_t at = 0;
  while (at < n) {
    if (phase_ == Phase::kHeader) {
      while (head_len_ < head_need_ && at < n) head_[head_len_++] = p[at++];
      if (head_len_ < head_need_) break;
      if (head_need_ == 2) {
        if (auto e = checkFirstBytes(); e != WsFrameError::kNone) {
          r.consumed = at;
          return fail(r, e);
        }
        const unsigned len7 = head_[1] & 0x7F;
        head_need_ = static_cast<std::uint8_t>(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4);
        continue;
      }
      if (auto e = startFrame(); e != WsFrameError::kNone) {
        r.consumed = at;
        return fail(r, e);
      }
    } else {
      const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n - at));
      // `out` never runs ahead of the input (see read()'s contract), so unmasking byte by byte
      // from the front never overwrites input not yet read.
      unsigned char* dst = isControl(opcode_) ? control_ + control_len_ : out + r.produced;
      for (std::size_t i = 0; i < take; ++i) dst[i] = p[at + i] ^ mask_[(mask_at_ + i) & 3];
      if (isControl(opcode_)) {
        control_len_ = static_cast<std::uint8_t>(control_len_ + take);
      } else {
        r.produced += take;
      }
      mask_at_ = static_cast<std::uint8_t>((mask_at_ + take) & 3);
      at += take;
      remaining_ -= take;
    }
    if (phase_ == Phase::kPayload && remaining_ == 0) {
      phase_ = Phase::kHeader;
      if (isControl(opcode_)) {
        r.consumed = at;
        r.event = finishControl();
        return r;
      }
    }
  }
  r.consumed = at;
  return r;
}

std::size_t writeWsFrameHeader(unsigned char* out, WsOpcode opcode, std::uint64_t payload) {
  out[0] = static_cast<unsigned char>(0x80 | static_cast<std::uint8_t>(opcode));
  if (payload < 126) {
    out[1] = static_cast<unsigned char>(payload);
    return 2;
  }
  if (payload <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<unsigned char>(payload >> 8);
    out[3] = static_cast<unsigned char>(payload);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<unsigned char>(payload >> (56 - 8 * i));
  return 10;
}

std::string wsAcceptKey(std::string_view key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input(key);
  input += kGuid;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &digest_len, EVP_sha1(), nullptr) != 1) return {};
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (unsigned int i = 0; i < digest_len; i += 3) {
    const unsigned rest = digest_len - i;
    const std::uint32_t v = (std::uint32_t{digest[i]} << 16) | (rest > 1 ? std::uint32_t{digest[i + 1]} << 8 : 0) |
                            (rest > 2 ? std::uint32_t{digest[i + 2]} : 0);
    out.push_back(kAlphabet[(v >> 18) & 0x3F]);
    out.push_back(kAlphabet[(v >> 12) & 0x3F]);
    out.push_back(rest > 1 ? kAlphabet[(v >> 6) & 0x3F] : '=');
    out.push_back(rest > 2 ? kAlphabet[v & 0x3F] : '=');
  }
  return out;
}

}  // namespace kasm::net::detail
