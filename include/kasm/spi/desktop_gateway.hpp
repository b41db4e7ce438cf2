#pragma once

// Desktop gateways: what lets a browser reach a fixed server whose protocol it cannot speak (RDP,
// SSH). A gateway process (kasm-gateway, or any embedder's process through kasm::gateway::
// GatewayServer) accepts a stream from the session proxy, reads one sealed GatewayRequest ahead of
// it, and hands the stream to the backend registered for the request's protocol, which connects to
// the server and presents it on the stream in a form the proxy already relays:
//
//   "rdp": an RFB 3.8 server (security type None only), so the browser's VNC viewer and the proxy's
//          RFB bridge (view-only filtering, sharing) work unchanged. When the RDP connection cannot
//          be made (wrong credentials, refused certificate, server down), the backend answers the
//          RFB handshake with a failure whose reason says why, so the viewer shows it.
//   "ssh": framed terminal traffic for the web terminal (see src/backends/ssh/ssh_frames.hpp).
//
// Backends run one connection per serve() call, on a thread of their own; they must not assume
// anything about other calls running at the same time beyond what they share through their own
// state.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/result.hpp"

namespace kasm::spi {

// One connection a gateway is asked to make. Travels from kasm-server to the gateway sealed under
// the gateway's key (kasm::gateway::sealRequest), so it is both secret and authentic.
struct GatewayRequest {
  std::string protocol;  // The backend: "rdp", "ssh".
  std::string host;
  std::uint16_t port = 0;
  std::string username;
  std::string password;
  std::string domain;       // RDP only.
  std::string private_key;  // SSH only: an OpenSSH or PEM private key; empty = password only.
  // RDP security negotiation: "any" (the server chooses), "nla", "tls" or "rdp".
  std::string security = "any";
  // How the server's identity (RDP certificate, SSH host key) is checked: "pin" (trust on first
  // use, refuse a changed one; see GatewayPins) or "ignore" (RDP only; SSH always pins).
  std::string certificate_policy = "pin";
  std::uint16_t width = 1280;  // Initial desktop / terminal size in pixels (RDP) or cells (SSH).
  std::uint16_t height = 800;
  std::string keyboard_layout = "en-us";  // RDP: the layout announced to the server.
  std::string session_id;                 // For logs only.
};

// Identities of servers a gateway has seen (trust on first use), kept by the gateway. Keys look
// like "rdp:host:port" or "ssh:host:port"; fingerprints are "sha256:<hex>" of the certificate /
// host key.
class GatewayPins {
 public:
  virtual ~GatewayPins() = default;
  // OK when `fingerprint` is the one pinned for `key`, or when `key` has none yet (it is pinned
  // now). PermissionDenied naming both fingerprints when it changed.
  virtual Result<void> check(std::string_view key, std::string_view fingerprint) = 0;
};

// A protocol a gateway serves.
class GatewayBackend {
 public:
  virtual ~GatewayBackend() = default;
  virtual std::string_view protocol() const noexcept = 0;
  // Serves one connection until either side ends it. `client_fd` is a connected, blocking stream
  // socket to the proxy, positioned just after the request; the caller closes it after serve()
  // returns. Errors are for the gateway's log: the client has already been told, in its protocol.
  virtual Result<void> serve(const GatewayRequest& request, int client_fd, GatewayPins& pins) = 0;
};

using GatewayBackendFactory = std::function<std::unique_ptr<GatewayBackend>()>;

// Backends register by protocol name (typically from a static initializer in their component, or
// explicitly by the embedder). Thread-safe. Registering a name twice replaces the factory.
void registerGatewayBackend(std::string protocol, GatewayBackendFactory factory);
// The registered backend for `protocol`; NotFound listing the registered ones.
Result<std::unique_ptr<GatewayBackend>> makeGatewayBackend(std::string_view protocol);
std::vector<std::string> gatewayBackendNames();

}  // namespace kasm::spi
