// SessionProxy on loopback with real access tokens: HTTP relay (headers, streaming bodies, token
// stripping), WebSocket tunnel, VNC bridge, refusals, traversal, activity and closeSession.

#include "kasm/net/session_proxy.hpp"

#include <gtest/gtest.h>

#include <map>

#include "kasm/auth/access_token.hpp"
#include "kasm/net/http_server.hpp"
#include "net/net_test_support.hpp"

namespace kasm::net {
namespace {

using namespace kasm::net::testing;

const SessionId kSession("sess1");
const SessionId kVncSession("vnc1");
const SessionId kOtherSession("other1");
const UserId kUser("alice");

class SessionProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto signer = auth::AccessTokenSigner::create(std::string(32, 'k'), clock_);
    ASSERT_TRUE(signer.ok());
    signer_.emplace(std::move(signer).value());
    routes_[kSession] = ProxyTarget{http_upstream_.address(), SessionProtocol::kHttp, kUser};
    routes_[kVncSession] = ProxyTarget{vnc_upstream_.address(), SessionProtocol::kVnc, kUser};

    ProxyOptions options;
    options.authorize = [this](const ProxyAuthRequest& request) -> Result<ProxyTarget> {
      KASM_RETURN_IF_ERROR(signer_->verifyFor(request.token, request.session));
      std::lock_guard lock(mutex_);
      auto it = routes_.find(request.session);
      if (it == routes_.end()) return notFound("no such session");
      return it->second;
    };
    options.on_activity = [this](const SessionId& session, const UserId& user) {
      std::lock_guard lock(mutex_);
      activity_.push_back(session.str() + "/" + user.str());
    };
    // Long enough that each test sees exactly one report per session.
    options.activity_interval = std::chrono::hours(1);
    auto proxy = SessionProxy::create(options);
    ASSERT_TRUE(proxy.ok()) << proxy.error().toString();
    proxy_ = *proxy;
    auto server = HttpServer::start(
        {}, [](HttpRequest, Responder respond) { respond(HttpResponse::text(200, "app")); }, proxy_);
    ASSERT_TRUE(server.ok()) << server.error().toString();
    server_ = std::move(server).value();
  }

  std::string token(const SessionId& session, Duration ttl = std::chrono::minutes(5)) {
    return signer_->issue(session, kUser, ttl);
  }
  std::uint16_t port() const { return server_->port(); }
  std::vector<std::string> activity() {
    std::lock_guard lock(mutex_);
    return activity_;
  }
  void setRoute(const SessionId& s, ProxyTarget t) {
    std::lock_guard lock(mutex_);
    routes_[s] = std::move(t);
  }

  // A WebSocket client handshake through the proxy; returns the stream or throws with the status.
  std::unique_ptr<websocket::stream<tcp::socket>> openWebSocket(asio::io_context& ioc, const std::string& target,
                                                                websocket::response_type* response = nullptr,
                                                                std::string subprotocol = "") {
    auto ws = std::make_unique<websocket::stream<tcp::socket>>(connectTo(ioc, port()));
    if (!subprotocol.empty()) {
      ws->set_option(websocket::stream_base::decorator(
          [subprotocol](websocket::request_type& req) { req.set(http::field::sec_websocket_protocol, subprotocol); }));
    }
    websocket::response_type local;
    ws->handshake(response ? *response : local, "127.0.0.1", target);
    return ws;
  }

  ManualClock clock_;
  std::optional<auth::AccessTokenSigner> signer_;
  LoopbackListener http_upstream_{serveHttpEcho};
  LoopbackListener ws_upstream_{serveWebSocketEcho};
  LoopbackListener vnc_upstream_{serveTcpEcho};
  std::mutex mutex_;
  std::map<SessionId, ProxyTarget> routes_;
  std::vector<std::string> activity_;
  std::shared_ptr<SessionProxy> proxy_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(SessionProxyTest, ForwardsGetAndStripsTheQueryToken) {
  auto res = httpGet(port(), "/desktop/sess1/index.html?a=1&token=" + token(kSession) + "&b=2");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_NE(res.body().find("method: GET\ntarget: /index.html?a=1&b=2\n"), std::string::npos) << res.body();
  EXPECT_NE(res.body().find("x-forwarded-for: 127.0.0.1\n"), std::string::npos);
  EXPECT_NE(res.body().find("x-forwarded-proto: http\n"), std::string::npos);
  // The page's later requests carry the token as a cookie scoped to the session.
  auto cookie = std::string(res[http::field::set_cookie]);
  EXPECT_TRUE(cookie.starts_with("kasm_session_token=")) << cookie;
  EXPECT_NE(cookie.find("Path=/desktop/sess1/"), std::string::npos);
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  // Requests outside the prefix go to the application handler.
  EXPECT_EQ(httpGet(port(), "/desktopx").body(), "app");
  EXPECT_EQ(activity(), std::vector<std::string>{"sess1/alice"});
}

TEST_F(SessionProxyTest, TakesTheTokenFromCookieOrBearerAndStripsIt) {
  auto res = httpGet(port(), "/desktop/sess1/app.js",
                     {{"Cookie", "theme=dark; kasm_session_token=" + token(kSession) + "; lang=en"}});
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_NE(res.body().find("cookie: theme=dark; lang=en\n"), std::string::npos) << res.body();
  EXPECT_FALSE(res.count(http::field::set_cookie));

  res = httpGet(port(), "/desktop/sess1/api", {{"Authorization", "Bearer " + token(kSession)}});
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_NE(res.body().find("authorization: \n"), std::string::npos) << res.body();
}

TEST_F(SessionProxyTest, RefusesMissingForgedExpiredAndForeignTokens) {
  EXPECT_EQ(httpGet(port(), "/desktop/sess1/").result_int(), 401);
  std::string forged = token(kSession);
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(httpGet(port(), "/desktop/sess1/?token=" + forged).result_int(), 401);
  EXPECT_EQ(httpGet(port(), "/desktop/sess1/?token=garbage").result_int(), 401);
  std::string short_lived = token(kSession, std::chrono::seconds(30));
  clock_.advance(std::chrono::minutes(1));
  EXPECT_EQ(httpGet(port(), "/desktop/sess1/?token=" + short_lived).result_int(), 401);
  EXPECT_EQ(httpGet(port(), "/desktop/sess1/?token=" + token(kOtherSession)).result_int(), 403);
  EXPECT_EQ(http_upstream_.accepted(), 0) << "nothing refused reaches the container";
  EXPECT_GE(proxy_->stats().rejected, 5u);
}

TEST_F(SessionProxyTest, RefusesUpgradesWithoutAValidToken) {
  setRoute(kSession, ProxyTarget{ws_upstream_.address(), SessionProtocol::kHttp, kUser});
  asio::io_context ioc;
  for (auto [target, status] : {std::pair{std::string("/desktop/sess1/ws"), 401},
                                std::pair{"/desktop/sess1/ws?token=" + token(kOtherSession), 403},
                                std::pair{std::string("/desktop/vnc1/websockify"), 401},
                                std::pair{"/desktop/vnc1/websockify?token=" + token(kSession), 403}}) {
    websocket::response_type response;
    EXPECT_THROW(openWebSocket(ioc, target, &response), beast::system_error) << target;
    EXPECT_EQ(response.result_int(), status) << target;
  }
  EXPECT_EQ(ws_upstream_.accepted(), 0);
  EXPECT_EQ(vnc_upstream_.accepted(), 0);
}

TEST_F(SessionProxyTest, RejectsPathTraversal) {
  const std::string t = "?token=" + token(kSession);
  for (const std::string path :
       {"/desktop/sess1/../x", "/desktop/sess1/a/../../x", "/desktop/sess1/%2e%2e/x", "/desktop/sess1/%2E%2e/x",
        "/desktop/sess1/.%2E/x", "/desktop/sess1/a%2f..%2fb", "/desktop/sess1/a\\..\\b", "/desktop/sess1/%5c..",
        "/desktop/../sess1/x", "/desktop/sess1/./x", "/desktop/sess1/%zz"}) {
    std::string reply = rawExchange(port(), "GET " + path + t + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << path << " -> " << reply.substr(0, 40);
  }
  EXPECT_EQ(http_upstream_.accepted(), 0);
}

TEST_F(SessionProxyTest, RedirectsTheBareSessionPathToItsRoot) {
  auto res = httpGet(port(), "/desktop/sess1?x=1");
  EXPECT_EQ(res.result_int(), 308);
  EXPECT_EQ(res[http::field::location], "/desktop/sess1/?x=1");
}

TEST_F(SessionProxyTest, StreamsRequestAndResponseBodies) {
  const std::string t = token(kSession);
  // A 3 MB upload with a length, then a chunked one: both arrive whole.
  http::request<http::string_body> post{http::verb::post, "/desktop/sess1/upload?token=" + t, 11};
  post.body() = std::string(3 * 1024 * 1024, 'u');
  auto res = httpRequest(port(), post);
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_NE(res.body().find("method: POST\n"), std::string::npos);
  EXPECT_NE(res.body().find("body-size: 3145728\n"), std::string::npos) << res.body();

  asio::io_context ioc;
  auto s = connectTo(ioc, port());
  std::string head =
      "POST /desktop/sess1/chunked?token=" + t + " HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  asio::write(s, asio::buffer(head));
  for (int i = 0; i < 40; ++i) asio::write(s, asio::buffer("4000\r\n" + std::string(0x4000, 'c') + "\r\n"));
  asio::write(s, asio::buffer(std::string("0\r\n\r\n")));
  beast::flat_buffer buffer;
  http::response<http::string_body> chunked;
  http::read(s, buffer, chunked);
  EXPECT_NE(chunked.body().find("body-size: 655360\n"), std::string::npos) << chunked.body();

  // A 5 MB download through the same keep-alive connection.
  http::request<http::empty_body> get{http::verb::get, "/desktop/sess1/big/5000000?token=" + t, 11};
  get.set(http::field::host, "a");
  http::write(s, get);
  http::response_parser<http::string_body> big;
  big.body_limit(16 * 1024 * 1024);
  http::read(s, buffer, big);
  ASSERT_EQ(big.get().result_int(), 200);
  ASSERT_EQ(big.get().body().size(), 5000000u);
  EXPECT_EQ(big.get().body()[4999999], static_cast<char>('a' + 4999999 % 26));
  EXPECT_EQ(http_upstream_.accepted(), 2) << "the keep-alive client reused its upstream connection";
  EXPECT_GE(proxy_->stats().bytes_to_client, 5000000u);
}

TEST_F(SessionProxyTest, AnswersHeadWithoutABody) {
  http::request<http::string_body> head{http::verb::head, "/desktop/sess1/big/1000?token=" + token(kSession), 11};
  asio::io_context ioc;
  auto s = connectTo(ioc, port());
  head.set(http::field::host, "a");
  http::write(s, head);
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  parser.skip(true);
  http::read(s, buffer, parser);
  EXPECT_EQ(parser.get().result_int(), 200);
}

TEST_F(SessionProxyTest, UnreachableUpstreamGives502) {
  std::uint16_t dead_port = 0;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    dead_port = a.local_endpoint().port();
  }
  setRoute(kSession, ProxyTarget{"127.0.0.1:" + std::to_string(dead_port), SessionProtocol::kHttp, kUser});
  EXPECT_EQ(httpGet(port(), "/desktop/sess1/?token=" + token(kSession)).result_int(), 502);
}

TEST_F(SessionProxyTest, TunnelsWebSocketsToHttpSessions) {
  setRoute(kSession, ProxyTarget{ws_upstream_.address(), SessionProtocol::kHttp, kUser});
  asio::io_context ioc;
  auto ws = openWebSocket(ioc, "/desktop/sess1/ws?token=" + token(kSession));
  beast::flat_buffer buffer;
  for (std::string msg : {std::string("hello"), std::string(200000, 'w'), std::string("last")}) {
    ws->text(true);
    ws->write(asio::buffer(msg));
    buffer.clear();
    ws->read(buffer);
    EXPECT_EQ(beast::buffers_to_string(buffer.data()), msg);
  }
  EXPECT_EQ(proxy_->stats().open_tunnels, 1u);
  ws->close(websocket::close_code::normal);
  EXPECT_FALSE(activity().empty());
}

// A silent tunnel gives its relay buffers back: it holds none while nothing flows, takes them
// again when data comes, and the traffic is intact either way.
TEST_F(SessionProxyTest, IdleTunnelHoldsNoRelayBuffer) {
  setRoute(kSession, ProxyTarget{ws_upstream_.address(), SessionProtocol::kHttp, kUser});
  asio::io_context ioc;
  auto ws = openWebSocket(ioc, "/desktop/sess1/ws?token=" + token(kSession));
  auto waitForNoBuffers = [&] {
    // The pumps give buffers back on their own threads, right after the last read would block.
    for (int i = 0; i < 200 && proxy_->stats().buffers_in_use > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return proxy_->stats().buffers_in_use;
  };
  beast::flat_buffer buffer;
  for (std::string msg : {std::string("first"), std::string(300000, 'x'), std::string("again")}) {
    EXPECT_EQ(waitForNoBuffers(), 0u);
    ws->text(true);
    ws->write(asio::buffer(msg));
    buffer.clear();
    ws->read(buffer);
    EXPECT_EQ(beast::buffers_to_string(buffer.data()), msg);
  }
  EXPECT_EQ(proxy_->stats().open_tunnels, 1u);
  EXPECT_EQ(waitForNoBuffers(), 0u);
  ws->close(websocket::close_code::normal);
}

TEST_F(SessionProxyTest, BridgesWebSocketToTheVncTcpPortBothWays) {
  asio::io_context ioc;
  websocket::response_type response;
  auto ws = openWebSocket(ioc, "/desktop/vnc1/websockify?token=" + token(kVncSession), &response, "binary");
  EXPECT_EQ(response[http::field::sec_websocket_protocol], "binary");
  ws->binary(true);
  std::string rfb = "RFB 003.008\n";
  ws->write(asio::buffer(rfb));
  std::string echoed;
  beast::flat_buffer buffer;
  while (echoed.size() < rfb.size()) {
    buffer.clear();
    ws->read(buffer);
    EXPECT_TRUE(ws->got_binary());
    echoed += beast::buffers_to_string(buffer.data());
  }
  EXPECT_EQ(echoed, rfb);

  // A large frame: bytes arrive whole and in order, in as many messages as the bridge makes.
  std::string big(1 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  ws->write(asio::buffer(big));
  echoed.clear();
  while (echoed.size() < big.size()) {
    buffer.clear();
    ws->read(buffer);
    echoed += beast::buffers_to_string(buffer.data());
  }
  EXPECT_EQ(echoed, big);
  EXPECT_EQ(activity(), std::vector<std::string>{"vnc1/alice"}) << "rate-limited to one report per interval";
}

TEST_F(SessionProxyTest, VncSessionsNeedAWebSocket) {
  EXPECT_EQ(httpGet(port(), "/desktop/vnc1/?token=" + token(kVncSession)).result_int(), 400);
}

TEST_F(SessionProxyTest, CloseSessionDropsItsOpenWebSockets) {
  asio::io_context ioc;
  auto vnc = openWebSocket(ioc, "/desktop/vnc1/websockify?token=" + token(kVncSession));
  setRoute(kSession, ProxyTarget{ws_upstream_.address(), SessionProtocol::kHttp, kUser});
  auto other = openWebSocket(ioc, "/desktop/sess1/ws?token=" + token(kSession));
  vnc->binary(true);
  vnc->write(asio::buffer(std::string("ping")));
  beast::flat_buffer buffer;
  vnc->read(buffer);

  EXPECT_EQ(proxy_->closeSession(kVncSession), 1u);
  buffer.clear();
  beast::error_code ec;
  vnc->read(buffer, ec);
  EXPECT_TRUE(ec) << "the bridge was cut";

  // The other session's tunnel is untouched.
  other->write(asio::buffer(std::string("still here")));
  buffer.clear();
  other->read(buffer);
  EXPECT_EQ(beast::buffers_to_string(buffer.data()), "still here");
  EXPECT_EQ(proxy_->closeSession(SessionId("nobody")), 0u);
}

// An upstream that answers with hand-written bytes, to reach the framings the fast path hands
// to Beast and to see the exact head the proxy sent: /head echoes the request head as the body.
void serveCannedResponses(tcp::socket& socket) {
  std::string in;
  for (;;) {
    const auto next = readRequestHead(socket, in);
    if (!next) return;
    const std::string& head = *next;
    const auto sp = head.find(' ');
    std::string target = head.substr(sp + 1, head.find(' ', sp + 1) - sp - 1);
    target = target.substr(0, target.find('?'));
    std::string out;
    bool close = false;
    if (target == "/head") {
      out = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(head.size()) + "\r\n\r\n" + head;
    } else if (target == "/chunked") {
      out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    } else if (target == "/until-close") {
      out = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close";
      close = true;
    } else if (target == "/early") {
      out =
          "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
          "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal";
    } else if (target == "/continue-then-created") {
      // Some servers answer 100 Continue to any request with a body, asked or not (the proxy drops
      // Expect). A request with a body takes the Beast path, so this checks that path.
      out = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 7\r\n\r\ncreated";
    } else if (target == "/no-content") {
      out = "HTTP/1.1 204 No Content\r\nX-Note: none\r\n\r\n";
    } else if (target == "/hop") {
      out =
          "HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nX-Kept: k\r\n"
          "Content-Length: 2\r\n\r\nok";
    } else {
      out = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    }
    beast::error_code ec;
    asio::write(socket, asio::buffer(out), ec);
    if (ec || close) return;
  }
}

// Every part occurs in `reply`, in this order.
void expectInOrder(const std::string& reply, std::initializer_list<std::string_view> parts) {
  std::size_t from = 0;
  for (auto part : parts) {
    const auto at = reply.find(part, from);
    ASSERT_NE(at, std::string::npos) << "missing or out of order: " << part << "\nin:\n" << reply;
    from = at + part.size();
  }
}

class SessionProxyFramingTest : public SessionProxyTest {
 protected:
  void SetUp() override {
    SessionProxyTest::SetUp();
    setRoute(kSession, ProxyTarget{canned_.address(), SessionProtocol::kHttp, kUser});
  }
  LoopbackListener canned_{serveCannedResponses};
};

TEST_F(SessionProxyFramingTest, RewritesTheRequestHeadForTheUpstream) {
  const std::string t = token(kSession);
  const std::string reply = rawExchange(port(),
                                        "GET /desktop/sess1/head?x=1 HTTP/1.1\r\nHost: portal.example\r\n"
                                        "Connection: close, X-Drop\r\nX-Drop: secret\r\nKeep-Alive: 5\r\n"
                                        "Proxy-Authorization: Basic abc\r\nTE: trailers\r\nExpect: 100-continue\r\n"
                                        "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: gopher\r\n"
                                        "Cookie: a=1; kasm_session_token=" +
                                            t + "; b=2\r\nAuthorization: Bearer " + t + "\r\nX-App: kept\r\n\r\n");
  ASSERT_TRUE(reply.starts_with("HTTP/1.1 200 OK\r\n")) << reply;
  EXPECT_NE(reply.find("\r\nConnection: close\r\n"), std::string::npos) << "the client asked to close";
  const std::string sent = reply.substr(reply.find("\r\n\r\n") + 4);
  EXPECT_TRUE(sent.starts_with("GET /head?x=1 HTTP/1.1\r\n")) << sent;
  EXPECT_NE(sent.find("\r\nHost: portal.example\r\n"), std::string::npos) << sent;
  EXPECT_NE(sent.find("\r\nCookie: a=1; b=2\r\n"), std::string::npos) << sent;
  EXPECT_NE(sent.find("\r\nX-App: kept\r\n"), std::string::npos) << sent;
  EXPECT_NE(sent.find("\r\nX-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n"), std::string::npos) << sent;
  EXPECT_NE(sent.find("\r\nX-Forwarded-Proto: http\r\n"), std::string::npos) << sent;
  EXPECT_NE(sent.find("\r\nX-Forwarded-Host: portal.example\r\n"), std::string::npos) << sent;
  for (const char* gone : {"X-Drop", "Keep-Alive", "Connection", "Proxy-Authorization", "TE:", "Expect",
                           "Authorization", "gopher", "kasm_session_token"}) {
    EXPECT_EQ(sent.find(gone), std::string::npos) << gone << " reached the upstream:\n" << sent;
  }
}

TEST_F(SessionProxyFramingTest, AnswersPipelinedRequestsInOrder) {
  const std::string t = token(kSession);
  const std::string one = "GET /desktop/sess1/head?n=1&token=" + t + " HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string two = "GET /desktop/sess1/hop?token=" + t + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  const std::string reply = rawExchange(port(), one + two);
  expectInOrder(reply, {"GET /head?n=1 HTTP/1.1", "\r\n\r\nok"});
  // Hop-by-hop response fields, and those the upstream's Connection names, stay behind.
  const std::string last = reply.substr(reply.rfind("HTTP/1.1 200"));
  EXPECT_NE(last.find("X-Kept: k\r\n"), std::string::npos) << last;
  EXPECT_EQ(last.find("X-Secret"), std::string::npos) << last;
  EXPECT_EQ(last.find("Keep-Alive"), std::string::npos) << last;
}

TEST_F(SessionProxyFramingTest, RelaysChunkedCloseDelimitedAndEmptyResponses) {
  const std::string q = "?token=" + token(kSession);
  auto res = httpGet(port(), "/desktop/sess1/chunked" + q);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "hello world");
  // A body delimited by the upstream's close reaches an HTTP/1.1 client re-framed as chunks.
  res = httpGet(port(), "/desktop/sess1/until-close" + q);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "body until close");
  EXPECT_TRUE(res.chunked());
  res = httpGet(port(), "/desktop/sess1/no-content" + q);
  EXPECT_EQ(res.result_int(), 204);
  EXPECT_EQ(res[http::field::connection], "");
  EXPECT_EQ(res["X-Note"], "none");
}

TEST_F(SessionProxyFramingTest, PassesInterimResponsesOnAndKeepsTheConnectionInStep) {
  const std::string t = token(kSession);
  const std::string reply = rawExchange(port(), "GET /desktop/sess1/early?token=" + t + " HTTP/1.1\r\nHost: a\r\n\r\n" +
                                                    "GET /desktop/sess1/hop?token=" + t +
                                                    " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  expectInOrder(reply,
                {"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", "\r\n\r\nfinal", "X-Kept: k"});
}

TEST_F(SessionProxyFramingTest, AnUnaskedContinueBeforeAnUploadsAnswerIsNotTakenForIt) {
  const std::string t = token(kSession);
  const std::string reply = rawExchange(port(), "POST /desktop/sess1/continue-then-created?token=" + t +
                                                    " HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody" +
                                                    "GET /desktop/sess1/hop?token=" + t +
                                                    " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  expectInOrder(reply, {"HTTP/1.1 100 Continue\r\n", "HTTP/1.1 201 Created\r\n", "\r\n\r\ncreated", "X-Kept: k"});
}

TEST_F(SessionProxyFramingTest, KeepsHttp10ClientSemantics) {
  const std::string q = "?token=" + token(kSession);
  // HTTP/1.0 without keep-alive: answered as 1.0, then closed (rawExchange reads until the close).
  std::string reply = rawExchange(port(), "GET /desktop/sess1/hop" + q + " HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.0 200 OK\r\n")) << reply;
  EXPECT_TRUE(reply.ends_with("\r\n\r\nok")) << reply;
  // With keep-alive asked for, it is granted and said so.
  asio::io_context ioc;
  auto s = connectTo(ioc, port());
  asio::write(s, asio::buffer("GET /desktop/sess1/hop" + q + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(s, buffer, res);
  EXPECT_EQ(res.version(), 10);
  EXPECT_EQ(res[http::field::connection], "keep-alive");
  EXPECT_EQ(res.body(), "ok");
}

TEST(SessionProxyOptions, RejectsBadOptions) {
  ProxyOptions none;
  EXPECT_EQ(SessionProxy::create(none).error().code(), ErrorCode::kInvalidArgument);
  ProxyOptions bad_prefix;
  bad_prefix.authorize = [](const ProxyAuthRequest&) -> Result<ProxyTarget> { return ProxyTarget{}; };
  bad_prefix.prefix = "desktop";
  EXPECT_EQ(SessionProxy::create(bad_prefix).error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace kasm::net
