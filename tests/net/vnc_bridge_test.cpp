// The VNC bridge's own WebSocket side and its life once detached from the request: pings answered,
// the browser's close echoed, protocol errors answered with 1002, frames cut anywhere by the
// network, the WebSocket handshake's refusals, no relay buffer while idle, the write stall and idle
// timeouts, a server stop with bridges open, and a browser over TLS. The desktop is a raw TCP peer
// (an opaque bridge: no VNC password), the browser a Beast client or a raw socket.

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
const std::string kPath = "/desktop/vnc1/websockify";

struct Bridge {
  std::shared_ptr<SessionProxy> proxy;
  std::unique_ptr<HttpServer> server;
  std::uint16_t port() const { return server->port(); }
};

Bridge startBridge(const std::string& upstream, ProxyOptions options = {}, HttpServerOptions server_options = {}) {
  options.authorize = [upstream](const ProxyAuthRequest&) -> Result<ProxyTarget> {
    return ProxyTarget{upstream, SessionProtocol::kVnc, kUser};
  };
  auto proxy = SessionProxy::create(std::move(options));
  EXPECT_TRUE(proxy.ok()) << (proxy.ok() ? "" : proxy.error().toString());
  auto server = HttpServer::start(
      std::move(server_options), [](HttpRequest, Responder r) { r(HttpResponse::text(200, "app")); }, *proxy);
  EXPECT_TRUE(server.ok()) << (server.ok() ? "" : server.error().toString());
  return {*proxy, std::move(server).value()};
}

std::unique_ptr<websocket::stream<tcp::socket>> openViewer(asio::io_context& ioc, std::uint16_t port) {
  auto ws = std::make_unique<websocket::stream<tcp::socket>>(connectTo(ioc, port));
  ws->handshake("127.0.0.1", kPath);
  ws->binary(true);
  return ws;
}

// Waits (bounded) until `done` holds.
template <class Pred>
bool eventually(Pred done, std::chrono::milliseconds limit = 5s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

std::string readSome(websocket::stream<tcp::socket>& ws, std::size_t n) {
  std::string got;
  beast::flat_buffer buffer;
  while (got.size() < n) {
    buffer.clear();
    ws.read(buffer);
    got += beast::buffers_to_string(buffer.data());
  }
  return got;
}

// ---- a browser by hand ---------------------------------------------------------------------------

// A masked client frame.
std::string clientFrame(unsigned first_byte, const std::string& payload, bool masked = true) {
  std::string f(1, static_cast<char>(first_byte));
  const unsigned char mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(mask_bit | payload.size()));
  } else {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xFF));
  }
  const char key[4] = {0x11, 0x22, 0x33, 0x44};
  if (masked) f.append(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    f.push_back(static_cast<char>(payload[i] ^ (masked ? key[i % 4] : 0)));
  return f;
}

struct ServerFrame {
  unsigned opcode = 0;
  std::string payload;
};

class RawBrowser {
 public:
  RawBrowser(asio::io_context& ioc, std::uint16_t port, const std::string& extra_fields = "",
             const std::string& version = "13")
      : socket_(connectTo(ioc, port)) {
    socket_.set_option(tcp::no_delay(true));
    const std::string request = "GET " + kPath +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: " +
                                version + "\r\n" + extra_fields + "\r\n";
    asio::write(socket_, asio::buffer(request));
    head_ = readRequestHead(socket_, in_).value_or("");
  }
  const std::string& head() const { return head_; }
  void send(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }
  // The next server frame; nullopt once the connection is closed.
  std::optional<ServerFrame> next() {
    if (!fill(2)) return std::nullopt;
    ServerFrame f;
    f.opcode = static_cast<unsigned char>(in_[0]) & 0x0F;
    EXPECT_EQ(static_cast<unsigned char>(in_[0]) & 0xF0, 0x80u) << "FIN, no reserved bits";
    EXPECT_EQ(static_cast<unsigned char>(in_[1]) & 0x80, 0u) << "server frames are unmasked";
    std::size_t len = static_cast<unsigned char>(in_[1]) & 0x7F;
    std::size_t head = 2;
    if (len == 126) {
      if (!fill(4)) return std::nullopt;
      len = (std::size_t(static_cast<unsigned char>(in_[2])) << 8) | static_cast<unsigned char>(in_[3]);
      head = 4;
    } else if (len == 127) {
      if (!fill(10)) return std::nullopt;
      len = 0;
      for (int i = 2; i < 10; ++i) len = (len << 8) | static_cast<unsigned char>(in_[i]);
      head = 10;
    }
    if (!fill(head + len)) return std::nullopt;
    f.payload = in_.substr(head, len);
    in_.erase(0, head + len);
    return f;
  }
  // The data frames' payloads until `n` bytes came; control frames go to `controls`.
  std::string data(std::size_t n, std::vector<ServerFrame>* controls = nullptr) {
    std::string got;
    while (got.size() < n) {
      auto f = next();
      if (!f) break;
      if (f->opcode == 0x2) {
        got += f->payload;
      } else if (controls) {
        controls->push_back(*f);
      }
    }
    return got;
  }

 private:
  bool fill(std::size_t n) {
    char buf[4096];
    while (in_.size() < n) {
      beast::error_code ec;
      const std::size_t k = socket_.read_some(asio::buffer(buf), ec);
      if (ec) return false;
      in_.append(buf, k);
    }
    return true;
  }

  tcp::socket socket_;
  std::string in_;
  std::string head_;
};

// ---- the WebSocket side --------------------------------------------------------------------------

TEST(VncBridge, AnswersTheHandshakeAndRefusesAnotherVersion) {
  LoopbackListener desktop{serveTcpEcho};
  auto b = startBridge(desktop.address());
  asio::io_context ioc;
  RawBrowser ok(ioc, b.port(), "Sec-WebSocket-Protocol: base64, binary\r\n");
  EXPECT_TRUE(ok.head().starts_with("HTTP/1.1 101 ")) << ok.head();
  EXPECT_NE(ok.head().find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos) << ok.head();
  EXPECT_NE(ok.head().find("Sec-WebSocket-Protocol: binary\r\n"), std::string::npos) << ok.head();

  RawBrowser old(ioc, b.port(), "", "8");
  EXPECT_TRUE(old.head().starts_with("HTTP/1.1 426 ")) << old.head();
  EXPECT_NE(old.head().find("Sec-WebSocket-Version: 13\r\n"), std::string::npos) << old.head();
  EXPECT_EQ(desktop.accepted(), 1) << "a refused handshake does not reach the desktop";
}

TEST(VncBridge, AnswersPingsAndEchoesTheBrowsersClose) {
  LoopbackListener desktop{serveTcpEcho};
  auto b = startBridge(desktop.address());
  asio::io_context ioc;
  auto ws = openViewer(ioc, b.port());
  std::vector<std::string> pongs;
  ws->control_callback([&](websocket::frame_type kind, beast::string_view payload) {
    if (kind == websocket::frame_type::pong) pongs.emplace_back(payload);
  });
  ws->ping("are you there");
  ws->write(asio::buffer(std::string("RFB 003.008\n")));
  EXPECT_EQ(readSome(*ws, 12), "RFB 003.008\n");
  EXPECT_EQ(pongs, std::vector<std::string>{"are you there"});
  EXPECT_EQ(b.proxy->stats().open_tunnels, 1u);

  // Beast's close waits for the echo; the bridge closes its socket at once after it, which the
  // client's teardown may see as an error.
  beast::error_code ec;
  ws->close(websocket::close_reason(websocket::close_code::going_away), ec);
  EXPECT_EQ(ws->reason().code, websocket::close_code::going_away) << ec.message();
  EXPECT_TRUE(eventually([&] { return b.proxy->stats().open_tunnels == 0; }));
}

TEST(VncBridge, AnUnmaskedFrameIsAProtocolError) {
  LoopbackListener desktop{serveTcpEcho};
  auto b = startBridge(desktop.address());
  asio::io_context ioc;
  RawBrowser browser(ioc, b.port());
  ASSERT_TRUE(browser.head().starts_with("HTTP/1.1 101 "));
  browser.send(clientFrame(0x82, "hello", /*masked=*/false));
  auto close = browser.next();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->opcode, 0x8u);
  EXPECT_EQ(close->payload, std::string("\x03\xea", 2)) << "1002";
  EXPECT_FALSE(browser.next()) << "then the connection ends";
}

// The network may cut frames anywhere: a fragmented message with a ping between its fragments,
// sent a few bytes at a time, arrives whole and in order, and the ping is answered.
TEST(VncBridge, FramesCutByTheNetworkArriveWhole) {
  LoopbackListener desktop{serveTcpEcho};
  auto b = startBridge(desktop.address());
  asio::io_context ioc;
  RawBrowser browser(ioc, b.port());
  std::string big(300, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 13);
  const std::string stream = clientFrame(0x82, "first|") + clientFrame(0x02, "frag-") + clientFrame(0x89, "ping!") +
                             clientFrame(0x00, big) + clientFrame(0x80, "|end");
  for (std::size_t at = 0; at < stream.size(); at += 3) {
    browser.send(stream.substr(at, 3));
    std::this_thread::sleep_for(1ms);
  }
  std::vector<ServerFrame> controls;
  EXPECT_EQ(browser.data(6 + 5 + big.size() + 4, &controls), "first|frag-" + big + "|end");
  ASSERT_EQ(controls.size(), 1u);
  EXPECT_EQ(controls[0].opcode, 0xAu);
  EXPECT_EQ(controls[0].payload, "ping!");
}

// A desktop drawing without pause: bursts of frames, the bridge yielding the thread now and then,
// and every byte arrives in order.
TEST(VncBridge, ALongStreamArrivesWholeAndInOrder) {
  constexpr std::size_t kTotal = 24 * 1024 * 1024;
  auto byteAt = [](std::size_t i) { return static_cast<char>((i * 2654435761u) >> 13); };
  LoopbackListener desktop{[&](tcp::socket& socket) {
    std::string chunk(100 * 1000, '\0');
    beast::error_code ec;
    for (std::size_t sent = 0; sent < kTotal && !ec; sent += chunk.size()) {
      for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = byteAt(sent + i);
      asio::write(socket, asio::buffer(chunk.data(), std::min(chunk.size(), kTotal - sent)), ec);
    }
    char c;
    socket.read_some(asio::buffer(&c, 1), ec);  // Until the bridge closes.
  }};
  auto b = startBridge(desktop.address());
  asio::io_context ioc;
  auto ws = openViewer(ioc, b.port());
  std::size_t got = 0, wrong = 0;
  beast::flat_buffer buffer;
  while (got < kTotal) {
    buffer.clear();
    ws->read(buffer);
    const auto* p = static_cast<const char*>(buffer.data().data());
    for (std::size_t i = 0; i < buffer.size(); ++i) wrong += p[i] != byteAt(got + i);
    got += buffer.size();
  }
  EXPECT_EQ(got, kTotal);
  EXPECT_EQ(wrong, 0u);
}

// ---- the bridge's life -------------------------------------------------------------------------

TEST(VncBridge, AnIdleViewerHoldsNoRelayBuffer) {
  LoopbackListener desktop{serveTcpEcho};
  auto b = startBridge(desktop.address());
  asio::io_context ioc;
  auto ws = openViewer(ioc, b.port());
  const std::string chunk(200 * 1024, 'x');  // Several reads each way.
  ws->write(asio::buffer(chunk));
  EXPECT_EQ(readSome(*ws, chunk.size()), chunk);
  EXPECT_TRUE(eventually([&] { return b.proxy->stats().buffers_in_use == 0; }))
      << b.proxy->stats().buffers_in_use << " buffers held";
  ws->write(asio::buffer(std::string("again")));
  EXPECT_EQ(readSome(*ws, 5), "again") << "and it wakes up when data comes";
}

TEST(VncBridge, AViewerThatStopsReadingIsCut) {
  std::promise<void> cut;
  LoopbackListener desktop{[&](tcp::socket& socket) {
    const std::string chunk(64 * 1024, 'd');
    beast::error_code ec;
    while (!ec) asio::write(socket, asio::buffer(chunk), ec);  // A desktop that never stops drawing.
    cut.set_value();
  }};
  HttpServerOptions server_options;
  server_options.write_stall_timeout = 1s;
  auto b = startBridge(desktop.address(), {}, server_options);
  asio::io_context ioc;
  auto ws = openViewer(ioc, b.port());  // And never read.
  auto done = cut.get_future();
  EXPECT_EQ(done.wait_for(20s), std::future_status::ready) << "the stalled viewer was never cut";
  EXPECT_TRUE(eventually([&] { return b.proxy->stats().open_tunnels == 0; }));
}

TEST(VncBridge, AnIdleBridgeIsClosedAfterItsTimeout) {
  LoopbackListener desktop{serveTcpEcho};
  ProxyOptions options;
  options.tunnel_idle_timeout = 300ms;
  auto b = startBridge(desktop.address(), options);
  asio::io_context ioc;
  auto ws = openViewer(ioc, b.port());
  ws->write(asio::buffer(std::string("tick")));
  EXPECT_EQ(readSome(*ws, 4), "tick");
  const auto start = std::chrono::steady_clock::now();
  beast::flat_buffer buffer;
  beast::error_code ec;
  ws->read(buffer, ec);  // Ends when the proxy closes the idle bridge.
  EXPECT_TRUE(ec);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_TRUE(eventually([&] { return b.proxy->stats().open_tunnels == 0; }));
}

TEST(VncBridge, StoppingTheServerEndsOpenBridges) {
  LoopbackListener desktop{serveTcpEcho};
  auto b = startBridge(desktop.address());
  asio::io_context ioc;
  auto first = openViewer(ioc, b.port());
  auto second = openViewer(ioc, b.port());
  first->write(asio::buffer(std::string("x")));
  EXPECT_EQ(readSome(*first, 1), "x");
  EXPECT_EQ(b.proxy->stats().open_tunnels, 2u);
  const auto start = std::chrono::steady_clock::now();
  b.server->stop(2s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  EXPECT_EQ(b.proxy->stats().open_tunnels, 0u);
  beast::flat_buffer buffer;
  beast::error_code ec;
  second->read(buffer, ec);
  EXPECT_TRUE(ec);
}

TEST(VncBridge, BridgesABrowserOverTls) {
  auto dir = std::filesystem::temp_directory_path() / ("kasm-net-bridge-tls-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto tls = ensureSelfSignedCertificate(dir.string());
  ASSERT_TRUE(tls.ok()) << tls.error().toString();
  LoopbackListener desktop{serveTcpEcho};
  HttpServerOptions server_options;
  server_options.tls = *tls;
  auto b = startBridge(desktop.address(), {}, server_options);
  {
    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_verify_mode(asio::ssl::verify_none);
    websocket::stream<beast::ssl_stream<tcp::socket>> ws(connectTo(ioc, b.port()), ctx);
    ws.next_layer().handshake(asio::ssl::stream_base::client);
    ws.handshake("localhost", kPath);
    ws.binary(true);
    std::vector<std::string> pongs;
    ws.control_callback([&](websocket::frame_type kind, beast::string_view payload) {
      if (kind == websocket::frame_type::pong) pongs.emplace_back(payload);
    });
    std::string big(300 * 1024, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
    ws.ping("tls");
    ws.write(asio::buffer(big));
    std::string got;
    beast::flat_buffer buffer;
    while (got.size() < big.size()) {
      buffer.clear();
      ws.read(buffer);
      got += beast::buffers_to_string(buffer.data());
    }
    EXPECT_EQ(got, big);
    EXPECT_EQ(pongs, std::vector<std::string>{"tls"});
    beast::error_code ec;
    ws.close(websocket::close_code::normal, ec);
    EXPECT_EQ(ws.reason().code, websocket::close_code::normal) << ec.message();
  }
  EXPECT_TRUE(eventually([&] { return b.proxy->stats().open_tunnels == 0; }));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kasm::net
