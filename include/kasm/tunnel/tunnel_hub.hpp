#pragma once

// The server's end of agents' reverse tunnels (kasm/tunnel/protocol.hpp).
//
// An agent that the proxy cannot reach (NAT) opens a WebSocket to the installation and hands it to
// a hub (attach). The hub's gateway is a TCP listener that the proxy dials instead of the session's
// published address: the proxy writes a sealed open request (sealOpenRequest) naming the agent and
// the address as the agent sees it, the hub asks the agent to connect there, and from then on the
// connection carries the session's bytes both ways, whatever the protocol (HTTP, WebSocket, RFB).
// The proxy of any server of the installation dials the gateway of the server holding the tunnel,
// so a viewer may arrive anywhere; the seal (a key the installation's servers derive from its
// secret, expiring) keeps anyone else off the gateway.
//
// Threading: the hub runs its gateway and every tunnel's streams on one thread of its own; every
// member is thread-safe.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"
#include "kasm/net/web_socket.hpp"

namespace kasm::tunnel {

struct TunnelHubOptions {
  // Where the gateway listens. Other servers of the installation dial it: on several hosts, an
  // address they reach (the servers' private network), never one the internet reaches.
  std::string gateway_address = "127.0.0.1";
  std::uint16_t gateway_port = 0;  // 0: an ephemeral port (gatewayEndpoint() tells which).
  std::string key;                 // deriveTunnelKey(installation secret); at least 32 bytes.
  std::size_t max_streams_per_tunnel = 256;
  Duration open_timeout = std::chrono::seconds(15);                          // The agent's answer to an open request.
  Duration request_timeout = std::chrono::seconds(10);                       // The open request on the gateway.
  std::function<void(std::string_view event, std::string_view detail)> log;  // Optional.
  // An agent's tunnel closed and no newer one of it is attached here. On the hub's thread: must not
  // block. Optional.
  std::function<void(const AgentId&)> on_detached;
};

class TunnelHub {
 public:
  // Binds the gateway and starts the hub's thread. InvalidArgument for a short key or a bad
  // address, Unavailable when the port cannot be bound.
  static Result<std::unique_ptr<TunnelHub>> start(TunnelHubOptions options);
  ~TunnelHub();
  TunnelHub(const TunnelHub&) = delete;
  TunnelHub& operator=(const TunnelHub&) = delete;

  // Takes an agent's authorized tunnel WebSocket; returns its handlers for the server. A tunnel the
  // same agent held here before is closed (it reconnected).
  net::WebSocketHandlers attach(const AgentId& agent, std::shared_ptr<net::WebSocket> socket);

  // True while `agent`'s tunnel is attached here.
  bool holds(const AgentId& agent) const;
  // "address:port" of the gateway ("[v6]:port" for IPv6).
  std::string gatewayEndpoint() const;

  struct Stats {
    std::size_t tunnels = 0;
    std::size_t streams = 0;             // Open now.
    std::uint64_t streams_opened = 0;    // Since start.
    std::uint64_t requests_refused = 0;  // Bad seals, unknown agents, timeouts.
  };
  Stats stats() const;

  // Closes the gateway and every tunnel, joins the thread. Idempotent.
  void stop();

  struct Impl;

 private:
  explicit TunnelHub(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kasm::tunnel
