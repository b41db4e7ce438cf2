#pragma once

// The one subscriber connection of a RedisShareDatabase and the thread that reads it. Channels are
// reference counted: SUBSCRIBE when the first local subscriber of a channel arrives, UNSUBSCRIBE
// after the last. The thread never runs user code: it hands what it reads to the SubscriberHub,
// whose own thread calls the callbacks. On a lost connection it reconnects with backoff (100 ms
// doubling to 2 s), subscribes every channel again and reports availability through the hub.

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/redis/redis_connection.hpp"

namespace kasm::redis {

class RedisSubscriber {
 public:
  struct Settings {
    RedisEndpoint endpoint;
    std::shared_ptr<SSL_CTX> tls;
    Duration connect_timeout{1000};
    Duration command_timeout{2000};
  };
  // Called on the reading thread for each published message: (channel, payload).
  using MessageHandler = std::function<void(const std::string& channel, std::string payload)>;
  // Called on the reading thread on each change of availability after the first connection.
  using AvailabilityHandler = std::function<void(bool available)>;

  RedisSubscriber(Settings settings, MessageHandler on_message, AvailabilityHandler on_availability);
  ~RedisSubscriber();
  // Stops and joins the thread (within about the connect timeout when it is connecting); no handler
  // runs after it returns. Idempotent.
  void stop();

  // Waits until the first connection is up, at most `timeout`; false when it is not.
  bool waitUntilAvailable(Duration timeout);
  // Takes a reference on `channel`; the first one subscribes and waits for Redis to confirm.
  // Unavailable (and no reference taken) when the connection is down or Redis does not confirm.
  Result<void> acquire(const std::string& channel);
  void release(const std::string& channel);
  bool available() const;

 private:
  struct Channel {
    int refs = 0;     // Local subscribers.
    int pending = 0;  // SUBSCRIBEs sent and not confirmed yet; live when 0 and refs > 0.
  };
  void run();
  // Reads and handles replies until the connection fails or stop; returns why it ended.
  Error serve(RedisConnection& conn);
  void handle(RedisReply reply, bool& pong_pending);
  // With mu_ held.
  void setAvailable(bool available);
  bool allConfirmed() const;
  void wake();

  Settings settings_;
  MessageHandler on_message_;
  AvailabilityHandler on_availability_;
  int wake_fd_ = -1;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Channel> channels_;
  std::vector<RedisCommand> outbox_;
  bool connected_ = false;  // The connection is up (it may still be re-subscribing).
  bool available_ = false;  // Up and every channel confirmed.
  bool ever_available_ = false;
  bool stop_ = false;
  std::mutex join_mu_;
  std::thread thread_;
};

}  // namespace kasm::redis
