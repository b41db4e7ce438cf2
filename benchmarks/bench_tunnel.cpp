// The cost of a reverse tunnel (kasm/tunnel): the same session proxy reaching the same upstream
// directly and through an agent's tunnel (TunnelClient -> HttpServer route -> TunnelHub gateway), all
// in this process on loopback. Reports MB/s of 8 MiB answers, requests/s of small ones on fresh
// connections (each a new stream through the tunnel), and the process's CPU per MB (everything:
// client, proxy, hub, agent end and upstream), so the ratio between the two rows is the tunnel's
// overhead.
//
//   build/benchmarks/bench_tunnel [--benchmark_filter=...]

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include "bench_util.hpp"
#include "kasm/auth/access_token.hpp"
#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"
#include "kasm/tunnel/protocol.hpp"
#include "kasm/tunnel/tunnel_client.hpp"
#include "kasm/tunnel/tunnel_hub.hpp"
#include "net/net_test_support.hpp"

namespace {

using namespace kasm;
using namespace kasm::net::testing;

struct Setup {
  Setup() {
    signer.emplace(std::move(auth::AccessTokenSigner::create(std::string(32, 'k'), clock).value()));
    tunnel::TunnelHubOptions ho;
    ho.key = key;
    hub = std::move(tunnel::TunnelHub::start(ho).value());
    net::ProxyOptions po;
    po.authorize = [this](const net::ProxyAuthRequest& r) -> Result<net::ProxyTarget> {
      KASM_RETURN_IF_ERROR(signer->verifyFor(r.token, r.session));
      net::ProxyTarget t{upstream.address(), SessionProtocol::kHttp, UserId("u")};
      if (r.session == tunnelled) {
        t.relay = hub->gatewayEndpoint();
        t.relay_preamble = tunnel::sealOpenRequest(key, agent, t.upstream, clock.now() + std::chrono::minutes(10));
        t.relay_identity = "tunnel|" + agent.str() + "|" + t.upstream;
      }
      return t;
    };
    proxy = net::SessionProxy::create(po).value();
    net::HttpServerOptions so;
    net::HttpSocketRoute route;
    route.open = [this](const net::HttpRequest&, std::shared_ptr<net::WebSocket> s) { return hub->attach(agent, s); };
    route.queue_bytes = 80 << 20;
    so.sockets.emplace("/tunnel", route);
    server = std::move(net::HttpServer::start(
                           so, [](net::HttpRequest, net::Responder r) { r(net::HttpResponse::text(404, "")); }, proxy)
                           .value());
    tunnel::TunnelClientOptions co;
    co.server = server->baseUrl();
    co.path = "/tunnel";
    co.agent = agent;
    co.token = [] { return std::string("t"); };
    co.allow = [](std::string_view) -> Result<void> { return {}; };
    client = std::move(tunnel::TunnelClient::start(co).value());
    for (int i = 0; i < 500 && !hub->holds(agent); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string path(const SessionId& s, const std::string& rest) {
    return "/desktop/" + s.str() + rest + "?token=" + signer->issue(s, UserId("u"), std::chrono::hours(1));
  }

  SystemClock clock;
  const std::string key = tunnel::deriveTunnelKey(std::string(32, 'i'));
  const AgentId agent{"bench-agent"};
  const SessionId direct{"direct"};
  const SessionId tunnelled{"tunnelled"};
  std::optional<auth::AccessTokenSigner> signer;
  LoopbackListener upstream{serveHttpEcho};
  std::unique_ptr<tunnel::TunnelHub> hub;
  std::shared_ptr<net::SessionProxy> proxy;
  std::unique_ptr<net::HttpServer> server;
  std::unique_ptr<tunnel::TunnelClient> client;
};

Setup& setup() {
  static Setup s;
  return s;
}

// Keep-alive GETs of 8 MiB on one connection.
void BM_Big(benchmark::State& state, bool through_tunnel) {
  auto& s = setup();
  const SessionId& session = through_tunnel ? s.tunnelled : s.direct;
  const std::string target = s.path(session, "/big/8388608");
  asio::io_context ioc;
  auto socket = connectTo(ioc, s.server->port());
  beast::flat_buffer buffer;
  std::size_t bytes = 0;
  const double cpu0 = bench::processCpuSeconds();
  for (auto _ : state) {
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(socket, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(socket, buffer, parser);
    if (parser.get().result_int() != 200 || parser.get().body().size() != 8388608) {
      state.SkipWithError("a transfer failed");
      break;
    }
    bytes += parser.get().body().size();
  }
  const double cpu = bench::processCpuSeconds() - cpu0;
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["cpu_ms_per_MB"] = bytes ? cpu * 1e3 / (static_cast<double>(bytes) / 1e6) : 0;
}

// Small GETs, each on a new connection (through the tunnel: a new stream each, with its open
// round trip to the agent).
void BM_SmallFresh(benchmark::State& state, bool through_tunnel) {
  auto& s = setup();
  const SessionId& session = through_tunnel ? s.tunnelled : s.direct;
  const std::string target = s.path(session, "/small");
  const double cpu0 = bench::processCpuSeconds();
  std::int64_t n = 0;
  for (auto _ : state) {
    auto res = httpGet(s.server->port(), target);
    if (res.result_int() != 200) {
      state.SkipWithError(("a request failed: HTTP " + std::to_string(res.result_int())).c_str());
      break;
    }
    ++n;
  }
  state.counters["req_per_s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
  state.counters["cpu_us_per_req"] = n ? (bench::processCpuSeconds() - cpu0) * 1e6 / static_cast<double>(n) : 0;
}

BENCHMARK_CAPTURE(BM_Big, direct, false)->UseRealTime()->MinTime(2);
BENCHMARK_CAPTURE(BM_Big, tunnel, true)->UseRealTime()->MinTime(2);
// Bounded: each request leaves two or three loopback connections in TIME_WAIT.
BENCHMARK_CAPTURE(BM_SmallFresh, direct, false)->UseRealTime()->Iterations(1500);
BENCHMARK_CAPTURE(BM_SmallFresh, tunnel, true)->UseRealTime()->Iterations(1500);

}  // namespace

BENCHMARK_MAIN();
