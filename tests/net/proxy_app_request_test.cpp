// Plain requests the proxy answers itself (ProxyOptions::app_request, kasm-server's file transfer):
// authorized like the desktop, bodies admitted before they are read and never beyond the size
// admitted, errors answered as JSON, large answers written whole; on both of the proxy's paths.

#include <gtest/gtest.h>

#include <atomic>

#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"
#include "net/net_test_support.hpp"

namespace kasm::net {
namespace {

using namespace kasm::net::testing;

constexpr std::string_view kToken = "good-token";

struct App {
  std::unique_ptr<BlockingPool> pool = std::make_unique<BlockingPool>(2);
  std::shared_ptr<SessionProxy> proxy;
  std::unique_ptr<HttpServer> server;
  std::atomic<int> handled{0};
};

std::unique_ptr<App> start() {
  auto app = std::make_unique<App>();
  ProxyOptions options;
  options.blocking_pool = app->pool.get();
  options.authorize = [](const ProxyAuthRequest& r) -> Result<ProxyTarget> {
    if (r.token != kToken) return unauthenticated("bad token");
    return ProxyTarget{"127.0.0.1:1", SessionProtocol::kVnc, UserId("alice")};
  };
  options.app_request_admit = [](const ProxyAuthRequest&, const ProxyTarget&,
                                 const ProxyAppRequest& r) -> Result<std::uint64_t> {
    if (r.path == "/refused") return permissionDenied("uploads are \"off\"");
    return 1000;
  };
  options.app_request = [a = app.get()](const ProxyAuthRequest& auth, const ProxyTarget& t,
                                        const ProxyAppRequest& r) -> Result<ProxyPage> {
    ++a->handled;
    if (r.path == "/missing") return notFound("no such file");
    ProxyPage page;
    page.content_type = "text/plain";
    page.body = r.path == "/big" ? std::string(3 * 1024 * 1024, 'b')
                                 : r.method + " " + r.path + "?" + r.query + " " + std::to_string(r.body.size()) +
                                       " bytes for " + t.user.str() + " on " + auth.session.str();
    page.headers = {{"Content-Disposition", "attachment"}};
    return page;
  };
  auto proxy = SessionProxy::create(std::move(options));
  EXPECT_TRUE(proxy.ok());
  app->proxy = *proxy;
  auto server = HttpServer::start(
      {}, [](HttpRequest, Responder r) { r(HttpResponse::text(200, "app")); }, app->proxy);
  EXPECT_TRUE(server.ok());
  app->server = std::move(server).value();
  return app;
}

http::response<http::string_body> post(std::uint16_t port, const std::string& target, std::string body) {
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::cookie, "kasm_session_token=" + std::string(kToken));
  req.body() = std::move(body);
  req.prepare_payload();
  return httpRequest(port, std::move(req));
}

TEST(ProxyAppRequest, AnsweredByTheEmbedderAfterTheUsualAuthorization) {
  auto app = start();
  const auto port = app->server->port();
  // The fast path's kind of request (a GET without a body) and the full path's (a POST).
  auto get = httpGet(port, "/desktop/s1/kasm/files?x=1&token=" + std::string(kToken));
  ASSERT_EQ(get.result_int(), 200) << get.body();
  EXPECT_EQ(get.body(), "GET ?x=1 0 bytes for alice on s1");
  EXPECT_EQ(get["Content-Disposition"], "attachment");
  EXPECT_EQ(get[http::field::cache_control], "no-store");
  auto up = post(port, "/desktop/s1/kasm/files/upload?name=a%20b", std::string(1000, 'u'));
  ASSERT_EQ(up.result_int(), 200) << up.body();
  EXPECT_EQ(up.body(), "POST /upload?name=a%20b 1000 bytes for alice on s1");
  // A large answer arrives whole.
  auto big = httpGet(port, "/desktop/s1/kasm/files/big?token=" + std::string(kToken));
  EXPECT_EQ(big.body().size(), 3u * 1024 * 1024);

  // Without the token nothing reaches the embedder; a path that only starts alike is not ours.
  EXPECT_EQ(httpGet(port, "/desktop/s1/kasm/files").result_int(), 401);
  EXPECT_EQ(httpGet(port, "/desktop/s1/kasm/filesX?token=" + std::string(kToken)).result_int(), 400);
  EXPECT_EQ(app->handled.load(), 3);
}

TEST(ProxyAppRequest, BodiesAreAdmittedFirstAndNeverReadBeyondTheLimit) {
  auto app = start();
  const auto port = app->server->port();
  auto refused = post(port, "/desktop/s1/kasm/files/refused", "x");
  EXPECT_EQ(refused.result_int(), 403);
  EXPECT_EQ(refused[http::field::content_type], "application/json");
  EXPECT_EQ(refused.body(), "{\"error\":\"uploads are \\\"off\\\"\"}\n");
  auto large = post(port, "/desktop/s1/kasm/files/upload", std::string(1001, 'x'));
  EXPECT_EQ(large.result_int(), 413);
  EXPECT_NE(large.body().find("1000 bytes allowed"), std::string::npos) << large.body();
  // A chunked body with no length is cut at the limit too.
  const std::string chunked = rawExchange(port,
                                          "POST /desktop/s1/kasm/files/upload HTTP/1.1\r\nHost: x\r\n"
                                          "Cookie: kasm_session_token=good-token\r\nTransfer-Encoding: chunked\r\n\r\n"
                                          "7d0\r\n" +
                                              std::string(2000, 'c') + "\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.rfind("HTTP/1.1 413", 0), 0u) << chunked.substr(0, 200);
  EXPECT_EQ(app->handled.load(), 0);
  // The embedder's errors are JSON with their status.
  auto missing = httpGet(app->server->port(), "/desktop/s1/kasm/files/missing?token=" + std::string(kToken));
  EXPECT_EQ(missing.result_int(), 404);
  EXPECT_EQ(missing.body(), "{\"error\":\"no such file\"}\n");
}

}  // namespace
}  // namespace kasm::net
