// DeadlineSweeper: one periodic timer per io_context enforcing the deadlines of its TimedSockets.

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
  std::lock_guard lock(mutex_);
  if (shut_down_) return;
  socket->sweep_index_ = sockets_.size();
  sockets_.push_back(socket);
  if (!running_) {
    running_ = true;
    arm();
  }
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

}  // namespace kasm::net::detail
