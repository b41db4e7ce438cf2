// The VNC bridge when the proxy speaks RFB itself (ProxyTarget::vnc_password or view-only): a fake
// desktop on loopback checks the proxy's VNC Authentication, behaves like a real server about the
// shared flag (a non-shared ClientInit disconnects the other viewers), answers each update request
// with a frame and records every client message it receives. Browsers are raw WebSocket clients
// doing the RFB client side by hand.

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <set>

#include "auth/vnc_auth.hpp"
#include "kasm/auth/access_token.hpp"
#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"
#include "net/net_test_support.hpp"

namespace kasm::net {
namespace {

using namespace kasm::net::testing;
using namespace std::chrono_literals;

const SessionId kDesk("desk1");
const UserId kAlice("alice");
const UserId kBob("bob");
const std::string kPassword = "secret12";

std::string u16(unsigned v) {
  return {char(v >> 8), char(v & 0xFF)};
}
std::string u32(std::uint32_t v) {
  return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}
std::uint32_t getU32(const std::string& s, std::size_t at = 0) {
  return (std::uint32_t(std::uint8_t(s[at])) << 24) | (std::uint32_t(std::uint8_t(s[at + 1])) << 16) |
         (std::uint32_t(std::uint8_t(s[at + 2])) << 8) | std::uint8_t(s[at + 3]);
}

// Client messages as noVNC sends them.
std::string updateRequest(unsigned x = 0) {
  return std::string("\x03\x01", 2) + u16(x) + u16(0) + u16(2) + u16(2);
}
std::string setEncodings() {
  return std::string("\x02\x00", 2) + u16(2) + u32(0) + u32(static_cast<std::uint32_t>(-223));
}
std::string keyEvent(unsigned key = 0x61) {
  return std::string("\x04\x01\x00\x00", 4) + u32(key);
}
std::string pointerEvent() {
  return std::string("\x05\x01", 2) + u16(1) + u16(1);
}
std::string cutText(const std::string& t) {
  return std::string("\x06\x00\x00\x00", 4) + u32(static_cast<std::uint32_t>(t.size())) + t;
}
std::string setDesktopSize() {
  return std::string("\xfb\x00", 2) + u16(800) + u16(600) + "\x01" + '\0' + u32(0) + u16(0) + u16(0) + u16(800) +
         u16(600) + u32(0);
}
std::string xvp() {
  return std::string("\xfa\x00\x01\x02", 4);  // Shutdown.
}
std::string fence() {
  return std::string("\xf8\x00\x00\x00", 4) + u32(0x80000001) + "\x02" + "ab";
}
// A harmless message the tests send last and wait for: everything before it has then arrived.
std::string marker(unsigned n) {
  return updateRequest(1000 + n);
}

// 2x2 desktop, 32 bits per pixel; each frame is one Raw 1x1 rectangle.
const std::string kServerInit = u16(2) + u16(2) +
                                std::string("\x20\x18\x00\x01\x00\xff\x00\xff\x00\xff\x10\x08\x00", 13) +
                                std::string(3, '\0') + u32(4) + "fake";
const std::string kFrame =
    std::string("\x00\x00", 2) + u16(1) + u16(0) + u16(0) + u16(1) + u16(1) + u32(0) + "\x11\x22\x33\x00";

class FakeDesktop {
 public:
  explicit FakeDesktop(std::string password) : password_(std::move(password)) {}
  std::string address() const { return listener_.address(); }

  std::vector<int> sharedFlags() {
    std::lock_guard lock(mutex_);
    return shared_flags_;
  }
  // What connection `index` received after ClientInit, once it ends with `tail` (or after 5 s).
  std::string receivedUntil(std::size_t index, const std::string& tail) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, 5s, [&] { return index < received_.size() && received_[index].ends_with(tail); });
    return index < received_.size() ? received_[index] : std::string();
  }

 private:
  void serve(tcp::socket& s) {
    asio::write(s, asio::buffer(std::string("RFB 003.008\n")));
    char version[12];
    asio::read(s, asio::buffer(version));
    asio::write(s, asio::buffer(std::string("\x01\x02", 2)));  // VNC Authentication only.
    char choice = 0;
    asio::read(s, asio::buffer(&choice, 1));
    unsigned char challenge[16];
    for (int i = 0; i < 16; ++i) challenge[i] = static_cast<unsigned char>(i * 37 + challenge_salt_++);
    asio::write(s, asio::buffer(challenge));
    unsigned char response[16];
    asio::read(s, asio::buffer(response));
    const auto expected = auth::detail::vncAuthResponse(password_, challenge);
    if (choice != 2 || std::memcmp(response, expected.data(), 16) != 0) {
      asio::write(s, asio::buffer(u32(1) + u32(14) + "wrong password"));
      return;
    }
    asio::write(s, asio::buffer(u32(0)));
    char shared = 0;
    asio::read(s, asio::buffer(&shared, 1));
    std::size_t index;
    {
      std::lock_guard lock(mutex_);
      // A real server drops the other viewers when one asks not to share.
      if (shared == 0) {
        for (auto* other : live_) {
          beast::error_code ec;
          other->shutdown(tcp::socket::shutdown_both, ec);
        }
      }
      index = received_.size();
      received_.emplace_back();
      shared_flags_.push_back(shared);
      live_.push_back(&s);
    }
    asio::write(s, asio::buffer(kServerInit));
    std::size_t answered = 0;
    char buf[4096];
    for (;;) {
      beast::error_code ec;
      const std::size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec) break;
      std::size_t requests = 0;
      {
        std::lock_guard lock(mutex_);
        auto& got = received_[index];
        got.append(buf, n);
        for (std::size_t at = got.find("\x03\x01", 0, 2); at != std::string::npos;
             at = got.find("\x03\x01", at + 1, 2)) {
          ++requests;
        }
      }
      cv_.notify_all();
      for (; answered < requests; ++answered) asio::write(s, asio::buffer(kFrame), ec);
    }
    std::lock_guard lock(mutex_);
    std::erase(live_, &s);
  }

  std::string password_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> received_;
  std::vector<int> shared_flags_;
  std::vector<tcp::socket*> live_;
  std::atomic<int> challenge_salt_{0};
  LoopbackListener listener_{[this](tcp::socket& s) { serve(s); }};  // Last: stopped first.
};

// The browser's side: RFB over a WebSocket, by hand.
class Viewer {
 public:
  explicit Viewer(std::unique_ptr<websocket::stream<tcp::socket>> ws) : ws_(std::move(ws)) { ws_->binary(true); }

  std::string read(std::size_t n) {
    while (in_.size() < n) {
      beast::flat_buffer b;
      ws_->read(b);
      in_ += beast::buffers_to_string(b.data());
    }
    std::string out = in_.substr(0, n);
    in_.erase(0, n);
    return out;
  }
  void send(const std::string& bytes) { ws_->write(asio::buffer(bytes)); }
  // True when the proxy closed the connection (within the socket's default blocking read).
  bool closed() {
    beast::flat_buffer b;
    beast::error_code ec;
    ws_->read(b, ec);
    return static_cast<bool>(ec);
  }
  // Version, security (expects only None), SecurityResult, ClientInit, ServerInit.
  void handshake(char shared = 0) {
    EXPECT_EQ(read(12), "RFB 003.008\n");
    send("RFB 003.008\n");
    EXPECT_EQ(read(2), std::string("\x01\x01", 2)) << "only security type None is offered";
    send(std::string("\x01", 1));
    EXPECT_EQ(getU32(read(4)), 0u);
    send(std::string(1, shared));
    EXPECT_EQ(read(kServerInit.size()), kServerInit);
  }
  void expectFrame() { EXPECT_EQ(read(kFrame.size()), kFrame); }
  websocket::stream<tcp::socket>& ws() { return *ws_; }

 private:
  std::unique_ptr<websocket::stream<tcp::socket>> ws_;
  std::string in_;
};

class ProxyRfbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto signer = auth::AccessTokenSigner::create(std::string(32, 'k'), clock_);
    ASSERT_TRUE(signer.ok());
    signer_.emplace(std::move(signer).value());
    ProxyOptions options;
    options.upstream_timeout = 5s;
    options.authorize = [this](const ProxyAuthRequest& request) -> Result<ProxyTarget> {
      KASM_ASSIGN_OR_RETURN(auto claims, signer_->verifyFor(request.token, request.session));
      std::lock_guard lock(mutex_);
      ProxyTarget t{upstream_, SessionProtocol::kVnc, claims.user_id};
      t.vnc_password = password_;
      t.access = view_only_.contains(claims.user_id.str()) ? ViewerAccess::kViewOnly : ViewerAccess::kFull;
      return t;
    };
    options.on_vnc_error = [this](const SessionId&, const UserId& user, std::string_view why) {
      std::lock_guard lock(mutex_);
      errors_.push_back(user.str() + ": " + std::string(why));
    };
    auto proxy = SessionProxy::create(options);
    ASSERT_TRUE(proxy.ok()) << proxy.error().toString();
    proxy_ = *proxy;
    auto server = HttpServer::start(
        {}, [](HttpRequest, Responder respond) { respond(HttpResponse::text(200, "app")); }, proxy_);
    ASSERT_TRUE(server.ok()) << server.error().toString();
    server_ = std::move(server).value();
  }

  Viewer open(const UserId& user) {
    auto ws = std::make_unique<websocket::stream<tcp::socket>>(connectTo(ioc_, server_->port()));
    ws->handshake("127.0.0.1", "/desktop/desk1/websockify?token=" + signer_->issue(kDesk, user, 5min));
    return Viewer(std::move(ws));
  }
  void viewOnly(const UserId& user) {
    std::lock_guard lock(mutex_);
    view_only_.insert(user.str());
  }
  std::vector<std::string> errors() {
    std::lock_guard lock(mutex_);
    return errors_;
  }

  ManualClock clock_;
  std::optional<auth::AccessTokenSigner> signer_;
  FakeDesktop desktop_{kPassword};
  std::mutex mutex_;
  std::string upstream_ = desktop_.address();
  std::optional<std::string> password_ = kPassword;
  std::set<std::string> view_only_;
  std::vector<std::string> errors_;
  std::shared_ptr<SessionProxy> proxy_;
  std::unique_ptr<HttpServer> server_;
  asio::io_context ioc_;
};

TEST_F(ProxyRfbTest, OffersTheBrowserOnlyNoneAndAlwaysSharesTheDesktop) {
  auto viewer = open(kAlice);
  viewer.handshake(/*shared=*/0);
  viewer.send(updateRequest());
  viewer.expectFrame();
  EXPECT_EQ(desktop_.sharedFlags(), std::vector<int>{1}) << "the browser asked for an exclusive desktop";
  EXPECT_EQ(proxy_->stats().open_tunnels, 1u);
}

TEST_F(ProxyRfbTest, TwoViewersAtOnceBothReceiveFrames) {
  auto a = open(kAlice);
  a.handshake(0);
  auto b = open(kBob);
  b.handshake(0);  // Unshared, it would have pushed Alice off the fake desktop.
  for (auto* v : {&a, &b}) {
    v->send(updateRequest());
    v->expectFrame();
  }
  EXPECT_EQ(desktop_.sharedFlags(), (std::vector<int>{1, 1}));
}

TEST_F(ProxyRfbTest, AFullAccessViewersInputArrives) {
  auto viewer = open(kAlice);
  viewer.handshake();
  const std::string input =
      setEncodings() + keyEvent() + pointerEvent() + cutText("hi") + setDesktopSize() + xvp() + fence() + marker(1);
  viewer.send(input);
  EXPECT_EQ(desktop_.receivedUntil(0, marker(1)), input);
  EXPECT_EQ(proxy_->stats().input_dropped, 0u);
}

TEST_F(ProxyRfbTest, AViewOnlyViewersInputIsDropped) {
  viewOnly(kAlice);
  auto viewer = open(kAlice);
  viewer.handshake();
  // Spread over several WebSocket messages, one cut inside a message.
  const std::string all = setEncodings() + keyEvent() + pointerEvent() + cutText("secret") + setDesktopSize() + xvp() +
                          updateRequest() + fence() + keyEvent(0x62);
  viewer.send(all.substr(0, 13));
  viewer.send(all.substr(13) + marker(1));
  EXPECT_EQ(desktop_.receivedUntil(0, marker(1)), setEncodings() + updateRequest() + fence() + marker(1));
  EXPECT_EQ(proxy_->stats().input_dropped, 6u);
  viewer.expectFrame();  // The update request got through and was answered.
}

// What a viewer sends in the same message as its ClientInit reaches the relay (the handshake read
// it), filtered like the rest.
TEST_F(ProxyRfbTest, MessagesSentWithTheClientInitAreRelayedAndFiltered) {
  viewOnly(kAlice);
  auto viewer = open(kAlice);
  EXPECT_EQ(viewer.read(12), "RFB 003.008\n");
  viewer.send("RFB 003.008\n");
  EXPECT_EQ(viewer.read(2), std::string("\x01\x01", 2));
  viewer.send(std::string("\x01", 1));
  EXPECT_EQ(getU32(viewer.read(4)), 0u);
  viewer.send(std::string(1, '\x01') + keyEvent() + updateRequest() + marker(1));
  EXPECT_EQ(viewer.read(kServerInit.size()), kServerInit);
  EXPECT_EQ(desktop_.receivedUntil(0, marker(1)), updateRequest() + marker(1));
  EXPECT_EQ(proxy_->stats().input_dropped, 1u);
  viewer.expectFrame();
}

TEST_F(ProxyRfbTest, SetViewerAccessFlipsALiveBridgeBothWays) {
  viewOnly(kAlice);
  auto viewer = open(kAlice);
  viewer.handshake();
  viewer.send(keyEvent(1) + marker(1));
  EXPECT_EQ(desktop_.receivedUntil(0, marker(1)), marker(1));

  EXPECT_EQ(proxy_->setViewerAccess(kDesk, kAlice, ViewerAccess::kFull), 1u);
  viewer.send(keyEvent(2) + marker(2));
  EXPECT_EQ(desktop_.receivedUntil(0, marker(2)), marker(1) + keyEvent(2) + marker(2));

  EXPECT_EQ(proxy_->setViewerAccess(kDesk, kAlice, ViewerAccess::kViewOnly), 1u);
  viewer.send(keyEvent(3) + pointerEvent() + marker(3));
  EXPECT_EQ(desktop_.receivedUntil(0, marker(3)), marker(1) + keyEvent(2) + marker(2) + marker(3));
  EXPECT_EQ(proxy_->stats().input_dropped, 3u);
  EXPECT_EQ(proxy_->setViewerAccess(kDesk, kBob, ViewerAccess::kFull), 0u) << "Bob has no connection";
}

TEST_F(ProxyRfbTest, CloseViewerClosesOnlyThatUsersConnections) {
  auto alice = open(kAlice);
  alice.handshake();
  auto bob = open(kBob);
  bob.handshake();
  EXPECT_EQ(proxy_->closeViewer(kDesk, kAlice), 1u);
  EXPECT_TRUE(alice.closed());
  bob.send(updateRequest());
  bob.expectFrame();
  EXPECT_EQ(proxy_->closeViewer(kDesk, kAlice), 0u);
  EXPECT_EQ(proxy_->closeViewer(SessionId("other"), kBob), 0u);
}

TEST_F(ProxyRfbTest, AWrongPasswordGivesTheBrowserAnRfbFailure) {
  password_ = "not-the-password";
  auto viewer = open(kAlice);
  EXPECT_EQ(viewer.read(12), "RFB 003.008\n");
  viewer.send("RFB 003.008\n");
  EXPECT_EQ(viewer.read(1), std::string(1, '\0')) << "no security types: a failure";
  const auto len = getU32(viewer.read(4));
  EXPECT_EQ(viewer.read(len), "the desktop refused the proxy's credentials");
  EXPECT_TRUE(viewer.closed());
  EXPECT_EQ(errors(), std::vector<std::string>{"alice: the desktop refused the proxy's credentials"});
}

TEST_F(ProxyRfbTest, AVersion33BrowserGetsTheOldSecurityForm) {
  auto viewer = open(kAlice);
  EXPECT_EQ(viewer.read(12), "RFB 003.008\n");
  viewer.send("RFB 003.003\n");
  EXPECT_EQ(getU32(viewer.read(4)), 1u) << "security type None, as a u32, and no SecurityResult";
  viewer.send(std::string(1, '\0'));
  EXPECT_EQ(viewer.read(kServerInit.size()), kServerInit);
}

TEST_F(ProxyRfbTest, AnUnknownClientMessageClosesTheBridge) {
  auto viewer = open(kAlice);
  viewer.handshake();
  viewer.send(updateRequest());
  viewer.expectFrame();
  viewer.send(std::string("\x07\x00\x00\x00", 4));
  EXPECT_TRUE(viewer.closed());
  EXPECT_EQ(errors().size(), 1u);
}

TEST_F(ProxyRfbTest, ADesktopThatSpeaksNoRfbIsAFailureForTheBrowser) {
  LoopbackListener garbage{
      [](tcp::socket& s) { asio::write(s, asio::buffer(std::string("HTTP/1.1 400 Bad\r\n\r\n"))); }};
  upstream_ = garbage.address();
  auto viewer = open(kAlice);
  EXPECT_EQ(viewer.read(12), "RFB 003.008\n");
  viewer.send("RFB 003.008\n");
  EXPECT_EQ(viewer.read(1), std::string(1, '\0'));
  const auto len = getU32(viewer.read(4));
  EXPECT_EQ(viewer.read(len), "the desktop does not speak RFB");
}

TEST_F(ProxyRfbTest, ViewOnlyOnAnOpaqueBridgeClosesIt) {
  password_.reset();  // Opaque: the browser would do RFB with the desktop itself.
  auto viewer = open(kAlice);
  EXPECT_EQ(viewer.read(12), "RFB 003.008\n") << "the desktop's own greeting, relayed";
  EXPECT_EQ(proxy_->setViewerAccess(kDesk, kAlice, ViewerAccess::kFull), 0u) << "nothing to change";
  EXPECT_EQ(proxy_->setViewerAccess(kDesk, kAlice, ViewerAccess::kViewOnly), 1u);
  EXPECT_TRUE(viewer.closed());
}

}  // namespace
}  // namespace kasm::net
