#pragma once

// kasm-server's desktop gateway (kasm/gateway/gateway.hpp): by default a kasm-gateway child
// process on loopback, started beside the server and restarted when it dies, so that RDP and SSH
// parsing never runs in the control plane's own process.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "kasm/core/result.hpp"

namespace kasm::server {

class GatewayProcess {
 public:
  // Starts `binary` with the key in `key_file`; waits (up to 10 s) for it to listen.
  static Result<std::unique_ptr<GatewayProcess>> spawn(std::string binary, std::string key_file);
  ~GatewayProcess();  // SIGTERM, then wait.
  GatewayProcess(const GatewayProcess&) = delete;
  GatewayProcess& operator=(const GatewayProcess&) = delete;

  // "127.0.0.1:port". When the child died, starts a new one first (at most every 5 s);
  // Unavailable when that fails.
  Result<std::string> address();

 private:
  GatewayProcess(std::string binary, std::string key_file)
      : binary_(std::move(binary)), key_file_(std::move(key_file)) {}
  Result<void> launchLocked();

  std::mutex mu_;
  std::string binary_;
  std::string key_file_;
  pid_t pid_ = -1;
  std::string address_;
  std::chrono::steady_clock::time_point last_launch_{};
};

// The kasm-gateway program beside this executable, or KASM_GATEWAY_BIN; empty when there is none.
std::string findGatewayBinary();

}  // namespace kasm::server
