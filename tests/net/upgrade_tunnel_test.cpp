// The tunnel of an upgrade the upstream accepted (src/net/upgrade_tunnel.*), once the proxy has
// handed the connection over: megabytes both ways at once with bytes pipelined behind both
// handshakes, TLS on either side, and a server stop with tunnels open. The upstream is
// hand-written: it answers the WebSocket upgrade with a 101 and then echoes raw bytes, so every
// byte through the tunnel is checked, not only whole messages.

#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"
#include "net/net_test_support.hpp"

namespace kasm::net {
namespace {

using namespace kasm::net::testing;
using namespace std::chrono_literals;

const UserId kUser("alice");
constexpr std::string_view kUpgrade =
    "GET /desktop/s1/raw HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
constexpr std::string_view kSwitching =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
// What the upstream sends right behind its 101, in the same write.
constexpr std::string_view kGreeting = "greeting from the upstream";

template <class Pred>
bool eventually(Pred done, std::chrono::milliseconds limit = 5s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

// Byte i of a stream: a pattern that a shifted or dropped chunk cannot match.
char patternByte(std::size_t i) {
  return static_cast<char>((i * 131) ^ (i >> 9));
}

std::string pattern(std::size_t from, std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = patternByte(from + i);
  return s;
}

// Reads the upgrade's head, answers 101 and the greeting in one write, then echoes what it reads
// (the bytes the client pipelined behind its request come first).
template <class Stream>
void switchAndEcho(Stream& stream) {
  std::string in;
  char buf[16384];
  while (in.find("\r\n\r\n") == std::string::npos) {
    beast::error_code ec;
    const std::size_t n = stream.read_some(asio::buffer(buf), ec);
    if (ec) return;
    in.append(buf, n);
  }
  in.erase(0, in.find("\r\n\r\n") + 4);
  beast::error_code ec;
  asio::write(stream, asio::buffer(std::string(kSwitching) + std::string(kGreeting)), ec);
  if (ec) return;
  if (!in.empty()) asio::write(stream, asio::buffer(in), ec);
  for (;;) {
    const std::size_t n = stream.read_some(asio::buffer(buf), ec);
    if (ec) return;
    asio::write(stream, asio::buffer(buf, n), ec);
    if (ec) return;
  }
}

struct ProxyUnderTest {
  std::shared_ptr<SessionProxy> proxy;
  std::unique_ptr<HttpServer> server;
};

ProxyUnderTest startProxy(std::string upstream, SessionProtocol protocol, HttpServerOptions server_options = {}) {
  ProxyOptions options;
  options.authorize = [upstream, protocol](const ProxyAuthRequest&) -> Result<ProxyTarget> {
    return ProxyTarget{upstream, protocol, kUser};
  };
  auto proxy = SessionProxy::create(std::move(options));
  EXPECT_TRUE(proxy.ok());
  auto server = HttpServer::start(
      std::move(server_options), [](HttpRequest, Responder r) { r(HttpResponse::text(200, "app")); }, *proxy);
  EXPECT_TRUE(server.ok()) << (server.ok() ? "" : server.error().toString());
  return {*proxy, std::move(server).value()};
}

// Sends the upgrade with `pipelined` behind it in one write; reads the 101 and returns what came
// behind it in the same reads.
template <class Stream>
std::string upgrade(Stream& stream, std::string_view pipelined) {
  asio::write(stream, asio::buffer(std::string(kUpgrade) + std::string(pipelined)));
  std::string in;
  char buf[4096];
  while (in.find("\r\n\r\n") == std::string::npos) in.append(buf, stream.read_some(asio::buffer(buf)));
  EXPECT_EQ(in.substr(0, 12), "HTTP/1.1 101") << in;
  return in.substr(in.find("\r\n\r\n") + 4);
}

TEST(UpgradeTunnel, CopiesMegabytesBothWaysAtOnceWithBytesPipelinedBehindBothHandshakes) {
  LoopbackListener upstream{[](tcp::socket& s) { switchAndEcho(s); }};
  auto p = startProxy(upstream.address(), SessionProtocol::kHttp);
  asio::io_context ioc;
  auto s = connectTo(ioc, p.server->port());
  // The first pattern bytes go behind the request in the same write: the proxy has read them with
  // the head and must send them on once the upstream switched.
  const std::string first = pattern(0, 1500);
  std::string behind = upgrade(s, first);
  // The greeting the upstream wrote behind its 101 comes first, then the echo.
  while (behind.size() < kGreeting.size()) {
    char buf[256];
    behind.append(buf, s.read_some(asio::buffer(buf)));
  }
  ASSERT_EQ(behind.substr(0, kGreeting.size()), kGreeting);
  behind.erase(0, kGreeting.size());
  // Counted once the proxy handed the connection over, which may come just after the greeting.
  EXPECT_TRUE(eventually([&] { return p.proxy->stats().open_tunnels == 1; }));

  // 8 MiB each way at once (the 1,500 pipelined bytes included): the proxy's writes to both
  // sides fill their socket buffers, wait, and resume.
  constexpr std::size_t kTotal = 8u << 20;
  std::size_t echoed = 0;
  bool same = true;
  {
    // The pattern continues after the pipelined bytes.
    std::thread writer([&] {
      std::size_t sent = first.size();
      for (std::size_t chunk = 1000; sent < kTotal; chunk = chunk * 3 % 200'000 + 1) {
        const std::size_t n = std::min(chunk, kTotal - sent);
        beast::error_code ec;
        asio::write(s, asio::buffer(pattern(sent, n)), ec);
        if (ec) return;
        sent += n;
      }
    });
    for (char c : behind) same = same && c == patternByte(echoed++);
    char buf[65536];
    while (echoed < kTotal && same) {
      beast::error_code ec;
      const std::size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec) break;
      for (std::size_t i = 0; i < n && same; ++i) same = buf[i] == patternByte(echoed + i);
      echoed += n;
    }
    writer.join();
  }
  EXPECT_TRUE(same) << "a byte differs before offset " << echoed;
  EXPECT_EQ(echoed, kTotal);
  const auto stats = p.proxy->stats();
  EXPECT_EQ(stats.bytes_to_upstream, kTotal) << "every byte from the client counted once";
  EXPECT_EQ(stats.bytes_to_client, kTotal + kGreeting.size());

  s.close();
  EXPECT_TRUE(eventually([&] { return p.proxy->stats().open_tunnels == 0; })) << "the tunnel ends with its client";
  EXPECT_TRUE(eventually([&] { return p.proxy->stats().buffers_in_use == 0; }));
}

TEST(UpgradeTunnel, TlsOnBothSides) {
  auto dir = std::filesystem::temp_directory_path() / ("kasm-net-upgrade-tls-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto tls = ensureSelfSignedCertificate(dir.string());
  ASSERT_TRUE(tls.ok()) << tls.error().toString();
  asio::ssl::context server_ctx(asio::ssl::context::tls_server);
  server_ctx.use_certificate_chain_file(tls->cert_file);
  server_ctx.use_private_key_file(tls->key_file, asio::ssl::context::pem);
  LoopbackListener upstream{[&](tcp::socket& s) {
    asio::ssl::stream<tcp::socket&> stream(s, server_ctx);
    beast::error_code ec;
    stream.handshake(asio::ssl::stream_base::server, ec);
    if (!ec) switchAndEcho(stream);
  }};
  HttpServerOptions server_options;
  server_options.tls = *tls;
  {
    auto p = startProxy(upstream.address(), SessionProtocol::kHttps, server_options);
    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_verify_mode(asio::ssl::verify_none);
    auto socket = connectTo(ioc, p.server->port());
    asio::ssl::stream<tcp::socket&> s(socket, ctx);
    s.handshake(asio::ssl::stream_base::client);
    std::string behind = upgrade(s, "");
    while (behind.size() < kGreeting.size()) {
      char buf[256];
      behind.append(buf, s.read_some(asio::buffer(buf)));
    }
    ASSERT_EQ(behind, kGreeting);
    // TLS streams are not safe to read and write from two threads at once: one way at a time,
    // in sizes that take several records and several relay reads.
    for (std::size_t n : {1u, 1000u, 70'000u, 1u << 20}) {
      const std::string sent = pattern(n, n);
      asio::write(s, asio::buffer(sent));
      std::string got(n, '\0');
      asio::read(s, asio::buffer(got));
      EXPECT_EQ(got, sent) << n << " bytes";
    }
    EXPECT_EQ(p.proxy->stats().open_tunnels, 1u);
    beast::error_code ec;
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
    EXPECT_TRUE(eventually([&] { return p.proxy->stats().open_tunnels == 0; }));
  }
  std::filesystem::remove_all(dir);
}

TEST(UpgradeTunnel, StopClosesOpenTunnels) {
  LoopbackListener upstream{[](tcp::socket& s) { switchAndEcho(s); }};
  auto p = startProxy(upstream.address(), SessionProtocol::kHttp);
  asio::io_context ioc;
  std::vector<tcp::socket> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(connectTo(ioc, p.server->port()));
    std::string behind = upgrade(clients.back(), "");
    while (behind.size() < kGreeting.size()) {
      char buf[256];
      behind.append(buf, clients.back().read_some(asio::buffer(buf)));
    }
  }
  EXPECT_TRUE(eventually([&] { return p.proxy->stats().open_tunnels == 3; }));
  const auto t0 = std::chrono::steady_clock::now();
  p.server->stop(1s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s) << "stop does not wait for tunnels that never end";
  for (auto& c : clients) {
    char buf[16];
    beast::error_code ec;
    (void)c.read_some(asio::buffer(buf), ec);
    EXPECT_TRUE(ec) << "the client's connection was closed";
  }
  EXPECT_EQ(p.proxy->stats().open_tunnels, 0u);
}

}  // namespace
}  // namespace kasm::net
