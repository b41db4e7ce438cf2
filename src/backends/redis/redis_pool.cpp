#include "backends/redis/redis_pool.hpp"

namespace kasm::redis {

RedisPool::RedisPool(RedisEndpoint endpoint, std::shared_ptr<SSL_CTX> tls, Duration connect_timeout,
                     Duration command_timeout, std::size_t max_open)
    : endpoint_(std::move(endpoint)),
      tls_(std::move(tls)),
      connect_timeout_(connect_timeout),
      command_timeout_(command_timeout),
      max_open_(std::max<std::size_t>(1, max_open)) {}

Result<std::unique_ptr<RedisConnection>> RedisPool::take() {
  std::unique_lock lk(mu_);
  const auto deadline = std::chrono::steady_clock::now() + command_timeout_;
  for (;;) {
    while (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      if (!conn->closedWhileIdle()) return conn;
      --open_;
    }
    if (open_ < max_open_) break;
    if (!cv_.wait_until(lk, deadline, [&] { return !idle_.empty() || open_ < max_open_; })) {
      return unavailable("redis: all " + std::to_string(max_open_) + " connections stayed busy for " +
                         std::to_string(command_timeout_.count()) + " ms");
    }
  }
  ++open_;
  lk.unlock();
  auto conn = RedisConnection::open(endpoint_, tls_.get(), connect_timeout_, command_timeout_);
  if (!conn.ok()) {
    lk.lock();
    --open_;
    cv_.notify_one();
  }
  return conn;
}

void RedisPool::giveBack(std::unique_ptr<RedisConnection> conn) {
  std::lock_guard lk(mu_);
  if (conn->broken()) {
    --open_;
  } else {
    idle_.push_back(std::move(conn));
  }
  cv_.notify_one();
}

Result<std::vector<RedisReply>> RedisPool::run(const std::vector<RedisCommand>& commands) {
  KASM_ASSIGN_OR_RETURN(auto conn, take());
  auto replies = conn->run(commands);
  giveBack(std::move(conn));
  return replies;
}

Result<RedisReply> RedisPool::run(const RedisCommand& command) {
  KASM_ASSIGN_OR_RETURN(auto replies, run(std::vector<RedisCommand>{command}));
  return std::move(replies.front());
}

}  // namespace kasm::redis
