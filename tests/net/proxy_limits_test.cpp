// What bounds the session proxy: an authorizer that throws costs its request a 500 (never the
// connection's thread, nor a request left hanging on the pool), tunnels are limited in number, and
// a tunnel in which nothing moves is closed after its idle timeout.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <filesystem>
#include <future>

#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"
#include "net/net_test_support.hpp"

namespace kasm::net {
namespace {

using namespace kasm::net::testing;

const UserId kUser("alice");

struct ProxyUnderTest {
  std::shared_ptr<SessionProxy> proxy;
  std::unique_ptr<HttpServer> server;
  std::uint16_t port() const { return server->port(); }
};

ProxyUnderTest startProxy(ProxyOptions options, HttpServerOptions server_options = {}) {
  auto proxy = SessionProxy::create(std::move(options));
  EXPECT_TRUE(proxy.ok()) << (proxy.ok() ? "" : proxy.error().toString());
  auto server = HttpServer::start(
      std::move(server_options), [](HttpRequest, Responder r) { r(HttpResponse::text(200, "app")); }, *proxy);
  EXPECT_TRUE(server.ok()) << (server.ok() ? "" : server.error().toString());
  return {*proxy, std::move(server).value()};
}

std::unique_ptr<websocket::stream<tcp::socket>> openWebSocket(asio::io_context& ioc, std::uint16_t port,
                                                              int* status = nullptr) {
  auto ws = std::make_unique<websocket::stream<tcp::socket>>(connectTo(ioc, port));
  websocket::response_type res;
  beast::error_code ec;
  ws->handshake(res, "127.0.0.1", "/desktop/s1/ws", ec);
  if (status) *status = res.result_int();
  return ec ? nullptr : std::move(ws);
}

TEST(ProxyLimits, AnAuthorizerThatThrowsAnswers500) {
  LoopbackListener upstream{serveHttpEcho};
  BlockingPool pool(1);
  for (bool on_pool : {false, true}) {
    for (bool quick : {false, true}) {
      ProxyOptions options;
      options.authorize = [&](const ProxyAuthRequest& r) -> Result<ProxyTarget> {
        if (r.session.str() == "boom") throw std::runtime_error("authorizer bug");
        return ProxyTarget{upstream.address(), SessionProtocol::kHttp, kUser};
      };
      if (quick) {
        options.authorize_quick = [](const ProxyAuthRequest& r) -> std::optional<Result<ProxyTarget>> {
          if (r.session.str() == "boom") throw 7;
          return std::nullopt;
        };
      }
      if (on_pool) options.blocking_pool = &pool;
      auto p = startProxy(std::move(options));
      for (int i = 0; i < 3; ++i) {  // More than the pool's one thread.
        EXPECT_EQ(httpGet(p.port(), "/desktop/boom/").result_int(), 500) << "pool " << on_pool << " quick " << quick;
        http::request<http::string_body> post{http::verb::post, "/desktop/boom/form", 11};
        post.body() = "x=1";
        EXPECT_EQ(httpRequest(p.port(), std::move(post)).result_int(), 500) << "the Beast path too";
      }
      EXPECT_EQ(httpGet(p.port(), "/desktop/fine/").result_int(), 200) << "pool " << on_pool << " quick " << quick;
    }
  }
}

TEST(ProxyLimits, UpgradesBeyondMaxTunnelsGet503) {
  LoopbackListener upstream{serveWebSocketEcho};
  ProxyOptions options;
  options.authorize = [&](const ProxyAuthRequest&) -> Result<ProxyTarget> {
    return ProxyTarget{upstream.address(), SessionProtocol::kHttp, kUser};
  };
  options.max_tunnels = 1;
  auto p = startProxy(std::move(options));
  asio::io_context ioc;
  auto first = openWebSocket(ioc, p.port());
  ASSERT_TRUE(first);
  first->write(asio::buffer(std::string("hello")));  // The tunnel is surely counted once it echoes.
  beast::flat_buffer buffer;
  first->read(buffer);

  int status = 0;
  EXPECT_FALSE(openWebSocket(ioc, p.port(), &status));
  EXPECT_EQ(status, 503);
  EXPECT_EQ(upstream.accepted(), 1) << "the refused upgrade never reached the container";

  first->close(websocket::close_code::normal);
  std::unique_ptr<websocket::stream<tcp::socket>> again;
  for (int i = 0; i < 100 && !again; ++i) {  // Bounded: the tunnel ends as soon as both sides close.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    again = openWebSocket(ioc, p.port());
  }
  EXPECT_TRUE(again) << "a closed tunnel frees its place";
}

TEST(ProxyLimits, AnIdleTunnelIsClosedAndABusyOneIsNot) {
  LoopbackListener upstream{serveWebSocketEcho};
  ProxyOptions options;
  options.authorize = [&](const ProxyAuthRequest&) -> Result<ProxyTarget> {
    return ProxyTarget{upstream.address(), SessionProtocol::kHttp, kUser};
  };
  options.tunnel_idle_timeout = std::chrono::milliseconds(400);
  auto p = startProxy(std::move(options));
  asio::io_context ioc;
  auto ws = openWebSocket(ioc, p.port());
  ASSERT_TRUE(ws);
  beast::flat_buffer buffer;
  // Busy for well over the timeout: a message every 100 ms keeps it open.
  for (int i = 0; i < 12; ++i) {
    ws->write(asio::buffer(std::string("tick")));
    buffer.clear();
    ws->read(buffer);
    ASSERT_EQ(beast::buffers_to_string(buffer.data()), "tick") << "message " << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Then silent: the proxy closes it, which ends the pending read with an error.
  std::promise<beast::error_code> read_result;
  std::thread reader([&] {
    buffer.clear();
    beast::error_code ec;
    ws->read(buffer, ec);
    read_result.set_value(ec);
  });
  auto outcome = read_result.get_future();
  const bool ended = outcome.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  if (!ended) {
    beast::error_code ignored;
    ws->next_layer().shutdown(tcp::socket::shutdown_both, ignored);  // Unblocks the reader.
  }
  reader.join();
  EXPECT_TRUE(ended) << "the idle tunnel was not closed";
  if (ended) {
    EXPECT_TRUE(outcome.get()) << "the read ended without an error";
  }
}

TEST(ProxyLimits, RefusesANegativeIdleTimeoutAndAMalformedAllowedOrigin) {
  ProxyOptions options;
  options.authorize = [](const ProxyAuthRequest&) -> Result<ProxyTarget> { return notFound("none"); };
  options.tunnel_idle_timeout = std::chrono::seconds(-1);
  EXPECT_EQ(SessionProxy::create(options).error().code(), ErrorCode::kInvalidArgument);
  options.tunnel_idle_timeout = {};
  options.upstream_keepalive_interval = std::chrono::seconds(-1);
  EXPECT_EQ(SessionProxy::create(options).error().code(), ErrorCode::kInvalidArgument);
  options.upstream_keepalive_interval = std::chrono::seconds(10);
  options.allowed_origins = {"portal.example"};
  EXPECT_EQ(SessionProxy::create(options).error().code(), ErrorCode::kInvalidArgument);
  options.allowed_origins = {"https://portal.example/path"};
  EXPECT_EQ(SessionProxy::create(options).error().code(), ErrorCode::kInvalidArgument);
  options.allowed_origins = {"https://portal.example:8443"};
  EXPECT_TRUE(SessionProxy::create(options).ok());
}

// The proxy's own end of an upstream connection, found among this process's descriptors (the
// proxy runs in the test's process): the TCP socket whose peer is `upstream_port` on loopback.
std::vector<int> socketsConnectedTo(std::uint16_t upstream_port) {
  std::vector<int> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    const int fd = std::atoi(entry.path().filename().c_str());
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0 || peer.sin_family != AF_INET) continue;
    if (ntohs(peer.sin_port) == upstream_port) out.push_back(fd);
  }
  return out;
}

// An agent host that vanishes without a word (powered off, its NAT state dropped) leaves the
// proxy's upstream connection half open: keep-alive probes find it, so its viewers' tunnels end
// and reconnect instead of showing a frozen desktop until the tunnel's idle timeout.
TEST(ProxyLimits, UpstreamConnectionsProbeTheirPeer) {
  LoopbackListener upstream{serveWebSocketEcho};
  for (int idle_s : {0, 45}) {
    ProxyOptions options;
    options.authorize = [&](const ProxyAuthRequest&) -> Result<ProxyTarget> {
      return ProxyTarget{upstream.address(), SessionProtocol::kHttp, kUser};
    };
    options.upstream_keepalive_idle = std::chrono::seconds(idle_s);
    options.upstream_keepalive_interval = std::chrono::seconds(7);
    auto p = startProxy(std::move(options));
    asio::io_context ioc;
    auto ws = openWebSocket(ioc, p.port());
    ASSERT_TRUE(ws);
    ws->write(asio::buffer(std::string("hello")));
    beast::flat_buffer buffer;
    ws->read(buffer);
    const auto fds = socketsConnectedTo(upstream.port());
    ASSERT_EQ(fds.size(), 1u) << "the proxy's one upstream connection";
    int on = -1, idle = -1, interval = -1, count = -1;
    socklen_t n = sizeof on;
    ASSERT_EQ(::getsockopt(fds[0], SOL_SOCKET, SO_KEEPALIVE, &on, &n), 0);
    if (idle_s == 0) {
      EXPECT_EQ(on, 0) << "zero turns the probes off";
      continue;
    }
    EXPECT_EQ(on, 1);
    ASSERT_EQ(::getsockopt(fds[0], IPPROTO_TCP, TCP_KEEPIDLE, &idle, &n), 0);
    ASSERT_EQ(::getsockopt(fds[0], IPPROTO_TCP, TCP_KEEPINTVL, &interval, &n), 0);
    ASSERT_EQ(::getsockopt(fds[0], IPPROTO_TCP, TCP_KEEPCNT, &count, &n), 0);
    EXPECT_EQ(idle, 45);
    EXPECT_EQ(interval, 7);
    EXPECT_EQ(count, 3);
  }
}

// A viewer that stops reading while the desktop keeps sending is disconnected after the write
// stall timeout, although it keeps sending itself (its traffic used to keep the tunnel's deadline
// moving, so the proxy held its buffers until the idle timeout); a slow viewer that keeps reading
// is not.
TEST(ProxyLimits, AViewerThatStopsReadingIsCutAndASlowOneIsNot) {
  std::promise<void> upstream_cut;  // The second viewer's upstream connection ended.
  std::atomic<int> connections{0};
  LoopbackListener upstream{[&](tcp::socket& socket) {
    const int me = ++connections;
    websocket::stream<tcp::socket&> ws(socket);
    ws.accept();
    ws.binary(true);
    const std::string chunk(64 * 1024, 'd');
    beast::error_code ec;
    while (!ec) ws.write(asio::buffer(chunk), ec);  // A desktop that never stops drawing.
    if (me == 2) upstream_cut.set_value();
  }};
  ProxyOptions options;
  options.authorize = [&](const ProxyAuthRequest&) -> Result<ProxyTarget> {
    return ProxyTarget{upstream.address(), SessionProtocol::kHttp, kUser};
  };
  HttpServerOptions server_options;
  server_options.write_stall_timeout = std::chrono::seconds(1);
  auto p = startProxy(std::move(options), std::move(server_options));
  asio::io_context ioc;

  // Slow but reading: one message every 300 ms for 3 s, never cut.
  {
    auto ws = openWebSocket(ioc, p.port());
    ASSERT_TRUE(ws);
    beast::flat_buffer buffer;
    for (int i = 0; i < 10; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      buffer.clear();
      beast::error_code ec;
      ws->read(buffer, ec);
      ASSERT_FALSE(ec) << "a slow reader was cut after " << i << " reads: " << ec.message();
    }
  }

  // Not reading at all, but sending: cut. The future bounds the wait (a proxy without the write
  // stall never cuts it).
  auto cut = upstream_cut.get_future();
  auto ws = openWebSocket(ioc, p.port());
  ASSERT_TRUE(ws);
  beast::error_code ec;
  for (int i = 0; i < 300 && cut.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready; ++i) {
    ws->write(asio::buffer(std::string("keystroke")), ec);  // The viewer's own traffic.
  }
  EXPECT_EQ(cut.wait_for(std::chrono::seconds(0)), std::future_status::ready) << "the stalled viewer was never cut";
  for (int i = 0; i < 100 && p.proxy->stats().open_tunnels > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(p.proxy->stats().open_tunnels, 0u);
}

}  // namespace
}  // namespace kasm::net
