// bench_proxy's idle-connection case: N silent WebSockets through a proxy, the proxy's memory
// before, at the peak and once they are closed. Our proxy runs in a child process of its own
// (--proxy-child) so that only it is counted; nginx's master and workers are counted the same way.
// See bench_proxy.cpp.

#include <dirent.h>
#include <malloc.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_proxy.hpp"
#include "kasm/auth/access_token.hpp"
#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"

extern char** environ;

namespace kasm::bench {

// ---- idle connections: memory per connection and memory given back ------------------------------

// Rss and Pss of one process (kB in /proc are KiB).
Memory memoryOf(pid_t pid) {
  Memory m;
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("Rss:")) m.rss_kib = std::atof(line.c_str() + 4);
    if (line.starts_with("Pss:")) m.pss_kib = std::atof(line.c_str() + 4);
  }
  return m;
}

int openFds(pid_t pid) {
  int n = 0;
  if (DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// nginx's master and its workers.
std::vector<pid_t> nginxProcesses() {
  return processTree(g_nginx_master);
}

// Our proxy alone in a process, embedded as an integrator would (--proxy-child): its port on
// stdout, then it serves until its stdin closes (the parent ended), ten minutes at most.
int runProxyChild(std::uint16_t idle_upstream) {
  using namespace kasm;
  alarm(600);
  SystemClock clock;
  auto signer = auth::AccessTokenSigner::create(kSecret, clock);
  const std::string address = "127.0.0.1:" + std::to_string(idle_upstream);
  net::ProxyOptions options;
  options.authorize = [&](const net::ProxyAuthRequest& r) -> Result<net::ProxyTarget> {
    KASM_RETURN_IF_ERROR(signer->verifyFor(r.token, r.session));
    net::ProxyTarget target{address, SessionProtocol::kHttp, UserId("bench")};
    if (g_idle_kind == "vnc") {
      target.protocol = SessionProtocol::kVnc;
      target.vnc_password = "idlepass";
    }
    return target;
  };
  options.max_tunnels = kMaxIdle + 1000;
  auto proxy = net::SessionProxy::create(options);
  net::HttpServerOptions server_options;
  server_options.io_threads = 2;
  server_options.max_connections = kMaxIdle + 1000;
  auto server = net::HttpServer::start(
      server_options, [](net::HttpRequest, net::Responder r) { r(net::HttpResponse::text(404, "no")); }, *proxy);
  if (!server.ok()) return 1;
  std::printf("%u\n", (*server)->port());
  std::fflush(stdout);
  // With KASM_BENCH_MAPS: the heap's bytes in use while the most tunnels were open (the last
  // sample then: the idle hold, after the connections' setup was done).
  std::atomic<bool> watching{std::getenv("KASM_BENCH_MAPS") != nullptr};
  std::size_t in_use_at_most = 0, most_tunnels = 0, in_use_before = mallinfo2().uordblks;
  std::thread watcher([&] {
    while (watching.load()) {
      const auto in_use = mallinfo2().uordblks;
      const auto tunnels = proxy.value()->stats().open_tunnels;
      if (tunnels >= most_tunnels && tunnels > 0) {
        most_tunnels = tunnels;
        in_use_at_most = in_use;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  char c = 0;
  while (::read(0, &c, 1) > 0) {
  }
  watching = false;
  watcher.join();
  if (std::getenv("KASM_BENCH_MAPS")) {
    std::fprintf(stderr, "heap in use: %zu bytes before, %zu with %zu tunnels open (%.0f bytes per tunnel)\n",
                 in_use_before, in_use_at_most, most_tunnels,
                 most_tunnels ? static_cast<double>(in_use_at_most - in_use_before) / most_tunnels : 0.0);
  }
  if (std::getenv("KASM_BENCH_MAPS")) {
    if (std::getenv("KASM_BENCH_TRIM")) malloc_trim(0);
    // Where the memory kept after the connections closed lives: the largest mappings by RSS.
    std::ifstream maps("/proc/self/smaps");
    std::string line, name;
    std::vector<std::pair<long, std::string>> rss;
    while (std::getline(maps, line)) {
      if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < 16) name = line;
      if (line.rfind("Rss:", 0) == 0) rss.emplace_back(std::stol(line.substr(4)), name);
    }
    std::sort(rss.rbegin(), rss.rend());
    for (std::size_t i = 0; i < rss.size() && i < 8; ++i)
      std::fprintf(stderr, "%8ld kB %s\n", rss[i].first, rss[i].second.c_str());
    malloc_stats();
  }
  (*server)->stop(std::chrono::seconds(1));
  return 0;
}

// The child above, started from this binary.
ProxyChild::ProxyChild(std::uint16_t idle_upstream, const std::string& binary) {
  int out[2], in[2];
  if (pipe(out) != 0 || pipe(in) != 0) return;
  std::vector<std::string> args = {binary, "--idle-kind", g_idle_kind, "--proxy-child", std::to_string(idle_upstream)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  posix_spawn_file_actions_addclose(&actions, in[1]);
  if (posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ) != 0) pid_ = 0;
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(in[0]);
  stdin_ = in[1];
  std::string line;
  char c = 0;
  while (pid_ > 0 && ::read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  ::close(out[0]);
  port_ = static_cast<std::uint16_t>(std::atoi(line.c_str()));
}

ProxyChild::~ProxyChild() {
  if (stdin_ >= 0) ::close(stdin_);
  if (pid_ > 0) {
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

namespace {

// Reads exactly `n` bytes of the RFB stream carried in `ws`'s binary messages.
void readRfb(websocket::stream<tcp::socket>& ws, beast::flat_buffer& pending, std::size_t n) {
  while (pending.size() < n) ws.read(pending);
  pending.consume(n);
}

}  // namespace

// A viewer through the VNC bridge, handshake done (security None, shared), then silent.
std::shared_ptr<websocket::stream<tcp::socket>> openVncViewer(asio::io_context& ioc, std::uint16_t port,
                                                              const std::string& target) {
  auto ws = std::make_shared<websocket::stream<tcp::socket>>(connectTo(ioc, port));
  ws->set_option(websocket::stream_base::decorator(
      [](websocket::request_type& req) { req.set(http::field::sec_websocket_protocol, "binary"); }));
  ws->handshake("127.0.0.1", target);
  ws->binary(true);
  beast::flat_buffer pending;
  auto send = [&](std::string_view bytes) { ws->write(asio::buffer(bytes.data(), bytes.size())); };
  readRfb(*ws, pending, 12);
  send("RFB 003.008\n");
  while (pending.size() < 1) ws->read(pending);
  const std::size_t types = static_cast<const unsigned char*>(pending.data().data())[0];
  readRfb(*ws, pending, 1 + types);
  send(std::string_view("\x01", 1));  // None.
  readRfb(*ws, pending, 4);           // SecurityResult.
  send(std::string_view("\x01", 1));  // ClientInit: shared.
  while (pending.size() < 24) ws->read(pending);
  const auto* init = static_cast<const unsigned char*>(pending.data().data());
  const std::size_t name = (std::size_t{init[20]} << 24) | (init[21] << 16) | (init[22] << 8) | init[23];
  readRfb(*ws, pending, 24 + name);
  return ws;
}

namespace {

// A keep-alive connection after one GET and its answer.
std::shared_ptr<void> openKeepAlive(asio::io_context& ioc, std::uint16_t port, const std::string& target) {
  auto s = std::make_shared<tcp::socket>(connectTo(ioc, port));
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(*s, req);
  beast::flat_buffer b;
  http::response<http::string_body> res;
  http::read(*s, b, res);
  if (res.result() != http::status::ok || !res.keep_alive()) throw std::runtime_error("keep-alive GET refused");
  return s;
}

}  // namespace

// Opens g_idle connections of g_idle_kind to `port`, holds them silent, closes them; `memory` and
// `fds` look at the proxy's processes.
IdleResult idleRun(std::uint16_t port, const std::string& target, const std::function<Memory()>& memory,
                   const std::function<int()>& fds) {
  asio::io_context ioc;
  std::vector<std::shared_ptr<void>> open;
  auto openSome = [&](int n) {
    for (int i = 0; i < n; ++i) {
      try {
        if (g_idle_kind == "vnc")
          open.push_back(openVncViewer(ioc, port, target));
        else if (g_idle_kind == "http")
          open.push_back(openKeepAlive(ioc, port, target));
        else
          open.push_back(openWs(ioc, port, target));
      } catch (const std::exception& e) {
        std::cerr << "idle client error after " << open.size() << " connections: " << e.what() << "\n";
        return;
      }
    }
  };
  // Closed by the client; waits (bounded) until the proxy has closed its sides too.
  auto closeAll = [&](int settled_fds) {
    open.clear();
    const auto until = Clock::now() + std::chrono::seconds(20);
    while (fds() > settled_fds + 4 && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  };
  // A first round trip of connections, so one-time allocations (thread caches, the connection
  // tables) are in the baseline.
  const int fds0 = fds();
  openSome(std::min(g_idle, 200));
  closeAll(fds0);
  IdleResult r;
  r.before = memory();
  openSome(g_idle);
  r.opened = static_cast<int>(open.size());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  r.peak = memory();
  if (r.opened > 0) r.pss_per_connection_kib = (r.peak.pss_kib - r.before.pss_kib) / r.opened;
  closeAll(fds0);
  r.after = memory();
  return r;
}

}  // namespace kasm::bench
