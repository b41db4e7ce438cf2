#pragma once

// The desktop gateway: a process (kasm-gateway) that connects to fixed RDP and SSH servers on
// behalf of the session proxy and presents them in forms the proxy relays (spi/desktop_gateway.hpp).
//
// The proxy opens a stream to the gateway and writes one line first:
//
//   "KASMGW1 " + seal(gateway key, "gateway-request", JSON of the GatewayRequest + expiry) + "\n"
//
// then relays the browser's bytes. The request is sealed (AES-256-GCM, auth/seal.hpp) under a key
// the gateway and kasm-server share, so it is secret (it carries the server's password) and
// authentic (nobody without the key can make the gateway connect anywhere), and it expires a
// minute after it was made, so a copy is of little use later.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"
#include "kasm/spi/desktop_gateway.hpp"

namespace kasm::gateway {

inline constexpr std::string_view kRequestPrefix = "KASMGW1 ";
inline constexpr std::size_t kMaxRequestLine = 64 * 1024;

// The first line for `request`, "\n" included. InvalidArgument when the key is shorter than 32
// bytes or the request lacks a protocol, host or port.
Result<std::string> sealRequest(std::string_view key, const spi::GatewayRequest& request, TimePoint now,
                                Duration valid_for = std::chrono::minutes(1));
// The request in `line` (with or without its "\n"). Unauthenticated when it is not a request
// sealed under `key`, or expired; InvalidArgument when it is malformed.
Result<spi::GatewayRequest> openRequest(std::string_view key, std::string_view line, TimePoint now);

// Pins kept in a file, one "key fingerprint" per line, written with mode 0600 (through a
// temporary file and rename, so a crash never leaves half a file). Thread-safe.
class FilePins final : public spi::GatewayPins {
 public:
  explicit FilePins(std::string path);
  Result<void> check(std::string_view key, std::string_view fingerprint) override;

 private:
  std::mutex mu_;
  std::string path_;
};

struct GatewayServerOptions {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 0;                        // 0: any free port (GatewayServer::port() says which).
  std::string key;                                      // At least 32 bytes; shared with kasm-server.
  std::string pins_file;                                // Where FilePins keeps server identities.
  std::size_t max_connections = 512;                    // Connections beyond are closed at once.
  Duration request_timeout = std::chrono::seconds(10);  // To send the request line.
};

// Accepts connections, reads and opens each one's request, and serves it with the backend
// registered for its protocol on a thread of its own. A connection whose request does not open is
// closed without a word (the sender is not the proxy).
class GatewayServer {
 public:
  static Result<std::unique_ptr<GatewayServer>> start(GatewayServerOptions options);
  ~GatewayServer();  // stop()
  GatewayServer(const GatewayServer&) = delete;
  GatewayServer& operator=(const GatewayServer&) = delete;

  std::uint16_t port() const noexcept;
  std::size_t activeConnections() const noexcept;
  // Stops accepting, shuts every connection down and waits for their threads.
  void stop();

  struct Impl;

 private:
  explicit GatewayServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kasm::gateway
