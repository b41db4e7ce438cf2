#pragma once

// One connection to Redis: a blocking socket with poll() deadlines (TLS through OpenSSL for
// rediss://), commands encoded by hiredis's redisFormatCommandArgv and replies parsed by its
// redisReader. hiredis 0.14 has no TLS and no timeouts we could use on our own socket, so only its
// RESP pieces are used.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace kasm::redis {

// What a redis:// or rediss:// URL says: redis[s]://[[user]:password@]host[:port][/db].
struct RedisEndpoint {
  std::string host;
  std::uint16_t port = 6379;
  std::string username;  // Empty: AUTH <password> (the default user).
  std::string password;  // Empty: no AUTH.
  int db = 0;
  bool tls = false;
};

Result<RedisEndpoint> parseRedisUrl(std::string_view url);

// A reply as plain values (hiredis's reply tree, copied).
struct RedisReply {
  enum class Type { kString, kArray, kInteger, kNil, kStatus, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError.
  long long integer = 0;
  std::vector<RedisReply> elements;

  bool isError() const { return type == Type::kError; }
};

using RedisCommand = std::vector<std::string>;
using SteadyTime = std::chrono::steady_clock::time_point;

class RedisConnection {
 public:
  // Connects within `connect_timeout`, then AUTH and SELECT (each within `command_timeout`).
  // Unavailable when Redis cannot be reached; Unauthenticated when it refuses the password.
  // `tls` is the client context for rediss:// (null for redis://).
  static Result<std::unique_ptr<RedisConnection>> open(const RedisEndpoint& endpoint, SSL_CTX* tls,
                                                       Duration connect_timeout, Duration command_timeout);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends the commands in one write and reads one reply each (a pipeline). An error reply is a
  // reply; an I/O error or timeout is an error result and leaves the connection broken().
  Result<std::vector<RedisReply>> run(const std::vector<RedisCommand>& commands);
  Result<RedisReply> run(const RedisCommand& command);

  // For the subscriber: send without waiting, and read the next reply (nullopt when none arrived
  // before `deadline`).
  Result<void> send(const std::vector<RedisCommand>& commands, SteadyTime deadline);
  Result<std::optional<RedisReply>> read(SteadyTime deadline);

  int fd() const noexcept { return fd_; }
  bool broken() const noexcept { return broken_; }
  // True when the peer closed the connection or sent something unasked while it sat idle in a pool.
  bool closedWhileIdle() const;

  Duration commandTimeout() const noexcept { return command_timeout_; }

 private:
  RedisConnection(int fd, Duration command_timeout);
  Result<void> writeAll(const std::string& data, SteadyTime deadline);
  // Reads what is available into the parser; false on timeout.
  Result<bool> readSome(SteadyTime deadline);
  std::optional<RedisReply> takeReply();
  Result<void> handshakeTls(SSL_CTX* ctx, const std::string& host, SteadyTime deadline);
  Error fail(Error e);

  int fd_ = -1;
  Duration command_timeout_;
  SSL* ssl_ = nullptr;
  void* reader_ = nullptr;  // redisReader*.
  bool broken_ = false;
};

// The client TLS context for rediss://: verifies the server against `ca_file` (or the system's CAs
// when empty) unless `insecure`.
Result<std::shared_ptr<SSL_CTX>> makeTlsContext(const std::string& ca_file, bool insecure);

}  // namespace kasm::redis
