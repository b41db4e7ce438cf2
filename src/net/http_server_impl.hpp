#pragma once

// Internal to kasm::net: the HTTP server's state, shared by its two translation units:
// http_server.cpp (accepting, each connection's request loop, start and stop) and http_handler.cpp
// (the application handler's path, and the small responses the server and the proxy write).

#include <condition_variable>
#include <optional>
#include <thread>
#include <unordered_map>

#include "kasm/net/http_server.hpp"
#include "net/net_detail.hpp"

namespace kasm::net {

namespace detail {
struct Connection;
}  // namespace detail

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  std::shared_ptr<SessionProxy> proxy;
  std::unique_ptr<BlockingPool> pool;
  std::optional<detail::asio::ssl::context> ssl;
  std::atomic<bool> stopping{false};
  std::mutex stop_mutex;
  bool stopped = false;
  std::uint16_t port = 0;

  std::mutex conns_mutex;
  std::condition_variable conns_changed;
  std::uint64_t next_conn_id = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<detail::Connection>> conns;
  // Open connections per client address (only with max_connections_per_address).
  std::unordered_map<std::string, std::size_t> per_address;
  // Memory given back (see connectionClosed): the most connections open since the last trim.
  std::size_t conns_peak = 0;
  std::chrono::steady_clock::time_point last_trim{};

  // Called with conns_mutex held when a connection is gone; true when the heap should be trimmed.
  bool connectionClosed();

  // Declared after everything the connection coroutines use, so they are destroyed (with the
  // coroutine frames still queued in them) first. One io_context per I/O thread, as nginx runs one
  // event loop per worker: a connection lives on one thread, without strands or cross-thread
  // wake-ups; the acceptor hands connections out round-robin.
  std::vector<std::unique_ptr<detail::asio::io_context>> contexts;
  std::vector<detail::asio::executor_work_guard<detail::asio::io_context::executor_type>> work;
  std::size_t next_context = 0;
  std::optional<detail::tcp::acceptor> acceptor;
  std::vector<std::thread> threads;

  detail::Awaitable<> acceptLoop();
  detail::Awaitable<> serve(std::shared_ptr<detail::Connection> conn);
  detail::Awaitable<bool> serveHandler(detail::Connection& conn, detail::beast::flat_buffer& buffer,
                                       detail::HeaderParser& parser);
  void closeConnections(bool only_idle);
};

namespace detail {

// One client connection. A VNC bridge may keep it alive after its request loop returned
// (ClientContext::handed_over); it leaves the server's table when the last owner lets it go.
struct Connection {
  Connection(HttpServer::Impl& s, Socket&& socket) : server(s), transport(std::move(socket)) {}
  ~Connection();
  HttpServer::Impl& server;
  Transport transport;
  std::uint64_t id = 0;
  std::string remote;
  bool counted = false;  // In server.per_address.
  std::shared_ptr<void> proxy_state;
  std::unique_ptr<MessageHead> head;  // The proxy fast path's scanned request head.
  bool idle = true;                   // Waiting for the next request; touched only on the connection's strand.
};

// Whether a failed read only means the client went away (nothing is owed to it).
bool isQuietClose(const beast::error_code& ec);

}  // namespace detail
}  // namespace kasm::net
