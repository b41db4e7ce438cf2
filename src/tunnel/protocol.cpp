#include "kasm/tunnel/protocol.hpp"

#include <charconv>

#include "kasm/auth/secret.hpp"

namespace kasm::tunnel {

namespace {

void putU32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

std::uint32_t getU32(std::string_view s) {
  auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(s[i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

bool isHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

// Splits "v1 v2 ..." on single spaces into exactly n fields.
bool splitFields(std::string_view line, std::string_view* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const auto sp = line.find(' ');
    if (i + 1 == n) {
      if (sp != std::string_view::npos || line.empty()) return false;
      out[i] = line;
    } else {
      if (sp == std::string_view::npos || sp == 0) return false;
      out[i] = line.substr(0, sp);
      line.remove_prefix(sp + 1);
    }
  }
  return true;
}

std::string sealedPayload(const AgentId& agent, std::string_view target, std::int64_t expires) {
  return "KASM-TUNNEL/1 " + agent.str() + " " + std::string(target) + " " + std::to_string(expires);
}

}  // namespace

std::string encodeFrame(FrameType type, std::uint32_t stream, std::string_view payload) {
  std::string out;
  out.reserve(kHeaderBytes + payload.size());
  out.push_back(static_cast<char>(type));
  putU32(out, stream);
  out.append(payload);
  return out;
}

std::string encodeWindow(std::uint32_t stream, std::uint32_t credit) {
  std::string out = encodeFrame(FrameType::kWindow, stream);
  putU32(out, credit);
  return out;
}

bool isValidTarget(std::string_view target) {
  if (target.empty() || target.size() > kMaxTarget) return false;
  const auto colon = target.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = target.substr(0, colon), port = target.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535 || port[0] == '0') {
    return false;
  }
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    for (char c : host.substr(1, host.size() - 2)) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.')) {
        return false;
      }
    }
    return true;
  }
  for (char c : host) {
    if (!isHostChar(c)) return false;
  }
  return true;
}

Result<Frame> decodeFrame(std::string_view message) {
  if (message.size() < kHeaderBytes)
    return invalidArgument("tunnel: a frame of " + std::to_string(message.size()) + " bytes");
  Frame f;
  const auto type = static_cast<std::uint8_t>(message[0]);
  if (type < 1 || type > 5) return invalidArgument("tunnel: unknown frame type " + std::to_string(type));
  f.type = static_cast<FrameType>(type);
  f.stream = getU32(message.substr(1, 4));
  if (f.stream == 0) return invalidArgument("tunnel: a frame for stream 0");
  f.payload = message.substr(kHeaderBytes);
  switch (f.type) {
    case FrameType::kOpen:
      if (!isValidTarget(f.payload)) return invalidArgument("tunnel: an open request for a malformed target");
      break;
    case FrameType::kOpened:
      if (!f.payload.empty()) return invalidArgument("tunnel: an opened frame with a payload");
      break;
    case FrameType::kData:
      if (f.payload.empty() || f.payload.size() > kMaxData) {
        return invalidArgument("tunnel: a data frame of " + std::to_string(f.payload.size()) + " bytes");
      }
      break;
    case FrameType::kWindow:
      if (f.payload.size() != 4) return invalidArgument("tunnel: a window frame that is not 4 bytes");
      f.credit = getU32(f.payload);
      if (f.credit == 0) return invalidArgument("tunnel: a window frame crediting nothing");
      break;
    case FrameType::kClose:
      if (f.payload.size() > kMaxReason) return invalidArgument("tunnel: a close reason over 512 bytes");
      break;
  }
  return f;
}

std::string sealOpenRequest(std::string_view key, const AgentId& agent, std::string_view target, TimePoint expires) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(expires.time_since_epoch()).count();
  std::string payload = sealedPayload(agent, target, seconds);
  const std::string mac = auth::hmacSha256(key, payload);
  return payload + " " + mac + "\n";
}

Result<OpenRequest> openSealedRequest(std::string_view key, std::string_view line, TimePoint now) {
  std::string_view f[5];
  if (!splitFields(line, f, 5) || f[0] != "KASM-TUNNEL/1") return invalidArgument("tunnel: a malformed open request");
  auto agent = AgentId::parse(f[1], "agent");
  if (!agent.ok()) return invalidArgument("tunnel: a malformed agent id in an open request");
  if (!isValidTarget(f[2])) return invalidArgument("tunnel: a malformed target in an open request");
  std::int64_t expires = 0;
  auto [end, ec] = std::from_chars(f[3].data(), f[3].data() + f[3].size(), expires);
  if (ec != std::errc() || end != f[3].data() + f[3].size()) return invalidArgument("tunnel: a malformed expiry");
  const std::string expected = auth::hmacSha256(key, sealedPayload(*agent, f[2], expires));
  if (!auth::constantTimeEquals(expected, f[4]))
    return unauthenticated("tunnel: the open request's seal does not match");
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (now_s > expires) return unauthenticated("tunnel: the open request has expired");
  return OpenRequest{std::move(*agent), std::string(f[2])};
}

std::string deriveTunnelKey(std::string_view installation_secret) {
  return auth::hmacSha256(installation_secret, "kasm tunnel gateway key v1");
}

}  // namespace kasm::tunnel
