#pragma once

// The reverse tunnel's wire format (kasm/tunnel): an agent that the proxy cannot reach (behind NAT,
// or a firewall that lets only its outbound connections through) keeps one WebSocket open to the
// installation, and session traffic rides it. Each binary message carries one frame:
//
//   byte 0      type (FrameType)
//   bytes 1-4   stream id, big endian (chosen by the server; 0 is never a stream)
//   bytes 5-    payload
//
// A stream is one TCP connection the server asks the agent to make (kOpen "host:port"); the agent
// answers kOpened or kClose with a reason. kData carries bytes either way; each side may send a
// stream at most the window it was granted (kInitialWindow, then what kWindow frames credit back
// as the peer writes the bytes out), so one slow viewer never stalls the others on the same tunnel
// and neither side buffers more than the window per stream. kClose ends a stream from either side.
//
// Servers reach a tunnel held by another server through that server's gateway (TunnelHub), with
// an open request sealed under a key the installation's servers share (sealOpenRequest).

#include <cstdint>
#include <string>
#include <string_view>

#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"

namespace kasm::tunnel {

enum class FrameType : std::uint8_t {
  kOpen = 1,    // server -> agent: payload "host:port" to connect to.
  kOpened = 2,  // agent -> server: connected; empty payload.
  kData = 3,    // either way: bytes of the stream.
  kWindow = 4,  // either way: 4-byte big-endian credit, bytes the sender may send more.
  kClose = 5,   // either way: the stream is over; payload an optional reason (UTF-8, short).
};

inline constexpr std::size_t kHeaderBytes = 5;
inline constexpr std::size_t kMaxData = 64 * 1024;           // Payload of one kData frame, at most.
inline constexpr std::uint32_t kInitialWindow = 256 * 1024;  // Per stream, per direction.
inline constexpr std::size_t kMaxFrame = kHeaderBytes + kMaxData;
inline constexpr std::size_t kMaxTarget = 262;  // "host:port" of an open request.
inline constexpr std::size_t kMaxReason = 512;

struct Frame {
  FrameType type = FrameType::kData;
  std::uint32_t stream = 0;
  std::string_view payload;  // Views the decoded message.
  std::uint32_t credit = 0;  // kWindow only.
};

std::string encodeFrame(FrameType type, std::uint32_t stream, std::string_view payload = {});
std::string encodeWindow(std::uint32_t stream, std::uint32_t credit);

// Checks and splits one message: InvalidArgument for a short message, an unknown type, stream 0,
// an oversized payload, a window frame that is not 4 bytes or credits 0, an open target that is not
// "host:port". A peer that sends one is broken or hostile: drop the tunnel.
Result<Frame> decodeFrame(std::string_view message);

// "host:port" with a numeric port 1-65535 and a host of name characters, an IPv4 literal or a
// bracketed IPv6 literal.
bool isValidTarget(std::string_view target);

// The line a server writes to the gateway of the server holding an agent's tunnel, before the
// stream's first byte: "KASM-TUNNEL/1 <agent> <target> <expires unix s> <hmac>\n". `key` is at
// least 32 bytes, the same on every server of the installation.
std::string sealOpenRequest(std::string_view key, const AgentId& agent, std::string_view target, TimePoint expires);

struct OpenRequest {
  AgentId agent;
  std::string target;
};
// Checks a sealed line (without its '\n'): Unauthenticated when the seal does not match or it has
// expired, InvalidArgument when it is malformed.
Result<OpenRequest> openSealedRequest(std::string_view key, std::string_view line, TimePoint now);

// The tunnel key of an installation's servers, derived from its secret (never the secret itself).
std::string deriveTunnelKey(std::string_view installation_secret);

}  // namespace kasm::tunnel
