// checkUpstream(): addresses parsed with inet_pton, compared as 16-byte values (IPv4 as mapped
// IPv6), so one prefix match serves both families.

#include "kasm/agent/upstream_policy.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>

namespace kasm::agent {
namespace {

struct Address {
  std::array<std::uint8_t, 16> bytes{};  // IPv4 as ::ffff:a.b.c.d.
  bool v4 = false;
};

std::optional<Address> parseAddress(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  Address a;
  in_addr v4{};
  if (::inet_pton(AF_INET, buf, &v4) == 1) {
    a.v4 = true;
    a.bytes[10] = a.bytes[11] = 0xff;
    std::memcpy(&a.bytes[12], &v4, 4);
    return a;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, buf, &v6) != 1) return std::nullopt;
  std::memcpy(a.bytes.data(), &v6, 16);
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  a.v4 = std::memcmp(a.bytes.data(), kMapped, 12) == 0;
  return a;
}

// The first `bits` bits of a and b agree.
bool samePrefix(const Address& a, const Address& b, int bits) {
  int i = 0;
  for (; bits >= 8; bits -= 8, ++i) {
    if (a.bytes[i] != b.bytes[i]) return false;
  }
  if (bits == 0) return true;
  const std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - bits));
  return (a.bytes[i] & mask) == (b.bytes[i] & mask);
}

struct Network {
  Address base;
  int bits = 0;  // Over the 128-bit form.
};

std::optional<Network> parseNetwork(std::string_view text) {
  const auto slash = text.find('/');
  auto base = parseAddress(text.substr(0, slash));
  if (!base) return std::nullopt;
  // The notation decides the prefix's width: "::ffff:10.0.0.0/104" counts over 128 bits.
  const bool v4_notation = text.substr(0, slash).find(':') == std::string_view::npos;
  const int width = v4_notation ? 32 : 128;
  int bits = width;
  if (slash != std::string_view::npos) {
    const auto len = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(len.data(), len.data() + len.size(), bits);
    if (len.empty() || ec != std::errc() || ptr != len.data() + len.size() || bits < 0 || bits > width) {
      return std::nullopt;
    }
  }
  return Network{*base, v4_notation ? bits + 96 : bits};
}

bool inNetwork(const Address& a, std::string_view network) {
  auto n = parseNetwork(network);
  return n && samePrefix(a, n->base, n->bits);
}

// Why no agent may name this address, or nullptr.
const char* forbiddenReason(const Address& a, bool allow_loopback) {
  if (a.v4) {
    if (inNetwork(a, "0.0.0.0/8")) return "an unspecified (this-host) address";
    if (!allow_loopback && inNetwork(a, "127.0.0.0/8")) return "a loopback address of the server";
    if (inNetwork(a, "169.254.0.0/16")) return "a link-local address (where metadata services answer)";
    if (inNetwork(a, "224.0.0.0/4")) return "a multicast address";
    if (inNetwork(a, "240.0.0.0/4")) return "a reserved or broadcast address";
    return nullptr;
  }
  if (inNetwork(a, "::/128")) return "the unspecified address";
  if (!allow_loopback && inNetwork(a, "::1/128")) return "a loopback address of the server";
  if (inNetwork(a, "fe80::/10")) return "a link-local address (where metadata services answer)";
  if (inNetwork(a, "ff00::/8")) return "a multicast address";
  return nullptr;
}

}  // namespace

Result<void> validateNetwork(std::string_view network) {
  if (!parseNetwork(network)) {
    return invalidArgument("'" + std::string(network) +
                           "' is not an IP address or CIDR network (e.g. 10.1.2.3, 10.1.0.0/16, fd00::/8)");
  }
  return {};
}

Result<void> checkUpstream(std::string_view upstream, const UpstreamPolicy& policy) {
  std::string_view host, port;
  if (upstream.starts_with("[")) {
    const auto close = upstream.find(']');
    if (close == std::string_view::npos || close + 1 >= upstream.size() || upstream[close + 1] != ':') {
      return invalidArgument("upstream '" + std::string(upstream) + "' is not [address]:port");
    }
    host = upstream.substr(1, close - 1);
    port = upstream.substr(close + 2);
  } else {
    const auto colon = upstream.rfind(':');
    if (colon == std::string_view::npos || upstream.find(':') != colon) {
      return invalidArgument("upstream '" + std::string(upstream) + "' is not address:port");
    }
    host = upstream.substr(0, colon);
    port = upstream.substr(colon + 1);
  }
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
    return invalidArgument("upstream '" + std::string(upstream) + "' has no valid port");
  }
  auto address = parseAddress(host);
  if (!address) {
    return permissionDenied("upstream '" + std::string(upstream) +
                            "' is not an IP address (a name could resolve anywhere when the proxy connects)");
  }
  if (const char* why = forbiddenReason(*address, policy.allow_loopback)) {
    return permissionDenied("upstream '" + std::string(upstream) + "' is " + why);
  }
  for (const auto& n : policy.allowed_networks) {
    if (inNetwork(*address, n)) return {};
  }
  return permissionDenied("upstream '" + std::string(upstream) +
                          "' is outside the networks this agent may publish on (its publish_networks)");
}

}  // namespace kasm::agent
