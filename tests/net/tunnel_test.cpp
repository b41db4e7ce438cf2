// Reverse tunnels end to end on loopback: a TunnelClient (the agent's end) dials an HttpServer's
// tunnel route, a TunnelHub holds it, and the SessionProxy reaches upstreams through the hub's
// gateway with sealed open requests: HTTP, WebSockets, large transfers under flow control, a slow
// stream beside a quick one, refusals, and reconnection.

#include <gtest/gtest.h>

#include "kasm/auth/access_token.hpp"
#include "kasm/core/clock.hpp"
#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"
#include "kasm/tunnel/protocol.hpp"
#include "kasm/tunnel/tunnel_client.hpp"
#include "kasm/tunnel/tunnel_hub.hpp"
#include "net/net_test_support.hpp"

namespace kasm::tunnel {
namespace {

using namespace kasm::net::testing;

const AgentId kAgent("agent1");
const SessionId kSession("sess1");
const SessionId kWsSession("ws1");
const UserId kUser("alice");
const std::string kAgentToken = "agent-secret-token";

template <class Pred>
bool waitFor(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

class TunnelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto signer = auth::AccessTokenSigner::create(std::string(32, 'k'), clock_);
    ASSERT_TRUE(signer.ok());
    signer_.emplace(std::move(signer).value());

    TunnelHubOptions ho;
    ho.key = key_;
    ho.open_timeout = std::chrono::seconds(3);
    ho.log = [this](std::string_view e, std::string_view d) { note(std::string(e) + ": " + std::string(d)); };
    auto hub = TunnelHub::start(ho);
    ASSERT_TRUE(hub.ok()) << hub.error().toString();
    hub_ = std::move(*hub);

    net::ProxyOptions po;
    po.authorize = [this](const net::ProxyAuthRequest& r) -> Result<net::ProxyTarget> {
      KASM_RETURN_IF_ERROR(signer_->verifyFor(r.token, r.session));
      std::string upstream = r.session == kWsSession ? ws_upstream_.address() : http_upstream_.address();
      {
        std::lock_guard lock(mutex_);
        if (!override_upstream_.empty()) upstream = override_upstream_;
      }
      net::ProxyTarget t{upstream, SessionProtocol::kHttp, kUser};
      t.relay = hub_->gatewayEndpoint();
      t.relay_preamble = sealOpenRequest(key_, kAgent, upstream, clock_.now() + std::chrono::minutes(10));
      t.relay_identity = "tunnel|" + kAgent.str() + "|" + upstream;
      return t;
    };
    auto proxy = net::SessionProxy::create(po);
    ASSERT_TRUE(proxy.ok()) << proxy.error().toString();
    proxy_ = *proxy;

    net::HttpServerOptions so;
    net::HttpSocketRoute route;
    route.open = [this](const net::HttpRequest& req,
                        std::shared_ptr<net::WebSocket> socket) -> Result<net::WebSocketHandlers> {
      if (std::string(req.headers.find("Authorization").value_or("")) != "Bearer " + kAgentToken) {
        return unauthenticated("unknown agent or wrong token");
      }
      auto id = AgentId::parse(req.headers.find("X-Kasm-Agent-Id").value_or(""), "agent");
      if (!id.ok()) return id.error();
      return hub_->attach(*id, std::move(socket));
    };
    route.queue_bytes = 64 * 1024 * 1024;
    so.sockets.emplace("/api/agent/v1/tunnel", route);
    auto server = net::HttpServer::start(
        so, [](net::HttpRequest, net::Responder respond) { respond(net::HttpResponse::text(404, "no")); }, proxy_);
    ASSERT_TRUE(server.ok()) << server.error().toString();
    server_ = std::move(*server);
  }

  void TearDown() override {
    client_.reset();
    server_.reset();
    hub_.reset();
  }

  TunnelClientOptions clientOptions(std::string token = kAgentToken) {
    TunnelClientOptions o;
    o.server = server_->baseUrl();
    o.agent = kAgent;
    o.token = [token] { return token; };
    o.reconnect_min = std::chrono::milliseconds(100);
    o.reconnect_max = std::chrono::milliseconds(400);
    o.allow = [this](std::string_view target) -> Result<void> {
      std::lock_guard lock(mutex_);
      for (const auto& a : allowed_) {
        if (a == target) return {};
      }
      return permissionDenied(std::string(target) + " is not one of this agent's sessions");
    };
    o.log = [this](std::string_view e, std::string_view d) { note(std::string(e) + ": " + std::string(d)); };
    return o;
  }

  void connectAgent() {
    {
      std::lock_guard lock(mutex_);
      allowed_ = {http_upstream_.address(), ws_upstream_.address(), tcp_upstream_.address()};
    }
    auto c = TunnelClient::start(clientOptions());
    ASSERT_TRUE(c.ok()) << c.error().toString();
    client_ = std::move(*c);
    ASSERT_TRUE(waitFor([&] { return hub_->holds(kAgent) && client_->connected(); })) << notes();
  }

  std::string token(const SessionId& s) { return signer_->issue(s, kUser, std::chrono::minutes(5)); }
  std::string desktop(const SessionId& s, const std::string& rest) {
    return "/desktop/" + s.str() + rest + "?token=" + token(s);
  }

  // A raw connection to the gateway for `target`, with the sealed request written.
  tcp::socket openThroughGateway(asio::io_context& ioc, const std::string& target, std::string line = "") {
    const auto colon = hub_->gatewayEndpoint().rfind(':');
    const auto port = static_cast<std::uint16_t>(std::stoi(hub_->gatewayEndpoint().substr(colon + 1)));
    auto s = connectTo(ioc, port);
    if (line.empty()) line = sealOpenRequest(key_, kAgent, target, clock_.now() + std::chrono::minutes(1));
    asio::write(s, asio::buffer(line));
    return s;
  }

  void note(std::string line) {
    std::lock_guard lock(mutex_);
    notes_.push_back(std::move(line));
  }
  std::string notes() {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& n : notes_) out += n + "\n";
    return out;
  }

  SystemClock clock_;
  const std::string key_ = deriveTunnelKey(std::string(32, 'i'));
  std::optional<auth::AccessTokenSigner> signer_;
  LoopbackListener http_upstream_{serveHttpEcho};
  LoopbackListener ws_upstream_{serveWebSocketEcho};
  LoopbackListener tcp_upstream_{serveTcpEcho};
  std::unique_ptr<TunnelHub> hub_;
  std::shared_ptr<net::SessionProxy> proxy_;
  std::unique_ptr<net::HttpServer> server_;
  std::unique_ptr<TunnelClient> client_;
  std::mutex mutex_;
  std::vector<std::string> allowed_;
  std::string override_upstream_;
  std::vector<std::string> notes_;
};

TEST_F(TunnelTest, HttpThroughTheTunnel) {
  connectAgent();
  for (int i = 0; i < 5; ++i) {
    auto res = httpGet(server_->port(), desktop(kSession, "/page" + std::to_string(i)));
    ASSERT_EQ(res.result_int(), 200) << res.body() << notes();
    EXPECT_NE(res.body().find("target: /page" + std::to_string(i)), std::string::npos) << res.body();
  }
  // 8 MiB answers: 32 windows' worth, credited back as the proxy writes them out.
  auto big = httpGet(server_->port(), desktop(kSession, "/big/8388608"));
  ASSERT_EQ(big.result_int(), 200);
  ASSERT_EQ(big.body().size(), 8388608u);
  EXPECT_EQ(big.body()[8388607], static_cast<char>('a' + 8388607 % 26));
  // And a 3 MiB upload the other way.
  http::request<http::string_body> post{http::verb::post, desktop(kSession, "/upload"), 11};
  post.body() = std::string(3 * 1024 * 1024, 'u');
  auto up = httpRequest(server_->port(), std::move(post));
  ASSERT_EQ(up.result_int(), 200);
  EXPECT_NE(up.body().find("body-size: 3145728"), std::string::npos) << up.body();
  EXPECT_GE(hub_->stats().streams_opened, 1u);
}

TEST_F(TunnelTest, WebSocketThroughTheTunnel) {
  connectAgent();
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws(connectTo(ioc, server_->port()));
  ws.handshake("127.0.0.1", desktop(kWsSession, "/websockify"));
  ws.binary(true);
  for (int i = 0; i < 20; ++i) {
    std::string msg(100 * 1024 + i, static_cast<char>('A' + i));
    ws.write(asio::buffer(msg));
    beast::flat_buffer buf;
    ws.read(buf);
    ASSERT_EQ(beast::buffers_to_string(buf.data()), msg);
  }
  ws.close(websocket::close_code::normal);
}

TEST_F(TunnelTest, ASlowStreamDoesNotStallTheOthers) {
  connectAgent();
  asio::io_context ioc;
  // Stream A sends 8 MiB to an echo and reads nothing back: the echo stalls, the agent's side of A
  // stops taking data, and A's window on the server runs out.
  auto slow = openThroughGateway(ioc, tcp_upstream_.address());
  std::thread flood([&] {
    beast::error_code ec;
    std::string chunk(64 * 1024, 's');
    for (int i = 0; i < 128 && !ec; ++i) asio::write(slow, asio::buffer(chunk), ec);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Stream B still round-trips.
  auto quick = openThroughGateway(ioc, tcp_upstream_.address());
  for (int i = 0; i < 50; ++i) {
    std::string msg = "ping " + std::to_string(i);
    asio::write(quick, asio::buffer(msg));
    std::string got(msg.size(), '\0');
    asio::read(quick, asio::buffer(got));
    ASSERT_EQ(got, msg);
  }
  beast::error_code ec;
  slow.shutdown(tcp::socket::shutdown_both, ec);
  slow.close(ec);
  flood.join();
}

TEST_F(TunnelTest, ManyStreamsAtOnce) {
  connectAgent();
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      asio::io_context ioc;
      auto s = openThroughGateway(ioc, tcp_upstream_.address());
      std::string msg(512 * 1024, static_cast<char>('a' + t));
      std::thread writer([&] { asio::write(s, asio::buffer(msg)); });
      std::string got(msg.size(), '\0');
      beast::error_code ec;
      asio::read(s, asio::buffer(got), ec);
      writer.join();
      if (!ec && got == msg) good++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 16) << notes();
  // Every stream ends once its client closed: nothing is left open on either side.
  EXPECT_TRUE(waitFor([&] { return hub_->stats().streams == 0; })) << hub_->stats().streams;
}

TEST_F(TunnelTest, TheAgentDialsOnlyWhatItAllows) {
  connectAgent();
  LoopbackListener other(serveHttpEcho);
  {
    std::lock_guard lock(mutex_);
    override_upstream_ = other.address();  // Not one of the agent's sessions.
  }
  auto res = httpGet(server_->port(), desktop(kSession, "/x"));
  EXPECT_EQ(res.result_int(), 502) << res.body();
  EXPECT_EQ(other.accepted(), 0);
  EXPECT_TRUE(waitFor([&] { return notes().find("tunnel_open_refused: " + other.address()) != std::string::npos; }))
      << notes();
}

TEST_F(TunnelTest, TheGatewayRefusesForgedOrStaleRequests) {
  connectAgent();
  const std::string target = tcp_upstream_.address();
  auto line = sealOpenRequest(key_, kAgent, target, clock_.now() + std::chrono::minutes(1));
  const std::vector<std::string> bad = {
      sealOpenRequest(deriveTunnelKey(std::string(32, 'z')), kAgent, target, clock_.now() + std::chrono::minutes(1)),
      sealOpenRequest(key_, kAgent, target, clock_.now() - std::chrono::seconds(5)),
      sealOpenRequest(key_, AgentId("nobody"), target, clock_.now() + std::chrono::minutes(1)),
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      std::string(2000, 'x'),
  };
  const auto refused_before = hub_->stats().requests_refused;
  for (const auto& b : bad) {
    asio::io_context ioc;
    const auto colon = hub_->gatewayEndpoint().rfind(':');
    auto s = connectTo(ioc, static_cast<std::uint16_t>(std::stoi(hub_->gatewayEndpoint().substr(colon + 1))));
    beast::error_code ec;  // The gateway may close (and reset) before it has read everything.
    asio::write(s, asio::buffer(b + "ping"), ec);
    char c;
    ec = {};
    s.read_some(asio::buffer(&c, 1), ec);
    EXPECT_TRUE(ec) << "the gateway answered a bad request: " << b.substr(0, 40);
  }
  EXPECT_EQ(tcp_upstream_.accepted(), 0);
  EXPECT_EQ(hub_->stats().requests_refused, refused_before + bad.size());
  // The good one works.
  asio::io_context ioc;
  auto s = openThroughGateway(ioc, target, line);
  asio::write(s, asio::buffer(std::string("ping")));
  std::string got(4, '\0');
  asio::read(s, asio::buffer(got));
  EXPECT_EQ(got, "ping");
}

TEST_F(TunnelTest, AWrongTokenGetsNoTunnel) {
  auto c = TunnelClient::start(clientOptions("wrong-token"));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(waitFor([&] { return notes().find("HTTP 401") != std::string::npos; })) << notes();
  EXPECT_FALSE(hub_->holds(kAgent));
  EXPECT_EQ((*c)->connects(), 0u);
}

TEST_F(TunnelTest, TheAgentReconnects) {
  connectAgent();
  ASSERT_EQ(httpGet(server_->port(), desktop(kSession, "/before")).result_int(), 200);
  client_->stop();
  EXPECT_TRUE(waitFor([&] { return !hub_->holds(kAgent); })) << notes();
  EXPECT_EQ(httpGet(server_->port(), desktop(kSession, "/while-away")).result_int(), 502);
  client_.reset();
  connectAgent();
  auto res = httpGet(server_->port(), desktop(kSession, "/after"));
  EXPECT_EQ(res.result_int(), 200) << res.body() << notes();
}

TEST_F(TunnelTest, StopClosesStreams) {
  connectAgent();
  asio::io_context ioc;
  auto s = openThroughGateway(ioc, tcp_upstream_.address());
  asio::write(s, asio::buffer(std::string("ping")));
  std::string got(4, '\0');
  asio::read(s, asio::buffer(got));
  ASSERT_EQ(hub_->stats().streams, 1u);
  hub_->stop();
  char c;
  beast::error_code ec;
  s.read_some(asio::buffer(&c, 1), ec);
  EXPECT_TRUE(ec);
}

}  // namespace
}  // namespace kasm::tunnel
