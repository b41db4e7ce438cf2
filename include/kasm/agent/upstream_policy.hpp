#pragma once

// Which addresses a remote agent may name as a session's upstream. The proxy connects wherever a
// session's upstream points, so an agent that could report any address could make the server's
// proxy reach its own loopback services, the cloud metadata service, or any host of the server's
// networks. Agents are trusted to run containers, not to route traffic: the installation says
// where each agent publishes (Agent::publish_networks), and the report must fall inside.

#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/result.hpp"

namespace kasm::agent {

struct UpstreamPolicy {
  // Addresses ("10.1.2.3", "fd00::5") or networks in CIDR form ("10.1.0.0/16", "fd00::/8"). Empty
  // allows nothing.
  std::vector<std::string> allowed_networks;
  // Loopback addresses (127.0.0.0/8, ::1) reach the server's own services; allowed only when the
  // installation says so (an agent on the server's host, tests on one machine), and then only
  // inside allowed_networks like any other address.
  bool allow_loopback = false;
};

// OK when `upstream` ("ip:port" or "[ipv6]:port", an IP literal: a name could resolve elsewhere
// when the proxy connects) lies inside one of the policy's networks and is not an address no
// agent may name: link-local (169.254.0.0/16, fe80::/10; cloud metadata services live there),
// unspecified (0.0.0.0, ::, which reach loopback), multicast, broadcast, and loopback unless
// allowed. IPv4-mapped IPv6 addresses are judged as the IPv4 address. InvalidArgument for a
// malformed upstream, PermissionDenied with the reason for a refused one.
Result<void> checkUpstream(std::string_view upstream, const UpstreamPolicy& policy);

// InvalidArgument unless `network` is an IP address or a CIDR network with a prefix length that
// fits its family.
Result<void> validateNetwork(std::string_view network);

}  // namespace kasm::agent
