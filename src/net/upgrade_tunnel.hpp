#pragma once

// Internal to kasm::net: an upgrade the upstream accepted (a WebSocket, or any other protocol the
// client asked for), once its 101 went to the client, detached from the request that opened it.
//
// From the 101 on, the bytes are opaque and copied both ways. While this ran as two coroutines
// inside the request's own, every frame of that chain stayed suspended for the tunnel's whole life
// (a desktop's WebSocket lives for hours, mostly idle), and each message resumed a coroutine
// through Asio's awaitable machinery. Now the connection is handed to an UpgradeTunnel: a heap
// object that keeps the server's connection (the client's socket, the upstream's socket and the
// session's registration live there) and runs both directions as completion handlers, as the VNC
// bridge does (vnc_bridge.hpp). An idle tunnel costs this object and two pending waits for
// readability; a relay buffer is taken only when a side has bytes to read, and given back when the
// read would block. A TLS side keeps its buffer for the tunnel's life (the TLS stream may hold
// decrypted bytes its socket's readiness says nothing about).
//
// Threading: everything runs on the connection's I/O thread (one io_context per thread).
// closeSession reaches the upstream through the exchange's kept upstream slot, on that thread.

#include <memory>

#include "net/proxy_impl.hpp"

namespace kasm::net::detail {

class UpgradeTunnel : public std::enable_shared_from_this<UpgradeTunnel> {
 public:
  // Counts the tunnel in ProxyStats::open_tunnels until it is destroyed.
  UpgradeTunnel(SessionProxy::Impl& proxy, Transport& client, Transport& upstream, ExchangeGuard& guard);
  ~UpgradeTunnel();
  UpgradeTunnel(const UpgradeTunnel&) = delete;
  UpgradeTunnel& operator=(const UpgradeTunnel&) = delete;

  // Starts copying both ways and keeps `connection` (which owns both transports and `guard`) alive
  // until either side ends, when both sockets are closed. Must be called on the connection's
  // thread, on a tunnel owned by a shared_ptr.
  void start(std::shared_ptr<void> connection);

 private:
  // One direction: bytes read from `in`, written to `out`.
  struct Side {
    Side(Transport& from, Transport& to, bool client) : in(from), out(to), from_client(client) {}
    Transport& in;
    Transport& out;
    RelayBuffer buf;
    std::size_t begin = 0, end = 0;  // Read and not yet written.
    bool from_client;
    bool waiting = false;  // A wait (readable, writable, a TLS operation, a yield) is pending.
    // The last read found the socket empty and nothing returned to the event loop since: only then
    // is waiting for readability safe (Asio's epoll reactor is edge-triggered, so an edge that came
    // while nothing waited would be missed).
    bool drained = false;
  };

  void run();
  void pump(Side& s);
  // Writes what `s` holds; true when all went, false when a wait was started or the tunnel ended.
  bool flush(Side& s);
  void waitReadable(Side& s);
  void received(Side& s, std::size_t n);
  void finish();

  // Declared first, so destroyed last: the transports and the exchange live in it.
  std::shared_ptr<void> connection_;
  SessionProxy::Impl& proxy_;
  ExchangeGuard& guard_;
  Side up_;    // Client to upstream.
  Side down_;  // Upstream to client.
  bool done_ = false;
};

}  // namespace kasm::net::detail
