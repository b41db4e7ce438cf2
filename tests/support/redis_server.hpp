#pragma once

// Redis for the tests: the server scripts/test.sh starts (KASM_TEST_REDIS_URL), or a private
// redis-server a test starts, stops and restarts itself on a free loopback port.

#include <sys/types.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace kasm::testing {

// The URL of the test Redis server (KASM_TEST_REDIS_URL), if any.
inline std::optional<std::string> redisTestUrl() {
  const char* v = std::getenv("KASM_TEST_REDIS_URL");
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

// A key prefix no other test (or run) uses, so tests can share one Redis in parallel.
std::string uniqueRedisPrefix();

// A redis-server of the test's own, with a password and an append-only file written on every
// command (so a restart keeps the data). Stopped (SIGKILL) and its directory removed on destruction.
class PrivateRedisServer {
 public:
  // nullopt (and why) when redis-server is missing or does not start.
  static std::optional<PrivateRedisServer> start(std::string* why_not);
  ~PrivateRedisServer();
  PrivateRedisServer(PrivateRedisServer&& o) noexcept;
  PrivateRedisServer& operator=(PrivateRedisServer&&) = delete;

  std::string url() const;  // redis://:<password>@127.0.0.1:<port>/0
  std::string urlWithPassword(const std::string& password) const;
  int port() const { return port_; }
  const std::string& password() const { return password_; }

  // SIGKILL, as a crash or an outage; the port stays free for restart().
  void kill();
  // Starts it again on the same port and directory; false when it does not answer within 10 s.
  bool restart();
  // Runs one command on a fresh connection; returns the reply as text ("" on error replies).
  std::string command(const std::vector<std::string>& argv) const;

 private:
  PrivateRedisServer() = default;
  bool launch();
  bool waitReady() const;

  std::string dir_;
  std::string password_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace kasm::testing
