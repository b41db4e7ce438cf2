// DeadlineSweeper: one periodic timer per io_context enforcing the deadlines of its TimedSockets.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>

#include "net/net_detail.hpp"

namespace kasm::net::detail {

DeadlineSweeper::DeadlineSweeper(asio::execution_context& ctx)
    : execution_context_service_base(ctx), timer_(static_cast<asio::io_context&>(ctx)) {}

void DeadlineSweeper::shutdown() {
  std::lock_guard lock(mutex_);
  shut_down_ = true;
  sockets_.clear();
}

void DeadlineSweeper::add(TimedSocket* socket) {
  bool grow = false;
  {
    std::lock_guard lock(mutex_);
    if (shut_down_) return;
    socket->sweep_index_ = sockets_.size();
    sockets_.push_back(socket);
    if (!running_) {
      running_ = true;
      arm();
    }
    // Each TimedSocket may hold one reactor state: keep a batch's worth ahead of them.
    grow = !growing_ && sockets_.size() + kPoolBatch / 4 > pool_;
    growing_ = growing_ || grow;
  }
  if (grow) growReactorPool();
}

void DeadlineSweeper::growReactorPool() {
  // Opening registers each socket with this context's reactor; closing them all puts their states
  // on the reactor's free list, where the next connections take them. A descriptor limit reached
  // midway grows the pool by less (the states still come in one run).
  auto& ioc = static_cast<asio::io_context&>(context());
  std::vector<tcp::socket> batch;
  batch.reserve(kPoolBatch);
  for (std::size_t i = 0; i < kPoolBatch; ++i) {
    tcp::socket s(ioc);
    beast::error_code ec;
    s.open(tcp::v4(), ec);
    if (ec) break;
    batch.push_back(std::move(s));
  }
  const std::size_t grown = batch.size();
  batch.clear();  // Closes them.
  std::lock_guard lock(mutex_);
  // Sockets open meanwhile took states of their own: the pool covers at least what is open now.
  pool_ = std::max(pool_, sockets_.size()) + grown;
  growing_ = false;
}

void DeadlineSweeper::remove(TimedSocket* socket) {
  std::lock_guard lock(mutex_);
  // O(1): swap with the last and fix its index.
  const std::size_t i = socket->sweep_index_;
  if (i >= sockets_.size() || sockets_[i] != socket) return;  // After shutdown().
  sockets_[i] = sockets_.back();
  sockets_[i]->sweep_index_ = i;
  sockets_.pop_back();
}

// Called with mutex_ held.
void DeadlineSweeper::arm() {
  timer_.expires_after(kSweepPeriod);
  timer_.async_wait([this](beast::error_code ec) {
    if (ec) return;
    sweep();
  });
}

void DeadlineSweeper::sweep() {
  const auto now = deadlineClockNs();
  std::lock_guard lock(mutex_);
  if (shut_down_) return;
  for (auto* s : sockets_) s->expireIfDue(now);
  // The timer runs only while there is something to watch, so an idle io_context can finish.
  if (sockets_.empty()) {
    running_ = false;
    return;
  }
  arm();
}

// Keep-alive probes after `idle` of silence, every `interval`, three unanswered ones end it.
void setKeepAlive(Socket& socket, Duration idle, Duration interval) {
  if (idle.count() <= 0) return;
  const int fd = socket.native_handle();
  const int on = 1;
  const int idle_s =
      static_cast<int>(std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(idle).count()));
  const int interval_s =
      static_cast<int>(std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(interval).count()));
  const int probes = 3;
  (void)::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s);
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
}

}  // namespace kasm::net::detail
