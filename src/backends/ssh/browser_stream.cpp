#include "backends/ssh/browser_stream.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace kasm::ssh {

Result<void> BrowserStream::readAvailable() {
  if (closed_) return okResult();
  char buf[16 * 1024];
  ssize_t n;
  do {
    n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return okResult();
  if (n <= 0) {
    // End of stream or a reset: either way the browser is gone.
    closed_ = true;
    return okResult();
  }
  std::vector<Frame> frames;
  auto fed = reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)), frames);
  // Frames completed before a bad one still count: the browser meant them.
  for (auto& frame : frames) KASM_RETURN_IF_ERROR(apply(frame));
  return fed;
}

Result<void> BrowserStream::apply(Frame& frame) {
  switch (frame.type) {
    case FrameType::kInput:
      if (pending_input_.empty()) {
        pending_input_ = std::move(frame.payload);
      } else {
        pending_input_ += frame.payload;
      }
      return okResult();
    case FrameType::kResize: {
      KASM_ASSIGN_OR_RETURN(auto size, decodeResize(frame.payload));
      size_ = size;
      resized_ = true;
      return okResult();
    }
    case FrameType::kPing: return sendAll(encodeFrame(FrameType::kPong, frame.payload));
    default:
      return invalidArgument("the browser sent a " + std::string(frameTypeName(frame.type)) +
                             " frame, which only the gateway sends");
  }
}

std::optional<TerminalSize> BrowserStream::takeResize() {
  if (!resized_) return std::nullopt;
  resized_ = false;
  return size_;
}

Result<void> BrowserStream::sendAll(std::string_view bytes) {
  if (closed_) return failedPrecondition("the browser closed the terminal");
  while (!bytes.empty()) {
    // MSG_NOSIGNAL: a browser gone away is an error to handle, not a SIGPIPE for the process.
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      closed_ = true;
      return unavailable(std::string("writing to the browser failed: ") + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return okResult();
}

Result<void> BrowserStream::sendOutput(std::string_view bytes) {
  std::string frames;
  appendChunked(frames, FrameType::kOutput, bytes);
  return sendAll(frames);
}

Result<void> BrowserStream::sendReady(std::string_view json) {
  return sendAll(encodeFrame(FrameType::kReady, json));
}

Result<void> BrowserStream::sendError(std::string_view text) {
  // A message for people is short; one that is not is cut rather than split into frames.
  return sendAll(encodeFrame(FrameType::kError, text.substr(0, kMaxFramePayload)));
}

Result<void> BrowserStream::sendExit(std::int32_t status) {
  return sendAll(encodeExit(status));
}

Result<short> waitForSocket(int fd, short events, BrowserStream& browser, Deadline deadline) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return deadlineExceeded("timed out");
      timeout_ms = static_cast<int>(std::min<std::int64_t>(left.count(), 60'000));
    }
    pollfd fds[2] = {{fd, events, 0}, {browser.fd(), POLLIN, 0}};
    const nfds_t count = browser.wantsInput() ? 2 : 1;
    const int rc = ::poll(fds, count, timeout_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return internalError(std::string("poll failed: ") + std::strerror(errno));
    }
    if (rc == 0) continue;  // The deadline is checked at the top.
    if (count == 2 && fds[1].revents != 0) {
      KASM_RETURN_IF_ERROR(browser.readAvailable());
      if (fds[0].revents == 0) return short{0};
    }
    if (fds[0].revents != 0) return fds[0].revents;
  }
}

}  // namespace kasm::ssh
