// A browser that opens a desktop (VNC) session's URL gets the page that shows it
// (ProxyOptions::vnc_page), on both of the proxy's paths; the token that came in the address is
// handed back as the session's cookie so that a reload works; everything else stays refused.

#include <gtest/gtest.h>

#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"
#include "net/net_test_support.hpp"

namespace kasm::net {
namespace {

using namespace kasm::net::testing;

const UserId kUser("alice");
constexpr std::string_view kGoodToken = "good-token";

struct Viewer {
  std::shared_ptr<SessionProxy> proxy;
  std::unique_ptr<HttpServer> server;
};

Viewer start(bool with_page) {
  ProxyOptions options;
  options.authorize = [](const ProxyAuthRequest& r) -> Result<ProxyTarget> {
    if (r.token != kGoodToken) return unauthenticated("bad token");
    return ProxyTarget{"127.0.0.1:1", SessionProtocol::kVnc, kUser};
  };
  if (with_page) {
    options.vnc_page = [](const ProxyAuthRequest& r, const ProxyTarget& t) -> std::optional<ProxyPage> {
      ProxyPage page;
      page.body = "<html>viewer of " + r.session.str() + " for " + t.user.str() + "</html>";
      page.headers = {{"Referrer-Policy", "no-referrer"}};
      return page;
    };
  }
  auto proxy = SessionProxy::create(std::move(options));
  EXPECT_TRUE(proxy.ok());
  auto server = HttpServer::start(
      {}, [](HttpRequest, Responder r) { r(HttpResponse::text(200, "app")); }, *proxy);
  EXPECT_TRUE(server.ok());
  return {*proxy, std::move(server).value()};
}

TEST(ProxyViewer, ADesktopsUrlOpensItsViewerPage) {
  auto v = start(true);
  const auto port = v.server->port();
  auto page = httpGet(port, "/desktop/vnc1/?token=" + std::string(kGoodToken) + "&disable_control_panel=1");
  ASSERT_EQ(page.result_int(), 200) << page.body();
  EXPECT_EQ(page.body(), "<html>viewer of vnc1 for alice</html>");
  EXPECT_EQ(page[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(page["Referrer-Policy"], "no-referrer");
  const std::string cookie(page[http::field::set_cookie]);
  EXPECT_NE(cookie.find("kasm_session_token=" + std::string(kGoodToken)), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("Path=/desktop/vnc1/"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;

  // A reload without the token in the address: the cookie authorizes it.
  auto reload = httpGet(port, "/desktop/vnc1/", {{"Cookie", "kasm_session_token=" + std::string(kGoodToken)}});
  EXPECT_EQ(reload.result_int(), 200);
  EXPECT_TRUE(reload[http::field::set_cookie].empty());  // Nothing new to hand back.

  // The Beast path (a request the fast scanner leaves to it) answers the same.
  const std::string raw = rawExchange(port, "GET /desktop/vnc1/?token=" + std::string(kGoodToken) +
                                                " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                                "Connection: close\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(raw.rfind("HTTP/1.1 200", 0), 0u) << raw;
  EXPECT_NE(raw.find("viewer of vnc1"), std::string::npos) << raw;

  // No page without a valid token, and none below the session's root.
  EXPECT_EQ(httpGet(port, "/desktop/vnc1/?token=forged").result_int(), 401);
  EXPECT_EQ(httpGet(port, "/desktop/vnc1/").result_int(), 401);
  EXPECT_EQ(httpGet(port, "/desktop/vnc1/other?token=" + std::string(kGoodToken)).result_int(), 400);
}

TEST(ProxyViewer, WithoutAPageADesktopStillNeedsAWebSocket) {
  auto v = start(false);
  EXPECT_EQ(httpGet(v.server->port(), "/desktop/vnc1/?token=" + std::string(kGoodToken)).result_int(), 400);
}

}  // namespace
}  // namespace kasm::net
