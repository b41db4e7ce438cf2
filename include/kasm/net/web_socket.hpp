#pragma once

// A WebSocket that kasm::net serves itself, as the application sees it: the proxy's app sockets
// (a shared session's chat, ProxyOptions::app_socket) and the server's own routes
// (HttpServerOptions::sockets, e.g. agents' reverse tunnels).

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace kasm::net {

class WebSocket {
 public:
  virtual ~WebSocket() = default;
  // Queues one text message to the client. Thread-safe; never blocks. False once the socket is
  // closed, or when the client fell so far behind (the route's queue limit) that it was closed.
  virtual bool send(std::string text) = 0;
  // Queues one binary message, likewise.
  virtual bool sendBinary(std::string bytes) = 0;
  // Bytes queued and not yet written: a producer of a live stream (audio) drops rather than queue
  // behind a slow client.
  virtual std::size_t queuedBytes() const = 0;
  // Closes the socket. Thread-safe, idempotent.
  virtual void close() = 0;
};

struct WebSocketHandlers {
  std::function<void(std::string_view text)> on_message;  // Each text message; on the I/O thread, must not block.
  std::function<void(std::string_view bytes)> on_binary;  // Each binary message; likewise.
  std::function<void()> on_close;                         // Once, after the socket is gone.
};

}  // namespace kasm::net
