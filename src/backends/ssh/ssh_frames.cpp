#include "backends/ssh/ssh_frames.hpp"

#include <algorithm>
#include <cassert>
#include <cstdio>

namespace kasm::ssh {
namespace {

bool isKnownType(std::uint8_t t) {
  switch (static_cast<FrameType>(t)) {
    case FrameType::kInput:
    case FrameType::kResize:
    case FrameType::kPing:
    case FrameType::kOutput:
    case FrameType::kReady:
    case FrameType::kPong:
    case FrameType::kError:
    case FrameType::kExit: return true;
  }
  return false;
}

// The largest payload each type may carry; fixed-size types are checked for their exact size too.
std::uint32_t maxPayload(FrameType type) {
  switch (type) {
    case FrameType::kResize:
    case FrameType::kExit: return 4;
    case FrameType::kPing:
    case FrameType::kPong: return kMaxPingPayload;
    default: return kMaxFramePayload;
  }
}

void putU32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

std::uint32_t getU32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

std::string hexByte(std::uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", b);
  return buf;
}

}  // namespace

bool isClientFrame(FrameType type) noexcept {
  return type == FrameType::kInput || type == FrameType::kResize || type == FrameType::kPing;
}

std::string_view frameTypeName(FrameType type) noexcept {
  switch (type) {
    case FrameType::kInput: return "input";
    case FrameType::kResize: return "resize";
    case FrameType::kPing: return "ping";
    case FrameType::kOutput: return "output";
    case FrameType::kReady: return "ready";
    case FrameType::kPong: return "pong";
    case FrameType::kError: return "error";
    case FrameType::kExit: return "exit";
  }
  return "unknown";
}

void appendFrame(std::string& out, FrameType type, std::string_view payload) {
  assert(payload.size() <= maxPayload(type));
  out.push_back(static_cast<char>(type));
  putU32(out, static_cast<std::uint32_t>(payload.size()));
  out.append(payload);
}

void appendChunked(std::string& out, FrameType type, std::string_view bytes) {
  while (!bytes.empty()) {
    const std::size_t n = std::min<std::size_t>(bytes.size(), kMaxFramePayload);
    appendFrame(out, type, bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
}

std::string encodeFrame(FrameType type, std::string_view payload) {
  std::string out;
  out.reserve(kFrameHeaderSize + payload.size());
  appendFrame(out, type, payload);
  return out;
}

std::string encodeResize(TerminalSize size) {
  std::string payload;
  payload.push_back(static_cast<char>(size.columns >> 8));
  payload.push_back(static_cast<char>(size.columns & 0xff));
  payload.push_back(static_cast<char>(size.rows >> 8));
  payload.push_back(static_cast<char>(size.rows & 0xff));
  return encodeFrame(FrameType::kResize, payload);
}

std::string encodeExit(std::int32_t status) {
  std::string payload;
  putU32(payload, static_cast<std::uint32_t>(status));
  return encodeFrame(FrameType::kExit, payload);
}

Result<TerminalSize> decodeResize(std::string_view payload) {
  if (payload.size() != 4) {
    return invalidArgument("a resize frame must carry 4 bytes, not " + std::to_string(payload.size()));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(payload.data());
  TerminalSize size;
  size.columns = static_cast<std::uint16_t>((p[0] << 8) | p[1]);
  size.rows = static_cast<std::uint16_t>((p[2] << 8) | p[3]);
  if (size.columns == 0 || size.rows == 0) {
    return invalidArgument("a resize frame must name at least 1 column and 1 row");
  }
  return size;
}

Result<std::int32_t> decodeExit(std::string_view payload) {
  if (payload.size() != 4) {
    return invalidArgument("an exit frame must carry 4 bytes, not " + std::to_string(payload.size()));
  }
  return static_cast<std::int32_t>(getU32(reinterpret_cast<const unsigned char*>(payload.data())));
}

Result<void> FrameReader::startFrame() {
  const auto type = static_cast<FrameType>(header_[0]);
  const std::uint32_t length = getU32(header_ + 1);
  const bool fixed = type == FrameType::kResize || type == FrameType::kExit;
  if (length > maxPayload(type) || (fixed && length != 4)) {
    return invalidArgument("ssh terminal frame " + std::string(frameTypeName(type)) + " has a bad length (" +
                           std::to_string(length) + " bytes; at most " + std::to_string(maxPayload(type)) + ")");
  }
  current_.type = type;
  current_.payload.clear();
  current_.payload.reserve(length);
  remaining_ = length;
  in_payload_ = true;
  header_used_ = 0;
  return okResult();
}

Result<void> FrameReader::feed(std::string_view bytes, std::vector<Frame>& out) {
  if (failed_) return invalidArgument("ssh terminal frames: the stream already failed");
  while (!bytes.empty()) {
    if (!in_payload_) {
      // The type is checked as soon as it arrives, so a stream that is not ours fails at its first
      // byte rather than after a length that may never come.
      if (header_used_ == 0 && !isKnownType(static_cast<std::uint8_t>(bytes.front()))) {
        failed_ = true;
        return invalidArgument("unknown ssh terminal frame type " + hexByte(static_cast<std::uint8_t>(bytes.front())));
      }
      const std::size_t n = std::min(bytes.size(), kFrameHeaderSize - header_used_);
      std::copy_n(bytes.data(), n, header_ + header_used_);
      header_used_ += n;
      bytes.remove_prefix(n);
      if (header_used_ < kFrameHeaderSize) break;
      if (auto started = startFrame(); !started.ok()) {
        failed_ = true;
        return started;
      }
    }
    const std::size_t n = std::min<std::size_t>(bytes.size(), remaining_);
    current_.payload.append(bytes.data(), n);
    remaining_ -= static_cast<std::uint32_t>(n);
    bytes.remove_prefix(n);
    if (remaining_ == 0) {
      in_payload_ = false;
      out.push_back(std::move(current_));
      current_ = Frame{};
    }
  }
  return okResult();
}

}  // namespace kasm::ssh
