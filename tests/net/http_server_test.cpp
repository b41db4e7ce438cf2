// HttpServer on loopback: requests and responses, handlers on a pool, limits and timeouts, bad
// input, TLS with a generated certificate, graceful stop.

#include "kasm/net/http_server.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <future>

#include "net/net_test_support.hpp"

namespace kasm::net {
namespace {

using namespace kasm::net::testing;

HttpHandler describeHandler() {
  return [](HttpRequest req, Responder respond) {
    std::string out = req.method + " " + req.path + "\n";
    for (auto& [k, v] : req.query) out += "q " + k + "=" + v + "\n";
    out += "x-test " + std::string(req.headers.find("X-TEST").value_or("-")) + "\n";
    out += "body " + req.body + "\n";
    out += "remote " + req.remote_address + "\n";
    respond(HttpResponse::text(200, out));
  };
}

std::unique_ptr<HttpServer> startServer(HttpServerOptions options, HttpHandler handler) {
  auto server = HttpServer::start(std::move(options), std::move(handler));
  EXPECT_TRUE(server.ok()) << (server.ok() ? "" : server.error().toString());
  return std::move(server).value();
}

TEST(HttpServer, ServesGetAndPostWithQueryHeadersAndBody) {
  auto server = startServer({}, describeHandler());
  ASSERT_NE(server->port(), 0);

  auto get = httpGet(server->port(), "/hello/world?a=1&b=two%20words&c=x+y", {{"x-test", "yes"}});
  EXPECT_EQ(get.result_int(), 200);
  EXPECT_NE(get.body().find("GET /hello/world\n"), std::string::npos) << get.body();
  EXPECT_NE(get.body().find("q b=two words\n"), std::string::npos);
  EXPECT_NE(get.body().find("q c=x y\n"), std::string::npos);
  EXPECT_NE(get.body().find("x-test yes\n"), std::string::npos);
  EXPECT_NE(get.body().find("remote 127.0.0.1\n"), std::string::npos);

  http::request<http::string_body> post{http::verb::post, "/submit", 11};
  post.body() = "payload";
  auto res = httpRequest(server->port(), post);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_NE(res.body().find("POST /submit\nx-test -\nbody payload\n"), std::string::npos) << res.body();
}

TEST(HttpServer, HeadAnswersCarryTheLengthAndNoBody) {
  auto server = startServer({}, [](HttpRequest req, Responder respond) {
    if (req.path == "/declared") {
      HttpResponse r = HttpResponse::text(200, "");
      r.headers.set("Content-Length", "12345");
      return respond(std::move(r));
    }
    respond(HttpResponse::text(200, "hello"));
  });
  // A HEAD answer with a body would desynchronise the keep-alive connection: the GET after it on
  // the same connection must come back intact.
  std::string reply = rawExchange(
      server->port(), "HEAD /x HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  const auto first_end = reply.find("\r\n\r\n");
  ASSERT_NE(first_end, std::string::npos) << reply;
  EXPECT_NE(reply.substr(0, first_end).find("Content-Length: 5"), std::string::npos) << reply;
  EXPECT_EQ(reply.substr(first_end + 4, 8), "HTTP/1.1") << "no body after the HEAD answer: " << reply;
  EXPECT_NE(reply.find("hello"), std::string::npos);
  std::string declared = rawExchange(server->port(), "HEAD /declared HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_NE(declared.find("Content-Length: 12345"), std::string::npos) << declared;
}

TEST(HttpServer, KeepsConnectionsAliveAcrossRequests) {
  auto server = startServer({}, describeHandler());
  asio::io_context ioc;
  auto s = connectTo(ioc, server->port());
  beast::flat_buffer buffer;
  for (int i = 0; i < 3; ++i) {
    http::request<http::string_body> req{http::verb::get, "/n/" + std::to_string(i), 11};
    req.set(http::field::host, "x");
    http::write(s, req);
    http::response<http::string_body> res;
    http::read(s, buffer, res);
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_TRUE(res.keep_alive());
    EXPECT_NE(res.body().find("/n/" + std::to_string(i)), std::string::npos);
  }
}

TEST(HttpServer, HandlerThreadsAnswerFromAnotherThreadLater) {
  HttpServerOptions options;
  options.handler_threads = 2;
  auto server = startServer(options, [](HttpRequest, Responder respond) {
    // Answer from a thread the handler starts and abandons: the Responder outlives the call.
    std::thread([respond] { respond(HttpResponse::text(202, "later")); }).detach();
  });
  auto res = httpGet(server->port(), "/slow");
  EXPECT_EQ(res.result_int(), 202);
  EXPECT_EQ(res.body(), "later");
}

TEST(HttpServer, ForgottenResponderGives500) {
  auto server = startServer({}, [](HttpRequest, Responder) {});
  EXPECT_EQ(httpGet(server->port(), "/").result_int(), 500);
}

// A handler that throws, on an I/O thread or on the pool, anything at all: the request gets a 500
// without the exception's text, and the process and the connection's thread live on.
TEST(HttpServer, AThrowingHandlerAnswers500AndTheServerLives) {
  for (std::size_t pool_threads : {std::size_t{0}, std::size_t{2}}) {
    HttpServerOptions options;
    options.handler_threads = pool_threads;
    auto server = startServer(options, [](HttpRequest req, Responder respond) {
      if (req.path == "/std") throw std::runtime_error("secret internals");
      if (req.path == "/int") throw 42;
      respond(HttpResponse::text(200, "fine"));
    });
    for (int round = 0; round < 3; ++round) {  // More throws than pool threads.
      auto res = httpGet(server->port(), "/std");
      EXPECT_EQ(res.result_int(), 500) << "pool threads " << pool_threads;
      EXPECT_EQ(res.body().find("secret internals"), std::string::npos) << res.body();
      EXPECT_EQ(httpGet(server->port(), "/int").result_int(), 500) << "pool threads " << pool_threads;
    }
    EXPECT_EQ(httpGet(server->port(), "/ok").body(), "fine");
  }
}

// Beyond max_connections (in total, or from one address), a new connection is closed at once; one
// freed makes room again.
class ConnectionLimit : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(HttpServer, ConnectionLimit, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "PerAddress" : "Total"; });

TEST_P(ConnectionLimit, RefusesConnectionsBeyondTheLimit) {
  HttpServerOptions options;
  if (GetParam()) {
    options.max_connections_per_address = 2;
  } else {
    options.max_connections = 2;
  }
  auto server = startServer(options, describeHandler());
  asio::io_context ioc;
  // Two kept-alive connections, each answered once, so the server has surely counted both.
  std::vector<tcp::socket> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(connectTo(ioc, server->port()));
    http::request<http::empty_body> req{http::verb::get, "/held", 11};
    req.set(http::field::host, "a");
    http::write(held.back(), req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(held.back(), buffer, res);
    ASSERT_EQ(res.result_int(), 200);
  }
  const std::string request = "GET /third HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(rawExchange(server->port(), request), "") << "the third connection is closed unanswered";

  held.front().close();
  std::string reply;
  for (int i = 0; i < 100 && !reply.starts_with("HTTP/1.1 200"); ++i) {  // Bounded: the close is seen soon.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    reply = rawExchange(server->port(), request);
  }
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200")) << reply;
}

TEST(HttpServer, MalformedRequestLineGets400AndServerKeepsServing) {
  auto server = startServer({}, describeHandler());
  std::string reply = rawExchange(server->port(), "THIS IS NOT HTTP\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply;
  reply = rawExchange(server->port(), "GET /x HTTP/2.0\r\nHost: a\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply;
  reply = rawExchange(server->port(), "GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: nope\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply;
  reply = rawExchange(server->port(), "GET /x HTTP/1.1\r\nBad Header\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply;
  EXPECT_EQ(httpGet(server->port(), "/still-up").result_int(), 200);
}

TEST(HttpServer, OversizedHeaderGets431) {
  auto server = startServer({}, describeHandler());
  std::string reply =
      rawExchange(server->port(), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(64 * 1024, 'x') + "\r\n\r\n");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 431")) << reply.substr(0, 100);
}

TEST(HttpServer, HundredMegabyteBodyGets413BeforeItIsSent) {
  auto server = startServer({}, describeHandler());
  asio::io_context ioc;
  auto s = connectTo(ioc, server->port());
  // Announce 100 MB, send only 64 KiB of it: the answer must come without the rest.
  asio::write(s, asio::buffer(std::string("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 104857600\r\n\r\n")));
  beast::error_code ec;  // The server may already have answered and stopped reading.
  asio::write(s, asio::buffer(std::string(64 * 1024, 'z')), ec);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(s, buffer, res);
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_FALSE(res.keep_alive());
}

TEST(HttpServer, ChunkedBodyOverTheLimitGets413) {
  HttpServerOptions options;
  options.max_body_bytes = 100 * 1024;
  auto server = startServer(options, describeHandler());
  asio::io_context ioc;
  auto s = connectTo(ioc, server->port());
  asio::write(s, asio::buffer(std::string("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")));
  beast::error_code ec;
  const std::string chunk = "8000\r\n" + std::string(0x8000, 'c') + "\r\n";
  for (int i = 0; i < 8 && !ec; ++i) asio::write(s, asio::buffer(chunk), ec);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(s, buffer, res);
  EXPECT_EQ(res.result_int(), 413);
}

TEST(HttpServer, SlowHeadersAreCutWhileOthersAreServed) {
  HttpServerOptions options;
  options.header_timeout = std::chrono::milliseconds(1500);
  auto server = startServer(options, describeHandler());
  asio::io_context ioc;
  auto slow = connectTo(ioc, server->port());
  const std::string request = "GET /slowloris HTTP/1.1\r\nHost: a\r\nX-Padding: " + std::string(200, 'p') + "\r\n\r\n";

  // One byte a second, as a slowloris client does, until the server gives up on it.
  std::promise<std::string> outcome;
  std::thread writer([&] {
    beast::error_code ec;
    for (std::size_t i = 0; i < request.size() && !ec; ++i) {
      asio::write(slow, asio::buffer(&request[i], 1), ec);
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    outcome.set_value(ec ? "write failed" : "all written");
  });

  // Meanwhile others are served.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(httpGet(server->port(), "/other").result_int(), 200);

  std::string got;
  char buf[512];
  for (;;) {
    beast::error_code ec;
    std::size_t n = slow.read_some(asio::buffer(buf), ec);
    got.append(buf, n);
    if (ec) break;
  }
  EXPECT_TRUE(got.empty() || got.starts_with("HTTP/1.1 408")) << got;
  beast::error_code ec;
  slow.shutdown(tcp::socket::shutdown_both, ec);
  writer.join();
  EXPECT_EQ(outcome.get_future().get(), "write failed");
}

TEST(HttpServer, ServesHttpsWithAGeneratedCertificate) {
  auto dir = std::filesystem::temp_directory_path() / ("kasm-net-tls-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto tls = ensureSelfSignedCertificate(dir.string());
  ASSERT_TRUE(tls.ok()) << tls.error().toString();
  struct stat st {};
  ASSERT_EQ(::stat(tls->key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  const auto first_cert = std::filesystem::last_write_time(tls->cert_file);
  auto again = ensureSelfSignedCertificate(dir.string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(std::filesystem::last_write_time(again->cert_file), first_cert) << "an existing pair is kept";

  HttpServerOptions options;
  options.tls = *tls;
  auto server = startServer(options, describeHandler());
  EXPECT_TRUE(server->baseUrl().starts_with("https://127.0.0.1:"));

  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(tls->cert_file);
  ctx.set_verify_mode(asio::ssl::verify_peer);
  beast::ssl_stream<tcp::socket> stream(connectTo(ioc, server->port()), ctx);
  SSL_set_tlsext_host_name(stream.native_handle(), "localhost");
  stream.handshake(asio::ssl::stream_base::client);
  http::request<http::string_body> req{http::verb::get, "/secure", 11};
  req.set(http::field::host, "localhost");
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_NE(res.body().find("GET /secure"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(HttpServer, StopLetsARequestInFlightFinish) {
  HttpServerOptions options;
  options.handler_threads = 1;
  std::promise<void> entered;
  std::promise<void> release;
  auto release_future = release.get_future().share();
  auto server = startServer(options, [&](HttpRequest, Responder respond) {
    entered.set_value();
    release_future.wait();
    respond(HttpResponse::text(200, "finished"));
  });
  auto port = server->port();
  auto client = std::async(std::launch::async, [port] { return httpGet(port, "/in-flight"); });
  entered.get_future().wait();
  auto stopper = std::async(std::launch::async, [&] { server->stop(std::chrono::seconds(10)); });
  // Stop has begun once the listener is gone; only then let the handler answer.
  for (int i = 0; i < 5000; ++i) {
    asio::io_context probe_ioc;
    tcp::socket probe(probe_ioc);
    beast::error_code ec;
    probe.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    if (ec) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  release.set_value();
  auto res = client.get();
  stopper.get();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "finished");
  EXPECT_FALSE(res.keep_alive()) << "a stopping server does not keep connections";

  asio::io_context ioc;
  tcp::socket s(ioc);
  beast::error_code ec;
  s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  EXPECT_TRUE(ec) << "a stopped server accepts nothing";
}

TEST(HttpServer, RejectsBadOptions) {
  HttpServerOptions options;
  options.address = "not-an-ip";
  EXPECT_EQ(HttpServer::start(options, describeHandler()).error().code(), ErrorCode::kInvalidArgument);
  HttpServerOptions tls;
  tls.tls = TlsOptions{"/nonexistent/cert.pem", "/nonexistent/key.pem"};
  EXPECT_EQ(HttpServer::start(tls, describeHandler()).error().code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace kasm::net
