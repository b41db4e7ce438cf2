#pragma once

// The agent's end of its reverse tunnel (kasm/tunnel/protocol.hpp): one WebSocket to the
// installation (through its load balancer, like the agent's other calls), kept open and reopened
// with a growing pause when it drops. The server asks for streams to its sessions' published
// addresses; the client connects only to addresses `allow` accepts.
//
// Threading: the client runs on a thread of its own; `allow` is called on another (it may block
// briefly, e.g. to list the agent's containers). start/stop/connected are thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"

namespace kasm::tunnel {

struct TunnelClientOptions {
  std::string server;                         // "https://host:port" or "http://host:port".
  std::string path = "/api/agent/v1/tunnel";  // The server's tunnel route.
  AgentId agent;
  std::function<std::string()> token;  // The agent's current token (it may be exchanged meanwhile).
  std::string boot_id;                 // This process's boot id, as its check-ins send it.
  std::string ca_file;                 // PEM bundle to verify the server with; empty: the system's.
  bool insecure = false;               // Skip certificate verification (tests only).
  // Whether the server may have this agent connect to `target` ("host:port"): an error's message
  // goes back to the server. Required.
  std::function<Result<void>(std::string_view target)> allow;
  std::function<void(std::string_view event, std::string_view detail)> log;  // Optional.
  Duration connect_timeout = std::chrono::seconds(10);
  Duration reconnect_min = std::chrono::seconds(1);
  Duration reconnect_max = std::chrono::seconds(30);
  std::size_t max_streams = 256;
};

class TunnelClient {
 public:
  // Starts the thread; the first connection is attempted at once. InvalidArgument for a server URL
  // that is not http(s)://host[:port] or a missing `allow`.
  static Result<std::unique_ptr<TunnelClient>> start(TunnelClientOptions options);
  ~TunnelClient();
  TunnelClient(const TunnelClient&) = delete;
  TunnelClient& operator=(const TunnelClient&) = delete;

  bool connected() const;
  std::uint64_t connects() const;  // Tunnels opened since start.
  // Closes the tunnel and its streams, joins the thread. Idempotent.
  void stop();

  struct Impl;

 private:
  explicit TunnelClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kasm::tunnel
