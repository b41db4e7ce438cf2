#pragma once

// A web terminal for tests: frames over a socketpair to a backend's serve() running on a thread of
// its own, the way a gateway runs it. Pins in memory stand in for the gateway's.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backends/ssh/ssh_frames.hpp"
#include "kasm/spi/desktop_gateway.hpp"

namespace kasm::ssh::testing {

class MemoryPins final : public spi::GatewayPins {
 public:
  Result<void> check(std::string_view key, std::string_view fingerprint) override {
    std::lock_guard lock(mu_);
    auto [it, inserted] = pins_.try_emplace(std::string(key), std::string(fingerprint));
    if (inserted || it->second == fingerprint) return okResult();
    return permissionDenied("pinned " + it->second + ", presented " + std::string(fingerprint));
  }
  void pin(const std::string& key, const std::string& fingerprint) {
    std::lock_guard lock(mu_);
    pins_[key] = fingerprint;
  }
  std::optional<std::string> pinned(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = pins_.find(key);
    return it == pins_.end() ? std::nullopt : std::optional<std::string>(it->second);
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string, std::less<>> pins_;
};

class TerminalTestClient {
 public:
  TerminalTestClient(spi::GatewayBackend& backend, spi::GatewayRequest request, spi::GatewayPins& pins) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
    fd_ = fds[0];
    thread_ = std::thread([&backend, &pins, request = std::move(request), gateway_fd = fds[1], this] {
      auto served = backend.serve(request, gateway_fd, pins);
      ::close(gateway_fd);  // The caller's part, as in the gateway.
      std::lock_guard lock(mu_);
      served_ = std::move(served);
    });
  }
  ~TerminalTestClient() {
    closeClient();
    if (thread_.joinable()) thread_.join();
  }

  void send(const std::string& bytes) { (void)::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  void type(std::string_view text) { send(encodeFrame(FrameType::kInput, text)); }
  void resize(std::uint16_t columns, std::uint16_t rows) { send(encodeResize({columns, rows})); }
  // The browser leaving.
  void closeClient() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // The next frame, or nullopt at the end of the stream or after `timeout`.
  std::optional<Frame> next(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pending_.empty() && !ended_) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[16384];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        ended_ = true;
        break;
      }
      auto fed = reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)), pending_);
      if (!fed.ok()) {
        protocol_error_ = fed.error().message();
        ended_ = true;
      }
    }
    if (pending_.empty()) return std::nullopt;
    Frame f = std::move(pending_.front());
    pending_.erase(pending_.begin());
    if (f.type == FrameType::kOutput) output_ += f.payload;
    return f;
  }

  // Reads frames until one of `type` comes (returned) or the stream ends / times out (nullopt).
  std::optional<Frame> nextOf(FrameType type, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto f = next(left);
      if (!f) return std::nullopt;
      if (f->type == type) return f;
      others_.push_back(*f);
    }
  }

  // Reads until the terminal's output contains `text`.
  bool waitForOutput(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output_.find(text) == std::string::npos) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      auto f = next(left);
      if (!f) return false;
      if (f->type != FrameType::kOutput) others_.push_back(*f);
    }
    return true;
  }

  // Waits for serve() to return and gives its result.
  Result<void> served() {
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mu_);
    return served_.value_or(internalError("serve() did not return"));
  }

  const std::string& output() const { return output_; }
  const std::vector<Frame>& others() const { return others_; }
  bool ended() const { return ended_; }
  const std::string& protocolError() const { return protocol_error_; }

 private:
  int fd_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::optional<Result<void>> served_;
  FrameReader reader_;
  std::vector<Frame> pending_;
  std::vector<Frame> others_;
  std::string output_;
  bool ended_ = false;
  std::string protocol_error_;
};

}  // namespace kasm::ssh::testing
