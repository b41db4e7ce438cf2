// The server's end of reverse tunnels (kasm/tunnel/tunnel_hub.hpp): a registry of attached agents,
// each with its Multiplexer, and the gateway that turns a sealed open request into a stream.

#include "kasm/tunnel/tunnel_hub.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <future>
#include <thread>
#include <unordered_map>

#include "tunnel/multiplexer.hpp"

namespace kasm::tunnel {

using detail::asio::ip::tcp;
namespace asio = detail::asio;
using detail::Awaitable;
using detail::Executor;
using detail::Multiplexer;
using detail::Socket;
using net::detail::kAwaitTuple;

struct TunnelHub::Impl {
  explicit Impl(TunnelHubOptions o) : options(std::move(o)), acceptor(io.get_executor()) {}

  struct Tunnel {
    std::shared_ptr<Multiplexer> mux;
    std::shared_ptr<net::WebSocket> socket;
    std::uint64_t generation = 0;
  };

  TunnelHubOptions options;
  asio::io_context io{1};
  asio::basic_socket_acceptor<tcp, Executor> acceptor;
  std::thread thread;
  std::string endpoint;
  mutable std::mutex mutex;
  std::unordered_map<AgentId, Tunnel> tunnels;  // Touched under `mutex`; muxes only on `io`.
  std::uint64_t next_generation = 1;
  std::atomic<std::uint64_t> refused{0};
  std::atomic<std::uint64_t> opened_before{0};  // Streams of tunnels already gone.
  std::atomic<bool> stopped{false};

  void log(std::string_view event, std::string_view detail) const {
    if (options.log) options.log(event, detail);
  }

  Awaitable<void> acceptLoop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kAwaitTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        continue;  // Out of descriptors and the like: the next accept may do.
      }
      asio::co_spawn(io, serveGateway(Socket(std::move(socket))), asio::detached);
    }
  }

  // Reads the open request without reading past its '\n' (the stream's first bytes follow it): it
  // peeks, then takes exactly the line.
  Awaitable<Result<std::string>> readRequest(Socket& socket) {
    asio::steady_timer deadline(io, options.request_timeout);
    bool timed_out = false;
    deadline.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) {
        timed_out = true;
        boost::system::error_code ignored;
        socket.cancel(ignored);
      }
    });
    std::string peeked(1024, '\0');
    for (;;) {
      auto [wec] = co_await socket.async_wait(tcp::socket::wait_read, kAwaitTuple);
      if (wec) co_return unavailable(timed_out ? "the open request did not come in time" : "the connection closed");
      boost::system::error_code ec;
      const std::size_t n = socket.receive(asio::buffer(peeked), tcp::socket::message_peek, ec);
      if (ec) co_return unavailable("the connection closed");
      if (n == 0) co_return unavailable("the connection closed before its open request");
      const auto nl = std::string_view(peeked.data(), n).find('\n');
      if (nl != std::string_view::npos) {
        std::string line(nl + 1, '\0');
        asio::read(socket, asio::buffer(line), ec);
        deadline.cancel();
        if (ec) co_return unavailable("the connection closed");
        line.pop_back();
        co_return line;
      }
      if (n == peeked.size()) co_return invalidArgument("the open request is longer than 1024 bytes");
      // Part of the line: wait for the rest (a short sleep keeps a byte-at-a-time sender cheap).
      asio::steady_timer pause(io, std::chrono::milliseconds(5));
      co_await pause.async_wait(kAwaitTuple);
      if (timed_out) co_return unavailable("the open request did not come in time");
    }
  }

  Awaitable<void> serveGateway(Socket socket) {
    auto line = co_await readRequest(socket);
    if (!line.ok()) {
      refused.fetch_add(1);
      co_return;
    }
    auto request =
        openSealedRequest(options.key, *line, std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now()));
    if (!request.ok()) {
      refused.fetch_add(1);
      log("tunnel_request_refused", request.error().message());
      co_return;
    }
    std::shared_ptr<Multiplexer> mux;
    {
      std::lock_guard lock(mutex);
      if (auto it = tunnels.find(request->agent); it != tunnels.end()) mux = it->second.mux;
    }
    if (!mux) {
      refused.fetch_add(1);
      log("tunnel_request_refused", "agent " + request->agent.str() + " holds no tunnel here");
      co_return;
    }
    mux->open(std::move(socket), std::move(request->target));
  }

  void detach(const AgentId& agent, std::uint64_t generation) {
    std::shared_ptr<Multiplexer> mux;
    {
      std::lock_guard lock(mutex);
      auto it = tunnels.find(agent);
      if (it == tunnels.end() || it->second.generation != generation) return;
      mux = std::move(it->second.mux);
      tunnels.erase(it);
    }
    opened_before.fetch_add(mux->streamsOpened());
    mux->closeAll();
    log("tunnel_closed", agent.str());
    if (options.on_detached) options.on_detached(agent);
  }
};

TunnelHub::TunnelHub(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TunnelHub::~TunnelHub() {
  stop();
}

Result<std::unique_ptr<TunnelHub>> TunnelHub::start(TunnelHubOptions options) {
  if (options.key.size() < 32) return invalidArgument("tunnel hub: the key must be at least 32 bytes");
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options.gateway_address, ec);
  if (ec) return invalidArgument("tunnel hub: '" + options.gateway_address + "' is not an IP address");
  auto impl = std::make_unique<Impl>(std::move(options));
  const tcp::endpoint ep(address, impl->options.gateway_port);
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return unavailable("tunnel hub: cannot listen on " + impl->options.gateway_address + ": " + ec.message());
  const auto bound = impl->acceptor.local_endpoint(ec);
  impl->endpoint =
      (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" + std::to_string(bound.port());
  asio::co_spawn(impl->io, impl->acceptLoop(), asio::detached);
  auto* raw = impl.get();
  impl->thread = std::thread([raw] {
    auto work = asio::make_work_guard(raw->io);
    raw->io.run();
  });
  return std::unique_ptr<TunnelHub>(new TunnelHub(std::move(impl)));
}

net::WebSocketHandlers TunnelHub::attach(const AgentId& agent, std::shared_ptr<net::WebSocket> socket) {
  auto& im = *impl_;
  Multiplexer::Options mo;
  mo.max_streams = im.options.max_streams_per_tunnel;
  mo.open_timeout = im.options.open_timeout;
  std::weak_ptr<net::WebSocket> weak = socket;
  auto mux = std::make_shared<Multiplexer>(
      im.io.get_executor(),
      [weak](std::string frame) {
        auto s = weak.lock();
        return s && s->sendBinary(std::move(frame));
      },
      nullptr, mo);
  std::uint64_t generation = 0;
  std::shared_ptr<Impl::Tunnel> previous;
  {
    std::lock_guard lock(im.mutex);
    generation = im.next_generation++;
    auto& slot = im.tunnels[agent];
    if (slot.mux) previous = std::make_shared<Impl::Tunnel>(std::move(slot));
    slot = Impl::Tunnel{mux, socket, generation};
  }
  if (previous) {
    // The agent reconnected: its old tunnel's streams are dead ends.
    asio::post(im.io, [previous, &im] {
      im.opened_before.fetch_add(previous->mux->streamsOpened());
      previous->mux->closeAll();
      previous->socket->close();
    });
  }
  im.log("tunnel_attached", agent.str());
  net::WebSocketHandlers h;
  h.on_binary = [&im, mux, weak](std::string_view message) {
    asio::post(im.io, [mux, weak, frame = std::string(message)] {
      if (auto r = mux->onFrame(frame); !r.ok()) {
        if (auto s = weak.lock()) s->close();
      }
    });
  };
  h.on_message = [weak](std::string_view) {
    if (auto s = weak.lock()) s->close();  // The protocol has no text messages.
  };
  h.on_close = [&im, agent, generation] {
    asio::post(im.io, [&im, agent, generation] { im.detach(agent, generation); });
  };
  return h;
}

bool TunnelHub::holds(const AgentId& agent) const {
  std::lock_guard lock(impl_->mutex);
  return impl_->tunnels.contains(agent);
}

std::string TunnelHub::gatewayEndpoint() const {
  return impl_->endpoint;
}

TunnelHub::Stats TunnelHub::stats() const {
  auto& im = *impl_;
  Stats st;
  std::vector<std::shared_ptr<Multiplexer>> muxes;
  {
    std::lock_guard lock(im.mutex);
    st.tunnels = im.tunnels.size();
    for (const auto& [id, t] : im.tunnels) muxes.push_back(t.mux);
  }
  // The counters are read on the hub's thread, where they change.
  auto done = std::make_shared<std::promise<std::pair<std::size_t, std::uint64_t>>>();
  auto result = done->get_future();
  if (im.stopped.load()) return st;
  asio::post(im.io, [done, muxes] {
    std::size_t open = 0;
    std::uint64_t opened = 0;
    for (const auto& m : muxes) {
      open += m->streamCount();
      opened += m->streamsOpened();
    }
    done->set_value({open, opened});
  });
  if (result.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return st;
  auto [open, opened] = result.get();
  st.streams = open;
  st.streams_opened = opened + im.opened_before.load();
  st.requests_refused = im.refused.load();
  return st;
}

void TunnelHub::stop() {
  auto& im = *impl_;
  if (im.stopped.exchange(true)) return;
  asio::post(im.io, [&im] {
    boost::system::error_code ec;
    im.acceptor.close(ec);
    std::unordered_map<AgentId, Impl::Tunnel> all;
    {
      std::lock_guard lock(im.mutex);
      all.swap(im.tunnels);
    }
    for (auto& [id, t] : all) {
      t.mux->closeAll();
      t.socket->close();
    }
    im.io.stop();
  });
  if (im.thread.joinable()) im.thread.join();
}

}  // namespace kasm::tunnel
