#include "backends/redis/redis_subscriber.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace kasm::redis {
namespace {

using std::chrono::steady_clock;
constexpr Duration kFirstBackoff{100};
constexpr Duration kMaxBackoff{2000};
// With nothing heard for this long the thread sends a PING, so a dead peer (no FIN, no RST) is
// noticed within this plus the command timeout.
constexpr Duration kIdlePing{1000};

}  // namespace

RedisSubscriber::RedisSubscriber(Settings settings, MessageHandler on_message, AvailabilityHandler on_availability)
    : settings_(std::move(settings)),
      on_message_(std::move(on_message)),
      on_availability_(std::move(on_availability)),
      wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  thread_ = std::thread([this] { run(); });
}

RedisSubscriber::~RedisSubscriber() {
  stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void RedisSubscriber::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  wake();
  std::lock_guard lk(join_mu_);
  if (thread_.joinable()) thread_.join();
}

void RedisSubscriber::wake() {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

bool RedisSubscriber::available() const {
  std::lock_guard lk(mu_);
  return available_;
}

bool RedisSubscriber::waitUntilAvailable(Duration timeout) {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, timeout, [&] { return available_ || stop_; }) && available_;
}

bool RedisSubscriber::allConfirmed() const {
  for (const auto& [name, ch] : channels_) {
    if (ch.refs > 0 && ch.pending > 0) return false;
  }
  return true;
}

void RedisSubscriber::setAvailable(bool available) {
  if (available_ == available) return;
  available_ = available;
  cv_.notify_all();
  if (!ever_available_) {
    ever_available_ = true;  // The first connection is no change to report.
    return;
  }
  on_availability_(available);
}

Result<void> RedisSubscriber::acquire(const std::string& channel) {
  std::unique_lock lk(mu_);
  if (!connected_) return unavailable("redis: the subscriber connection is down");
  auto& ch = channels_[channel];
  if (++ch.refs == 1) {
    // Counted, not set: an earlier SUBSCRIBE of this channel may still await its confirmation.
    ++ch.pending;
    outbox_.push_back({"SUBSCRIBE", channel});
    wake();
  }
  if (cv_.wait_for(lk, settings_.command_timeout, [&] { return stop_ || !connected_ || ch.pending == 0; }) &&
      connected_ && !stop_) {
    return {};
  }
  lk.unlock();
  release(channel);
  return unavailable("redis: SUBSCRIBE " + channel + " was not confirmed");
}

void RedisSubscriber::release(const std::string& channel) {
  std::lock_guard lk(mu_);
  auto it = channels_.find(channel);
  if (it == channels_.end() || it->second.refs == 0) return;
  if (--it->second.refs > 0) return;
  if (connected_) {
    outbox_.push_back({"UNSUBSCRIBE", channel});
    wake();
  }
  if (it->second.pending == 0) channels_.erase(it);
}

void RedisSubscriber::run() {
  auto backoff = kFirstBackoff;
  std::unique_lock lk(mu_);
  while (!stop_) {
    lk.unlock();
    auto conn = RedisConnection::open(settings_.endpoint, settings_.tls.get(), settings_.connect_timeout,
                                      settings_.command_timeout);
    lk.lock();
    if (stop_) break;
    if (!conn.ok()) {
      setAvailable(false);
      cv_.wait_for(lk, backoff, [&] { return stop_; });
      backoff = std::min(backoff * 2, kMaxBackoff);
      continue;
    }
    backoff = kFirstBackoff;
    connected_ = true;
    outbox_.clear();  // Superseded by the SUBSCRIBE of everything below.
    RedisCommand subscribe{"SUBSCRIBE"};
    for (auto it = channels_.begin(); it != channels_.end();) {
      if (it->second.refs == 0) {
        it = channels_.erase(it);
        continue;
      }
      it->second.pending = 1;
      subscribe.push_back(it->first);
      ++it;
    }
    if (subscribe.size() > 1) {
      outbox_.push_back(std::move(subscribe));
    } else {
      setAvailable(true);
    }
    lk.unlock();
    Error why = serve(**conn);
    lk.lock();
    connected_ = false;
    for (auto& [name, ch] : channels_) ch.pending = 0;
    setAvailable(false);
    cv_.notify_all();
    if (!stop_) cv_.wait_for(lk, backoff, [&] { return stop_; });
  }
  connected_ = false;
  available_ = false;
  cv_.notify_all();
}

Error RedisSubscriber::serve(RedisConnection& conn) {
  auto last_heard = steady_clock::now();
  auto ping_sent = last_heard;
  bool pong_pending = false;
  std::vector<RedisCommand> commands;
  for (;;) {
    {
      std::lock_guard lk(mu_);
      if (stop_) return unavailable("redis: stopping");
      commands.swap(outbox_);
    }
    if (!commands.empty()) {
      auto sent = conn.send(commands, steady_clock::now() + settings_.command_timeout);
      if (!sent.ok()) return std::move(sent).error();
      commands.clear();
    }
    for (;;) {
      auto reply = conn.read(steady_clock::now());
      if (!reply.ok()) return std::move(reply).error();
      if (!*reply) break;
      last_heard = steady_clock::now();
      handle(std::move(**reply), pong_pending);
    }
    const auto now = steady_clock::now();
    if (pong_pending && now - ping_sent > settings_.command_timeout) return unavailable("redis: PING not answered");
    if (!pong_pending && now - last_heard > kIdlePing) {
      auto sent = conn.send({{"PING"}}, now + settings_.command_timeout);
      if (!sent.ok()) return std::move(sent).error();
      pong_pending = true;
      ping_sent = now;
    }
    pollfd fds[2] = {{conn.fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    ::poll(fds, 2, 250);
    if (fds[1].revents & POLLIN) {
      std::uint64_t n;
      [[maybe_unused]] auto r = ::read(wake_fd_, &n, sizeof n);
    }
  }
}

void RedisSubscriber::handle(RedisReply reply, bool& pong_pending) {
  if (reply.type == RedisReply::Type::kStatus && reply.str == "PONG") {
    pong_pending = false;
    return;
  }
  if (reply.type != RedisReply::Type::kArray || reply.elements.empty()) return;
  auto& e = reply.elements;
  const auto& kind = e[0].str;
  if (kind == "message" && e.size() == 3) {
    on_message_(e[1].str, std::move(e[2].str));
  } else if (kind == "subscribe" && e.size() >= 2) {
    std::lock_guard lk(mu_);
    auto it = channels_.find(e[1].str);
    if (it == channels_.end()) return;
    if (it->second.pending > 0) --it->second.pending;
    if (it->second.refs == 0 && it->second.pending == 0) channels_.erase(it);
    if (allConfirmed()) setAvailable(true);
    cv_.notify_all();
  } else if (kind == "pong") {
    pong_pending = false;
  }
}

}  // namespace kasm::redis
