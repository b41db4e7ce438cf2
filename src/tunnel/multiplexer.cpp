// The streams of one tunnel (multiplexer.hpp): per stream a reader that sends what the socket gives
// within the window the peer granted, and a writer that writes what the peer sent and credits it
// back once written.

#include "tunnel/multiplexer.hpp"

#include <deque>

namespace kasm::tunnel::detail {

using net::detail::kAwaitTuple;

struct Multiplexer::Stream {
  enum class Phase { kOpening, kOpen, kDone };
  Stream(Executor ex, std::uint32_t stream_id, Socket s)
      : id(stream_id),
        socket(std::move(s)),
        wake_reader(ex, asio::steady_timer::time_point::max()),
        wake_writer(ex, asio::steady_timer::time_point::max()),
        open_timer(ex, asio::steady_timer::time_point::max()) {}
  std::uint32_t id;
  Socket socket;
  Phase phase = Phase::kOpening;
  std::uint32_t send_window = kInitialWindow;  // Bytes this side may still send.
  std::size_t unwritten = 0;                   // Bytes the peer sent that are not written yet.
  std::deque<std::string> inbound;
  bool peer_closed = false;  // The peer sent kClose: write what it sent, then close.
  asio::steady_timer wake_reader, wake_writer, open_timer;
};

Multiplexer::Multiplexer(Executor ex, SendFrame send, Dialer dial, Options options)
    : ex_(ex), send_(std::move(send)), dial_(std::move(dial)), options_(options) {}

void Multiplexer::open(Socket socket, std::string target) {
  if (closed_ || streams_.size() >= options_.max_streams) {
    beast::error_code ec;
    socket.close(ec);
    return;
  }
  while (next_id_ == 0 || streams_.contains(next_id_)) ++next_id_;
  const std::uint32_t id = next_id_++;
  auto s = std::make_shared<Stream>(ex_, id, std::move(socket));
  streams_.emplace(id, s);
  if (!send_(encodeFrame(FrameType::kOpen, id, target))) {
    finish(s, "", false);
    return;
  }
  asio::co_spawn(
      ex_, [self = shared_from_this(), s] { return self->awaitOpened(s); }, asio::detached);
}

Awaitable<void> Multiplexer::awaitOpened(std::shared_ptr<Stream> s) {
  s->open_timer.expires_after(options_.open_timeout);
  co_await s->open_timer.async_wait(kAwaitTuple);
  if (s->phase == Stream::Phase::kOpening) finish(s, "the agent did not connect in time", true);
}

Awaitable<void> Multiplexer::dialAndBridge(std::shared_ptr<Stream> s, std::string target) {
  Result<Socket> dialled = unavailable("tunnel: no dialer");
  try {
    dialled = co_await dial_(target);
  } catch (...) {
    dialled = internalError("tunnel: the dialer failed");
  }
  if (s->phase != Stream::Phase::kOpening) co_return;  // The server gave up, or the tunnel went.
  if (!dialled.ok()) {
    std::string reason = dialled.error().message().substr(0, kMaxReason);
    finish(s, reason, true);
    co_return;
  }
  s->socket = std::move(*dialled);
  s->phase = Stream::Phase::kOpen;
  ++opened_;
  if (!send_(encodeFrame(FrameType::kOpened, s->id))) {
    finish(s, "", false);
    co_return;
  }
  startPumps(s);
}

void Multiplexer::startPumps(const std::shared_ptr<Stream>& s) {
  beast::error_code ec;
  s->socket.non_blocking(true, ec);
  s->socket.set_option(tcp::no_delay(true), ec);
  // Each coroutine keeps the multiplexer alive until it returns.
  asio::co_spawn(
      ex_, [self = shared_from_this(), s] { return self->reader(s); }, asio::detached);
  asio::co_spawn(
      ex_, [self = shared_from_this(), s] { return self->writer(s); }, asio::detached);
}

Awaitable<void> Multiplexer::reader(std::shared_ptr<Stream> s) {
  for (;;) {
    if (s->phase != Stream::Phase::kOpen) co_return;
    if (s->send_window == 0 && !s->peer_closed) {
      s->wake_reader.expires_at(asio::steady_timer::time_point::max());
      co_await s->wake_reader.async_wait(kAwaitTuple);
      continue;
    }
    // Readability first, without a buffer: an idle stream holds none.
    auto [wec] = co_await s->socket.async_wait(tcp::socket::wait_read, kAwaitTuple);
    if (s->phase != Stream::Phase::kOpen) co_return;
    if (wec) {
      finish(s, "", true);
      co_return;
    }
    const std::size_t want = s->peer_closed ? kMaxData : std::min<std::size_t>(s->send_window, kMaxData);
    std::string frame = encodeFrame(FrameType::kData, s->id);
    frame.resize(kHeaderBytes + want);
    beast::error_code ec;
    const std::size_t n = s->socket.read_some(asio::buffer(frame.data() + kHeaderBytes, want), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) continue;
    if (ec) {
      finish(s, "", true);
      co_return;
    }
    if (s->peer_closed) continue;  // The peer takes no more: what is read now goes nowhere.
    frame.resize(kHeaderBytes + n);
    s->send_window -= static_cast<std::uint32_t>(n);
    if (!send_(std::move(frame))) {
      finish(s, "", false);
      co_return;
    }
  }
}

Awaitable<void> Multiplexer::writer(std::shared_ptr<Stream> s) {
  for (;;) {
    if (s->phase == Stream::Phase::kDone) co_return;
    if (s->inbound.empty()) {
      if (s->peer_closed) {
        finish(s, "", false);  // Everything the peer sent is out.
        co_return;
      }
      s->wake_writer.expires_at(asio::steady_timer::time_point::max());
      co_await s->wake_writer.async_wait(kAwaitTuple);
      continue;
    }
    std::string data = std::move(s->inbound.front());
    s->inbound.pop_front();
    auto [ec, n] = co_await asio::async_write(s->socket, asio::buffer(data), kAwaitTuple);
    if (s->phase == Stream::Phase::kDone) co_return;
    if (ec) {
      finish(s, "", !s->peer_closed);
      co_return;
    }
    s->unwritten -= n;
    if (!s->peer_closed && !send_(encodeWindow(s->id, static_cast<std::uint32_t>(n)))) {
      finish(s, "", false);
      co_return;
    }
  }
}

void Multiplexer::finish(const std::shared_ptr<Stream>& s, std::string_view reason, bool tell_peer) {
  if (s->phase == Stream::Phase::kDone) return;
  s->phase = Stream::Phase::kDone;
  if (tell_peer && !closed_) (void)send_(encodeFrame(FrameType::kClose, s->id, reason.substr(0, kMaxReason)));
  beast::error_code ec;
  s->socket.close(ec);
  s->inbound.clear();
  s->wake_reader.cancel();
  s->wake_writer.cancel();
  s->open_timer.cancel();
  if (auto it = streams_.find(s->id); it != streams_.end() && it->second == s) streams_.erase(it);
}

Result<void> Multiplexer::onFrame(std::string_view message) {
  KASM_ASSIGN_OR_RETURN(Frame f, decodeFrame(message));
  if (f.type == FrameType::kOpen) {
    if (!dial_) return invalidArgument("tunnel: the agent sent an open request");
    if (streams_.contains(f.stream)) return invalidArgument("tunnel: an open request for a stream that is open");
    if (closed_) return {};
    if (streams_.size() >= options_.max_streams) {
      (void)send_(encodeFrame(FrameType::kClose, f.stream, "too many streams on this tunnel"));
      return {};
    }
    auto s = std::make_shared<Stream>(ex_, f.stream, Socket(ex_));
    streams_.emplace(f.stream, s);
    asio::co_spawn(
        ex_, [self = shared_from_this(), s, target = std::string(f.payload)] { return self->dialAndBridge(s, target); },
        asio::detached);
    return {};
  }
  auto it = streams_.find(f.stream);
  if (it == streams_.end()) return {};  // A stream this side ended; its peer's last frames cross.
  auto s = it->second;
  switch (f.type) {
    case FrameType::kOpened:
      if (dial_) return invalidArgument("tunnel: the server sent an opened frame");
      if (s->phase != Stream::Phase::kOpening) return invalidArgument("tunnel: a stream opened twice");
      s->phase = Stream::Phase::kOpen;
      ++opened_;
      s->open_timer.cancel();
      startPumps(s);
      return {};
    case FrameType::kData:
      if (s->phase != Stream::Phase::kOpen) return invalidArgument("tunnel: data on a stream not open");
      if (s->peer_closed) return invalidArgument("tunnel: data after the peer closed its stream");
      if (s->unwritten + f.payload.size() > kInitialWindow) {
        finish(s, "the peer sent more than its window", true);
        return {};
      }
      s->unwritten += f.payload.size();
      s->inbound.emplace_back(f.payload);
      s->wake_writer.cancel();
      return {};
    case FrameType::kWindow:
      if (static_cast<std::uint64_t>(s->send_window) + f.credit > kInitialWindow) {
        finish(s, "the peer credited more than was sent", true);
        return {};
      }
      s->send_window += f.credit;
      s->wake_reader.cancel();
      return {};
    case FrameType::kClose:
      if (s->phase != Stream::Phase::kOpen) {
        finish(s, "", false);  // Refused while opening (the reason is the peer's to log).
        return {};
      }
      s->peer_closed = true;
      s->wake_writer.cancel();
      s->wake_reader.cancel();
      return {};
    case FrameType::kOpen: break;
  }
  return {};
}

void Multiplexer::closeAll() {
  closed_ = true;
  auto streams = streams_;
  for (auto& [id, s] : streams) finish(s, "", false);
}

}  // namespace kasm::tunnel::detail
