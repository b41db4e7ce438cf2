#pragma once

// Internal to kasm::ssh: the gateway's side of the framed stream to the web terminal (through the
// session proxy), and the one wait of a connection, on the SSH socket and this stream together.
//
// The stream is read only when poll() says it has bytes, one recv at a time, and its frames are
// applied at once: input is queued for the shell (bounded: past kMaxPendingInput the stream is not
// read until the shell takes some), a resize is remembered (the last one wins), a ping is answered.
// Writes block: a browser that reads slowly slows the relay down, which in turn stops reading the
// SSH channel, so the server's window applies the back pressure.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "backends/ssh/ssh_frames.hpp"
#include "kasm/core/result.hpp"

namespace kasm::ssh {

inline constexpr std::size_t kMaxPendingInput = 256 * 1024;

class BrowserStream {
 public:
  BrowserStream(int fd, TerminalSize initial) : fd_(fd), size_(initial) {}

  int fd() const noexcept { return fd_; }
  // The browser closed its side (or the stream failed): nothing more is read or written.
  bool closed() const noexcept { return closed_; }
  // Whether to poll the stream for more input now.
  bool wantsInput() const noexcept { return !closed_ && pending_input_.size() < kMaxPendingInput; }

  // Reads what is available (one recv, without blocking) and applies its frames. InvalidArgument
  // on a protocol error (the browser sent something that is not our frames); a closed stream is
  // not an error (see closed()).
  Result<void> readAvailable();

  // Input not yet written to the shell; the caller erases what it wrote.
  std::string& pendingInput() noexcept { return pending_input_; }
  // The size last asked for, once; nullopt when none came since the last call.
  std::optional<TerminalSize> takeResize();
  // The latest size (the initial one until a resize comes).
  TerminalSize size() const noexcept { return size_; }

  Result<void> sendOutput(std::string_view bytes);
  Result<void> sendReady(std::string_view json);
  Result<void> sendError(std::string_view text);
  Result<void> sendExit(std::int32_t status);

 private:
  Result<void> apply(Frame& frame);
  Result<void> sendAll(std::string_view bytes);

  int fd_;
  TerminalSize size_;
  bool resized_ = false;
  bool closed_ = false;
  FrameReader reader_;
  std::string pending_input_;
};

using Deadline = std::optional<std::chrono::steady_clock::time_point>;

// Waits until `fd` shows one of `events` (POLLIN, POLLOUT) or the browser sends something, serving
// the browser meanwhile (readAvailable). Returns the revents of `fd` (0 when only the browser woke
// the wait, or it closed: check browser.closed()). DeadlineExceeded when `deadline` passes first;
// the browser's protocol errors as they are. No deadline: waits as long as it takes.
Result<short> waitForSocket(int fd, short events, BrowserStream& browser, Deadline deadline);

}  // namespace kasm::ssh
