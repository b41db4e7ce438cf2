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
// bridge does (vnc_bridge.hpp). An idle tunnel costs this object and two pending reads into its
// own 256-byte buffers; a relay buffer is taken only for a burst larger than that, and given back
// when the read would block. A TLS side keeps its relay buffer for the tunnel's life (the TLS
// stream may hold decrypted bytes its socket's readiness says nothing about).
//
// Why pending reads rather than waits for readability: Asio re-arms the descriptor with
// epoll_ctl for every wait it starts (async_wait never tries the socket first), two system calls
// per message relayed both ways, which nginx does not make. A read whose last attempt came back
// short is queued without trying the socket and without epoll_ctl, and the reactor reads into it
// when the bytes arrive.
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
  // What a silent side's pending read takes: a small message (a key, a pointer move, a chat
  // line, an echo) fits whole, so it is relayed without a relay buffer; a full one means more may
  // be waiting, and the burst goes on in a relay buffer.
  static constexpr std::size_t kInlineBytes = 256;

  // One direction: bytes read from `in`, written to `out`.
  struct Side {
    Side(Transport& from, Transport& to, bool client) : in(from), out(to), from_client(client) {}
    // Bytes read into `small` are relayed from there; a burst is read into a relay buffer, held
    // until the read would block.
    char* data() noexcept { return buf.held() ? buf.data() : small; }
    Transport& in;
    Transport& out;
    RelayBuffer buf;
    std::size_t begin = 0, end = 0;  // Read and not yet written, in data().
    bool from_client;
    bool waiting = false;  // A read, a wait until writable, a TLS operation or a yield is pending.
    // The last read came back short: the socket is empty, so the next read is the pending one.
    bool drained = false;
    char small[kInlineBytes];
  };

  void run();
  void pump(Side& s);
  // Writes what `s` holds; true when all went, false when a wait was started or the tunnel ended.
  bool flush(Side& s);
  // Leaves a read into `small` pending (a plain socket that has nothing to read now).
  void readPending(Side& s);
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
