#pragma once

// Internal to the tunnel: the streams of one tunnel, each a TCP socket on this side bridged to
// frames (kasm/tunnel/protocol.hpp). The same class serves both ends: the server opens streams for
// the proxy's connections (open), the agent dials the targets the server names (Dialer).
//
// Threading: every member runs on the executor given at construction (one thread): callers post
// frames there. The send function is called on it too and must not block.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "kasm/tunnel/protocol.hpp"
#include "net/net_detail.hpp"

namespace kasm::tunnel::detail {

namespace asio = net::detail::asio;
namespace beast = net::detail::beast;
using net::detail::Awaitable;
using net::detail::Executor;
using net::detail::Socket;
using net::detail::tcp;

class Multiplexer : public std::enable_shared_from_this<Multiplexer> {
 public:
  // Queues one frame for the peer; false when the tunnel is gone.
  using SendFrame = std::function<bool(std::string frame)>;
  // The agent's side: connects to a target the server named (a refusal's message goes back).
  using Dialer = std::function<Awaitable<Result<Socket>>(std::string target)>;

  struct Options {
    std::size_t max_streams = 256;
    Duration open_timeout = std::chrono::seconds(15);
  };

  Multiplexer(Executor ex, SendFrame send, Dialer dial, Options options);

  // Server side: bridges `socket` to a new stream that the agent connects to `target`. The socket
  // is closed if the agent refuses or does not answer within open_timeout.
  void open(Socket socket, std::string target);

  // One frame from the peer. An error means the peer broke the protocol: drop the tunnel.
  Result<void> onFrame(std::string_view message);

  // The tunnel is gone: every stream's socket is closed.
  void closeAll();

  std::size_t streamCount() const { return streams_.size(); }
  std::uint64_t streamsOpened() const { return opened_; }

 private:
  struct Stream;
  Awaitable<void> dialAndBridge(std::shared_ptr<Stream> s, std::string target);
  Awaitable<void> awaitOpened(std::shared_ptr<Stream> s);
  void startPumps(const std::shared_ptr<Stream>& s);
  Awaitable<void> reader(std::shared_ptr<Stream> s);
  Awaitable<void> writer(std::shared_ptr<Stream> s);
  // Ends a stream from this side: tells the peer (unless it ended it) and closes the socket.
  void finish(const std::shared_ptr<Stream>& s, std::string_view reason, bool tell_peer);

  Executor ex_;
  SendFrame send_;
  Dialer dial_;
  Options options_;
  std::map<std::uint32_t, std::shared_ptr<Stream>> streams_;
  std::uint32_t next_id_ = 1;
  std::uint64_t opened_ = 0;
  bool closed_ = false;
};

}  // namespace kasm::tunnel::detail
