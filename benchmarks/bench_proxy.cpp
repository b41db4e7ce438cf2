// bench_proxy: the session proxy against Debian's nginx proxying the same upstream, in one run.
//
// Upstreams (in this process): an HTTP server (kasm::net::HttpServer answering /small with 1 KiB
// and /large with 1 MiB) and a WebSocket echo server. Paths measured, each with the same client:
//   direct   client -> upstream                       (the baseline for "added latency")
//   kasm     client -> kasm::net SessionProxy -> upstream (real token check on every request)
//   nginx    client -> nginx (2 workers, upstream keepalive) -> upstream
// Throughput: C keep-alive connections, each looping for a fixed time and count. Latency: one
// connection, sequential requests, median and p99. Only 127.0.0.1 is used; every loop is bounded.
//
// Every figure is the median of R rounds; within a round the three paths run back to back, in an
// order rotated from round to round, so a slow moment on a shared machine does not land on one
// path only.
//
// Idle connections: N WebSockets opened through each proxy to an in-process upstream and held
// silent; the proxy's PSS growth per connection, then its RSS once they are all closed. Our proxy
// runs there in a child process of its own (this binary with --proxy-child: HttpServer +
// SessionProxy, 2 I/O threads, as an integrator embeds them), so clients and upstream are not
// counted; nginx's master and workers are counted the same way.
//
// The code: bench_proxy.hpp (what the files share), bench_proxy_peers.cpp (upstreams, nginx, CPU
// accounting), bench_proxy_clients.cpp (throughput and latency clients), bench_proxy_idle.cpp
// (idle connections, --proxy-child); this file holds main(): the command line and the table.
//
// VNC streaming (--cases vnc, bench_proxy_vnc.cpp): a desktop drawing as fast as C viewers take it,
// through our VNC bridge, optionally an older build's (--kasm-before PATH), and websockify; MB/s
// and the bridge's CPU per MB. Not part of "all".
//
// Usage: bench_proxy [--seconds S] [--connections C] [--rounds R] [--idle N] [--idle-kind ws|http|vnc]
//                    [--cases idle|throughput|http|ws|vnc|all] [--nginx PATH] [--websockify PATH]
//                    [--kasm-before PATH]

#include "bench_proxy.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kasm/auth/access_token.hpp"
#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"

namespace kasm::bench {

double g_seconds = 3.0;
int g_connections = 4;
int g_idle = 2000;  // Idle WebSockets per proxy (0: skip the case).
std::string g_idle_kind = "ws";

}  // namespace kasm::bench

namespace {

int g_rounds = 3;
double g_serve_seconds = 0;  // --serve S: only start the servers, print their ports, wait S seconds.

}  // namespace

int main(int argc, char** argv) {
  using namespace kasm::bench;
  std::string nginx_binary = "/usr/sbin/nginx";
  std::string websockify_binary = "/usr/bin/websockify";
  std::string kasm_before;    // --kasm-before: another build of bench_proxy, for --cases vnc.
  std::string cases = "all";  // --cases idle | throughput (http and ws) | http | ws | vnc | all
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--seconds")
      g_seconds = std::stod(argv[i + 1]);
    else if (a == "--connections")
      g_connections = std::stoi(argv[i + 1]);
    else if (a == "--rounds")
      g_rounds = std::stoi(argv[i + 1]);
    else if (a == "--nginx")
      nginx_binary = argv[i + 1];
    else if (a == "--websockify")
      websockify_binary = argv[i + 1];
    else if (a == "--kasm-before")
      kasm_before = argv[i + 1];
    else if (a == "--serve")
      g_serve_seconds = std::stod(argv[i + 1]);
    else if (a == "--idle")
      g_idle = std::stoi(argv[i + 1]);
    else if (a == "--idle-kind")
      g_idle_kind = argv[i + 1];
    else if (a == "--cases")
      cases = argv[i + 1];
    else if (a == "--proxy-child")
      return runProxyChild(static_cast<std::uint16_t>(std::stoi(argv[i + 1])));
  }
  g_idle = std::clamp(g_idle, 0, kMaxIdle);
  g_seconds = std::clamp(g_seconds, 0.2, 60.0);
  g_connections = std::clamp(g_connections, 1, 256);
  g_rounds = std::clamp(g_rounds, 1, 15);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  using namespace kasm;
  const std::string small(1024, 's');  // The issue's size: a small page or API answer.
  const std::string large(1 << 20, 'L');
  net::HttpServerOptions up_options;
  up_options.io_threads = 1;
  auto upstream = net::HttpServer::start(up_options, [&](net::HttpRequest req, net::Responder respond) {
    respond(net::HttpResponse::text(200, req.path == "/large" ? large : small, "application/octet-stream"));
  });
  if (!upstream.ok()) {
    std::cerr << upstream.error().toString() << "\n";
    return 1;
  }
  WsEchoUpstream ws_upstream;
  IdleWsUpstream idle_upstream(g_idle_kind == "vnc");

  SystemClock clock;
  auto signer = auth::AccessTokenSigner::create(kSecret, clock);
  const SessionId session("s1");
  const std::string token = signer->issue(session, UserId("bench"), std::chrono::hours(1));
  const std::string http_address = "127.0.0.1:" + std::to_string((*upstream)->port());
  const std::string ws_address = "127.0.0.1:" + std::to_string(ws_upstream.port());
  net::ProxyOptions proxy_options;
  proxy_options.authorize = [&](const net::ProxyAuthRequest& r) -> Result<net::ProxyTarget> {
    KASM_RETURN_IF_ERROR(signer->verifyFor(r.token, r.session));
    return net::ProxyTarget{r.upgrade ? ws_address : http_address, SessionProtocol::kHttp, UserId("bench")};
  };
  std::atomic<long> activity{0};
  proxy_options.on_activity = [&](const SessionId&, const UserId&) { ++activity; };
  auto proxy = net::SessionProxy::create(proxy_options);
  net::HttpServerOptions proxy_server_options;
  proxy_server_options.io_threads = 2;  // nginx runs 2 workers.
  auto proxy_server = net::HttpServer::start(
      proxy_server_options, [](net::HttpRequest, net::Responder r) { r(net::HttpResponse::text(404, "no")); }, *proxy);
  if (!proxy_server.ok()) {
    std::cerr << proxy_server.error().toString() << "\n";
    return 1;
  }
  Nginx nginx(nginx_binary, (*upstream)->port(), ws_upstream.port(), idle_upstream.port());
  g_nginx_master = nginx.ok() ? nginx.pid() : 0;
  if (!nginx.ok()) std::cerr << "nginx could not be started from " << nginx_binary << "; its columns are empty\n";

  const auto up_port = (*upstream)->port();
  const auto kasm_port = (*proxy_server)->port();
  const std::string q = "?token=" + token;
  std::fprintf(stderr, "ports: upstream %u, kasm %u, nginx %u\n", up_port, kasm_port, nginx.port());
  if (g_serve_seconds > 0) {
    // For investigation with other clients (wrk, curl): the same servers, no load of our own.
    std::printf(
        "upstream http://127.0.0.1:%u/small\nkasm http://127.0.0.1:%u/desktop/s1/small%s\n"
        "nginx http://127.0.0.1:%u/desktop/s1/small%s\n",
        up_port, kasm_port, q.c_str(), nginx.port(), q.c_str());
    // SIGTERM/SIGINT end the wait normally, so nginx is stopped and its directory removed.
    static std::atomic<bool> stop{false};
    std::signal(SIGTERM, [](int) { stop.store(true); });
    std::signal(SIGINT, [](int) { stop.store(true); });
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(std::min(g_serve_seconds, 3600.0));
    while (!stop.load() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return 0;
  }

  if (cases == "vnc") {
    runVncStreamCase(websockify_binary, kasm_before, g_rounds, "/desktop/s1/websockify" + q);
    (*proxy_server)->stop(std::chrono::seconds(1));
    (*upstream)->stop(std::chrono::seconds(1));
    return 0;
  }

  std::printf(
      "bench_proxy: %d connections, %.1f s per throughput run, %d latency samples, median of %d rounds, %u cores\n",
      g_connections, g_seconds, kLatencySamples, g_rounds, std::thread::hardware_concurrency());
  std::printf("%-22s %14s %14s %14s %12s\n", "case", "direct", "kasm", "nginx", "kasm/nginx");

  auto row = [&](const char* name, double direct, double ours, double theirs, bool higher_is_better) {
    double ratio = theirs > 0 ? ours / theirs : 0;
    std::printf("%-22s %14.1f %14.1f %14.1f %11.2fx %s\n", name, direct, ours, theirs, ratio,
                higher_is_better ? "(higher is better)" : "(lower is better)");
  };

  // Runs measure(path index) for direct (0), kasm (1) and nginx (2) g_rounds times, rotating the
  // order; returns every run of each path.
  auto rounds = [&](auto measure) {
    using T = decltype(measure(0));
    std::array<std::vector<T>, 3> runs;
    const int paths = nginx.ok() ? 3 : 2;
    for (int r = 0; r < g_rounds; ++r) {
      for (int i = 0; i < paths; ++i) {
        const int which = (r + i) % paths;
        runs[which].push_back(measure(which));
      }
    }
    return runs;
  };
  // The median run of each path by `key`.
  auto median = [](auto runs, auto key) {
    using T = typename decltype(runs)::value_type::value_type;
    std::array<T, 3> out{};
    for (int i = 0; i < 3; ++i) {
      auto& v = runs[i];
      if (v.empty()) continue;
      std::sort(v.begin(), v.end(), [&](const T& a, const T& b) { return key(a) < key(b); });
      out[i] = v[v.size() / 2];
    }
    return out;
  };
  auto addedRow = [&](const std::string& name, const std::array<Latency, 3>& l) {
    const double ours = l[1].median_us - l[0].median_us, theirs = l[2].median_us - l[0].median_us;
    std::printf("%-22s %14s %14.1f %14.1f %11.2fx (added p50 latency, lower is better)\n", name.c_str(), "-", ours,
                theirs, theirs > 0 ? ours / theirs : 0);
  };
  // CPU time the proxy adds per request: the path's total minus the direct path's.
  auto cpuRow = [&](const std::string& name, const std::array<Throughput, 3>& t) {
    const double ours = t[1].cpu_us_per_request - t[0].cpu_us_per_request;
    const double theirs = t[2].cpu_us_per_request - t[0].cpu_us_per_request;
    std::printf("%-22s %14s %14.1f %14.1f %11.2fx (CPU per request, lower is better)\n", name.c_str(), "-", ours,
                theirs, theirs > 0 ? ours / theirs : 0);
  };
  // The proxy's CPU against nginx's round by round (each round runs the three paths back to back),
  // which a slow spell of a shared machine skews less than medians taken path by path.
  auto cpuRatioRow = [&](const std::string& name, const std::array<std::vector<Throughput>, 3>& runs) {
    std::vector<double> ratios;
    for (std::size_t r = 0; r < runs[2].size() && r < runs[1].size() && r < runs[0].size(); ++r) {
      const double theirs = runs[2][r].cpu_us_per_request - runs[0][r].cpu_us_per_request;
      if (theirs > 0) ratios.push_back((runs[1][r].cpu_us_per_request - runs[0][r].cpu_us_per_request) / theirs);
    }
    if (ratios.empty()) return;
    std::sort(ratios.begin(), ratios.end());
    std::printf("%-22s %14s %14s %14s %11.2fx (median of %zu rounds, %.2f-%.2f)\n", name.c_str(), "-", "-", "-",
                ratios[ratios.size() / 2], ratios.size(), ratios.front(), ratios.back());
  };
  auto medianOf = [](const Latency& l) { return l.median_us; };
  auto p99Of = [](const Latency& l) { return l.p99_us; };
  auto rateOf = [](const Throughput& t) { return t.per_second; };
  const std::array<std::uint16_t, 3> http_ports{up_port, kasm_port, nginx.ok() ? nginx.port() : std::uint16_t{0}};

  if (g_idle > 0 && (cases == "all" || cases == "idle")) {
    // Each side of the run needs two descriptors per connection here, and the child inherits ours.
    // Above the hard limit when the system lets us (root): 10,000 connections take 20,000 here.
    rlimit nofile{};
    const rlim_t wanted = 4 * static_cast<rlim_t>(kMaxIdle) + 4096;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < wanted) {
      rlimit raised{wanted, std::max(wanted, nofile.rlim_max)};
      if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
      }
    }
    const std::string target = (g_idle_kind == "http" ? "/desktop/s1/idlehttp" : "/desktop/s1/idle") + q;
    std::array<IdleResult, 3> idle{};
    {
      ProxyChild child(idle_upstream.port());
      if (child.port() == 0) {
        std::cerr << "the proxy child did not start\n";
      } else {
        const pid_t pid = child.pid();
        idle[1] = idleRun(
            child.port(), target, [&] { return memoryOf(pid); }, [&] { return openFds(pid); });
      }
    }
    if (nginx.ok() && g_idle_kind != "vnc") {  // nginx does not bridge WebSockets to VNC.
      auto sum = [](auto each) {
        double total = 0;
        for (pid_t p : nginxProcesses()) total += each(p);
        return total;
      };
      idle[2] = idleRun(
          nginx.port(), target,
          [&] {
            return Memory{sum([](pid_t p) { return memoryOf(p).pss_kib; }),
                          sum([](pid_t p) { return memoryOf(p).rss_kib; })};
          },
          [&] { return static_cast<int>(sum([](pid_t p) { return static_cast<double>(openFds(p)); })); });
    }
    std::printf("idle: %d %s connections held silent through each proxy (kasm: %d opened, nginx: %d)\n", g_idle,
                g_idle_kind.c_str(), idle[1].opened, idle[2].opened);
    row(("idle " + g_idle_kind + " PSS KiB/conn").c_str(), 0, idle[1].pss_per_connection_kib,
        idle[2].pss_per_connection_kib, false);
    row("idle RSS MiB before", 0, idle[1].before.rss_kib / 1024, idle[2].before.rss_kib / 1024, false);
    row("idle RSS MiB peak", 0, idle[1].peak.rss_kib / 1024, idle[2].peak.rss_kib / 1024, false);
    row("idle RSS MiB closed", 0, idle[1].after.rss_kib / 1024, idle[2].after.rss_kib / 1024, false);
  }
  if (cases == "idle") {
    (*proxy_server)->stop(std::chrono::seconds(1));
    (*upstream)->stop(std::chrono::seconds(1));
    return 0;
  }

  for (auto [label, path] : {std::pair{"1KiB", "/small"}, std::pair{"1MiB", "/large"}}) {
    if (cases == "ws") break;
    const std::string name = std::string("http ") + label;
    auto targetOf = [&](int which) { return which == 0 ? std::string(path) : "/desktop/s1" + std::string(path) + q; };
    auto runs_t = rounds([&](int w) { return httpThroughput(http_ports[w], targetOf(w)); });
    auto t = median(runs_t, rateOf);
    row((name + " req/s").c_str(), t[0].per_second, t[1].per_second, t[2].per_second, true);
    cpuRow(name + " proxy CPU us", t);
    cpuRatioRow(name + " CPU per round", runs_t);
    if (std::string(label) == "1MiB")
      row("http 1MiB MB/s", t[0].mbytes_per_second, t[1].mbytes_per_second, t[2].mbytes_per_second, true);
    auto runs = rounds([&](int w) { return httpLatency(http_ports[w], targetOf(w)); });
    auto l = median(runs, medianOf);
    auto l99 = median(runs, p99Of);
    row((name + " p50 us").c_str(), l[0].median_us, l[1].median_us, l[2].median_us, false);
    row((name + " p99 us").c_str(), l99[0].p99_us, l99[1].p99_us, l99[2].p99_us, false);
    addedRow(name + " +p50 us", l);
  }

  if (cases != "http") {
    const std::array<std::uint16_t, 3> ws_ports{ws_upstream.port(), kasm_port,
                                                nginx.ok() ? nginx.port() : std::uint16_t{0}};
    auto targetOf = [&](int which) { return which == 0 ? std::string("/ws") : "/desktop/s1/ws" + q; };
    auto runs_t = rounds([&](int w) { return wsThroughput(ws_ports[w], targetOf(w)); });
    auto t = median(runs_t, rateOf);
    row("ws echo msg/s", t[0].per_second, t[1].per_second, t[2].per_second, true);
    cpuRow("ws echo proxy CPU us", t);
    cpuRatioRow("ws echo CPU per round", runs_t);
    auto runs = rounds([&](int w) { return wsLatency(ws_ports[w], targetOf(w)); });
    auto l = median(runs, medianOf);
    auto l99 = median(runs, p99Of);
    row("ws echo p50 us", l[0].median_us, l[1].median_us, l[2].median_us, false);
    row("ws echo p99 us", l99[0].p99_us, l99[1].p99_us, l99[2].p99_us, false);
    addedRow("ws echo +p50 us", l);
  }
  auto stats = (*proxy)->stats();
  std::printf("kasm proxy: %llu requests, %llu rejected, %.1f MB to clients, %ld activity reports\n",
              static_cast<unsigned long long>(stats.requests), static_cast<unsigned long long>(stats.rejected),
              stats.bytes_to_client / 1e6, activity.load());
  (*proxy_server)->stop(std::chrono::seconds(1));
  (*upstream)->stop(std::chrono::seconds(1));
  return 0;
}
