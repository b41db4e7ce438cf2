#pragma once

// The command connections of a RedisShareDatabase: up to `max_open` connections, opened on demand
// and kept while healthy. A connection that failed, or that the server closed while it sat idle
// (a restarted Redis), is dropped and the next call opens a fresh one.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "backends/redis/redis_connection.hpp"

namespace kasm::redis {

class RedisPool {
 public:
  RedisPool(RedisEndpoint endpoint, std::shared_ptr<SSL_CTX> tls, Duration connect_timeout, Duration command_timeout,
            std::size_t max_open);

  // Runs the commands as one pipeline on one connection. Unavailable when Redis cannot be reached,
  // does not answer within the command timeout, or every connection stays busy that long.
  Result<std::vector<RedisReply>> run(const std::vector<RedisCommand>& commands);
  Result<RedisReply> run(const RedisCommand& command);

 private:
  Result<std::unique_ptr<RedisConnection>> take();
  void giveBack(std::unique_ptr<RedisConnection> conn);

  RedisEndpoint endpoint_;
  std::shared_ptr<SSL_CTX> tls_;
  Duration connect_timeout_;
  Duration command_timeout_;
  std::size_t max_open_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<RedisConnection>> idle_;
  std::size_t open_ = 0;  // Idle plus in use.
};

}  // namespace kasm::redis
