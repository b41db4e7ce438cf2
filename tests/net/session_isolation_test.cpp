// Session content cannot act as the viewer: a hostile container behind the proxy sees none of the
// control plane's credentials (login cookie, CSRF header, Authorization, the session token), cannot
// plant cookies outside its session's path, gets its pages served in a sandbox (an opaque origin
// in the browser, so its scripts cannot read the control plane's cookies or API), and cannot open
// WebSockets from pages of other origins. Both proxy paths are covered: the fast path (a plain
// GET), the Beast path (a request with a body) and the fast path's Beast fallback (a chunked
// response).

#include <gtest/gtest.h>

#include <map>

#include "kasm/auth/access_token.hpp"
#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"
#include "net/net_test_support.hpp"

namespace kasm::net {
namespace {

using namespace kasm::net::testing;

const SessionId kSession("sess1");
const UserId kViewer("admin");
const std::string kLoginCookie = "kasm_auth=viewer-login-secret";
const std::string kCsrf = "viewer-csrf-secret";

// What the hostile upstream saw and what it managed with it.
struct Loot {
  std::mutex mutex;
  std::vector<std::string> heads;  // Every request head that reached the container.
  std::vector<int> api_replies;    // Statuses of its calls to the control plane's API.
};

// Header field `name` of a raw head, or "".
std::string fieldOf(const std::string& head, std::string_view name) {
  std::size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos + 2 < head.size()) {
    const auto end = head.find("\r\n", pos + 2);
    const std::string line = head.substr(pos + 2, end - pos - 2);
    const auto colon = line.find(':');
    if (colon != std::string::npos && equalsIgnoreCase(line.substr(0, colon), name)) {
      return line.substr(line.find_first_not_of(' ', colon + 1));
    }
    pos = end;
  }
  return {};
}

// A container that serves a page whose script would call the API as the viewer, tries the same
// itself with whatever credentials its requests carried, and sets cookies meant to escape its
// session: the login cookie's name, the token cookie's name, a Domain, the root path.
class HostileUpstream {
 public:
  HostileUpstream(Loot& loot, std::uint16_t& control_port) : loot_(loot), control_port_(control_port) {}
  void operator()(tcp::socket& socket) {
    std::string in;
    char buf[4096];
    for (;;) {
      const auto next = readRequestHead(socket, in);
      if (!next) return;
      const std::string& head = *next;
      const std::string length = fieldOf(head, "Content-Length");
      std::size_t body = length.empty() ? 0 : std::stoul(length);
      while (in.size() < body) {
        beast::error_code ec;
        const std::size_t n = socket.read_some(asio::buffer(buf), ec);
        if (ec) return;
        in.append(buf, n);
      }
      in.erase(0, body);
      replay(head);

      const std::string page =
          "<script>fetch('/api/v1/auth/me',{credentials:'include'}).then(r=>r.json())"
          ".then(me=>fetch('/api/v1/users',{method:'POST',headers:{'X-CSRF-Token':me.csrf_token}}));"
          "document.cookie</script>";
      const std::string cookies =
          "Set-Cookie: kasm_auth=planted; Path=/\r\n"
          "Set-Cookie: kasm_session_token=planted; Path=/desktop/sess1/\r\n"
          "Set-Cookie: =kasm_auth=nameless\r\n"
          "Set-Cookie: app=1; Path=/; Domain=127.0.0.1; HttpOnly\r\n"
          "Set-Cookie: pref=2\r\n"
          "Set-Cookie: deep=3; path=/sub; SameSite=Lax\r\n";
      std::string out;
      if (head.find(" /chunked ") != std::string::npos) {
        out = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n" + cookies + "Transfer-Encoding: chunked\r\n\r\n" +
              (std::stringstream() << std::hex << page.size()).str() + "\r\n" + page + "\r\n0\r\n\r\n";
      } else {
        out = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n" + cookies +
              "Content-Length: " + std::to_string(page.size()) + "\r\n\r\n" + page;
      }
      beast::error_code ec;
      asio::write(socket, asio::buffer(out), ec);
      if (ec) return;
    }
  }

 private:
  // Calls the control plane's API with every credential the request brought along.
  void replay(const std::string& head) {
    std::vector<std::pair<std::string, std::string>> creds;
    for (const char* name : {"Cookie", "X-CSRF-Token", "Authorization"}) {
      if (auto v = fieldOf(head, name); !v.empty()) creds.emplace_back(name, v);
    }
    const int status = httpGet(control_port_, "/api/v1/auth/me", creds).result_int();
    std::lock_guard lock(loot_.mutex);
    loot_.heads.push_back(head);
    loot_.api_replies.push_back(status);
  }

  Loot& loot_;
  std::uint16_t& control_port_;
};

class SessionIsolationTest : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }

  void start(std::vector<std::string> allowed_origins) {
    server_.reset();
    auto signer = auth::AccessTokenSigner::create(std::string(32, 'k'), clock_);
    ASSERT_TRUE(signer.ok());
    signer_.emplace(std::move(signer).value());
    ProxyOptions options;
    options.authorize = [this](const ProxyAuthRequest& request) -> Result<ProxyTarget> {
      KASM_RETURN_IF_ERROR(signer_->verifyFor(request.token, request.session));
      return ProxyTarget{upstream_.address(), SessionProtocol::kHttp, kViewer};
    };
    options.allowed_origins = std::move(allowed_origins);
    auto proxy = SessionProxy::create(options);
    ASSERT_TRUE(proxy.ok()) << proxy.error().toString();
    // The control plane: its API answers the viewer's login cookie (and, for writes, the CSRF
    // header), as kasm-server's does.
    auto server = HttpServer::start(
        {},
        [](HttpRequest req, Responder respond) {
          const auto cookie = req.headers.find("Cookie");
          const bool logged_in = cookie && cookie->find(kLoginCookie) != std::string_view::npos;
          if (req.path == "/api/v1/auth/me" && logged_in) {
            return respond(HttpResponse::json(200, R"({"user":"admin","csrf_token":")" + kCsrf + "\"}"));
          }
          respond(HttpResponse::json(401, R"({"error_message":"log in"})"));
        },
        *proxy);
    ASSERT_TRUE(server.ok()) << server.error().toString();
    server_ = std::move(server).value();
    control_port_ = server_->port();
  }

  std::string token() { return signer_->issue(kSession, kViewer, std::chrono::minutes(5)); }
  std::uint16_t port() const { return server_->port(); }
  std::string origin() const { return "http://127.0.0.1:" + std::to_string(port()); }

  // What the viewer's browser sends to the session: its login cookie and CSRF token ride along,
  // because the session lives on the control plane's origin.
  std::vector<std::pair<std::string, std::string>> browserFields() {
    return {{"Cookie", "theme=dark; " + kLoginCookie + "; kasm_session_token=" + token() + "; lang=en"},
            {"X-CSRF-Token", kCsrf},
            {"Authorization", "Basic dmlld2VyOnNlY3JldA=="}};
  }

  void expectNothingLeaked() {
    std::lock_guard lock(loot_.mutex);
    ASSERT_FALSE(loot_.heads.empty()) << "the request never reached the container";
    for (const auto& head : loot_.heads) {
      for (const char* secret : {"viewer-login-secret", "kasm_auth", "kasm_session_token", kCsrf.c_str(),
                                 "X-CSRF-Token", "Authorization", "dmlld2VyOnNlY3JldA=="}) {
        EXPECT_EQ(head.find(secret), std::string::npos) << secret << " reached the container:\n" << head;
      }
      EXPECT_NE(head.find("Cookie: theme=dark; lang=en\r\n"), std::string::npos) << "its own cookies pass:\n" << head;
    }
    for (int status : loot_.api_replies) EXPECT_EQ(status, 401) << "the container called the API as the viewer";
  }

  // The response's cookies stay inside the session and its page runs sandboxed.
  static void expectConfined(const http::response<http::string_body>& res) {
    std::vector<std::string> cookies;
    for (const auto& f : res) {
      if (f.name() == http::field::set_cookie) cookies.emplace_back(f.value());
    }
    EXPECT_EQ(cookies,
              (std::vector<std::string>{"app=1; Path=/desktop/sess1/; HttpOnly", "pref=2; Path=/desktop/sess1/",
                                        "deep=3; Path=/desktop/sess1/sub; SameSite=Lax"}));
    const std::string csp(res["Content-Security-Policy"]);
    EXPECT_NE(csp.find("sandbox"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("allow-same-origin"), std::string::npos) << "the page would share the API's origin: " << csp;
    EXPECT_NE(csp.find("frame-ancestors"), std::string::npos) << csp;
  }

  ManualClock clock_;
  std::optional<auth::AccessTokenSigner> signer_;
  Loot loot_;
  std::uint16_t control_port_ = 0;
  LoopbackListener upstream_{HostileUpstream(loot_, control_port_)};
  std::unique_ptr<HttpServer> server_;
};

TEST_F(SessionIsolationTest, APlainRequestCarriesNoCredentialOfTheViewer) {
  // The viewer's own credentials work on the API: the test's control plane is a real check.
  EXPECT_EQ(httpGet(port(), "/api/v1/auth/me", {{"Cookie", kLoginCookie}}).result_int(), 200);
  auto res = httpGet(port(), "/desktop/sess1/index.html", browserFields());
  ASSERT_EQ(res.result_int(), 200) << res.body();
  expectNothingLeaked();
  expectConfined(res);
}

TEST_F(SessionIsolationTest, ARequestWithABodyCarriesNoCredentialOfTheViewer) {
  http::request<http::string_body> req{http::verb::post, "/desktop/sess1/form", 11};
  for (auto& [k, v] : browserFields()) req.set(k, v);
  req.body() = "field=value";
  auto res = httpRequest(port(), std::move(req));
  ASSERT_EQ(res.result_int(), 200) << res.body();
  expectNothingLeaked();
  expectConfined(res);
}

TEST_F(SessionIsolationTest, AChunkedAnswerIsConfinedLikeAnyOther) {
  auto res = httpGet(port(), "/desktop/sess1/chunked", browserFields());
  ASSERT_EQ(res.result_int(), 200) << res.body();
  expectNothingLeaked();
  expectConfined(res);
}

TEST_F(SessionIsolationTest, TheTokenInTheQueryNeverReachesTheContainer) {
  auto res =
      httpGet(port(), "/desktop/sess1/?token=" + token(), {{"Cookie", "theme=dark; " + kLoginCookie + "; lang=en"}});
  ASSERT_EQ(res.result_int(), 200) << res.body();
  expectNothingLeaked();
  std::lock_guard lock(loot_.mutex);
  EXPECT_EQ(loot_.heads.front().find("token="), std::string::npos) << loot_.heads.front();
}

// A WebSocket handshake through the proxy with the given Origin (none when empty); the status.
int upgradeStatus(std::uint16_t port, const std::string& target, const std::string& origin) {
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws(connectTo(ioc, port));
  ws.set_option(websocket::stream_base::decorator([origin](websocket::request_type& req) {
    if (!origin.empty()) req.set(http::field::origin, origin);
  }));
  websocket::response_type res;
  beast::error_code ec;
  ws.handshake(res, "127.0.0.1:" + std::to_string(port), target, ec);
  return res.result_int();
}

TEST_F(SessionIsolationTest, WebSocketsOpenOnlyFromTheServersOwnOrAllowedOrigins) {
  LoopbackListener ws_upstream{serveWebSocketEcho};
  auto signer = auth::AccessTokenSigner::create(std::string(32, 'k'), clock_);
  ASSERT_TRUE(signer.ok());
  ProxyOptions options;
  options.authorize = [&](const ProxyAuthRequest& request) -> Result<ProxyTarget> {
    KASM_RETURN_IF_ERROR(signer->verifyFor(request.token, request.session));
    return ProxyTarget{ws_upstream.address(), SessionProtocol::kHttp, kViewer};
  };
  options.allowed_origins = {"https://portal.example"};
  auto proxy = SessionProxy::create(options);
  ASSERT_TRUE(proxy.ok());
  auto server = HttpServer::start(
      {}, [](HttpRequest, Responder r) { r(HttpResponse::text(404, "")); }, *proxy);
  ASSERT_TRUE(server.ok());
  const auto p = (*server)->port();
  const std::string target = "/desktop/sess1/ws?token=" + signer->issue(kSession, kViewer, std::chrono::minutes(5));
  const std::string own = "http://127.0.0.1:" + std::to_string(p);

  EXPECT_EQ(upgradeStatus(p, target, "https://evil.example"), 403);
  EXPECT_EQ(upgradeStatus(p, target, "null"), 403) << "a sandboxed page (opaque origin)";
  EXPECT_EQ(upgradeStatus(p, target, "http://127.0.0.1:1"), 403) << "another port is another origin";
  EXPECT_EQ(ws_upstream.accepted(), 0) << "refused upgrades never reach the container";
  EXPECT_EQ(upgradeStatus(p, target, own), 101);
  EXPECT_EQ(upgradeStatus(p, target, "https://portal.example"), 101);
  EXPECT_EQ(upgradeStatus(p, target, ""), 101) << "no Origin: not a browser; the token alone decides";
}

}  // namespace
}  // namespace kasm::net
