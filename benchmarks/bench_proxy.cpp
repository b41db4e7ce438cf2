// bench_proxy: the session proxy against Debian's nginx proxying the same upstream, in one run.
//
// Upstreams (in this process): an HTTP server (kasm::net::HttpServer answering /small with 100 bytes
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
// Usage: bench_proxy [--seconds S] [--connections C] [--rounds R] [--idle N] [--nginx PATH]

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kasm/auth/access_token.hpp"
#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"

extern char** environ;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

double g_seconds = 3.0;
int g_rounds = 3;
int g_connections = 4;
double g_serve_seconds = 0;  // --serve S: only start the servers, print their ports, wait S seconds.
int g_idle = 2000;           // Idle WebSockets per proxy (0: skip the case).
constexpr int kMaxIdle = 10000;
constexpr long kMaxRequestsPerConnection = 2'000'000;  // Bound beside the time limit.
constexpr int kLatencySamples = 3000;

tcp::socket connectTo(asio::io_context& ioc, std::uint16_t port) {
  tcp::socket s(ioc);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  s.set_option(tcp::no_delay(true));
  return s;
}

// ---- upstreams -------------------------------------------------------------------------------

class WsEchoUpstream {
 public:
  WsEchoUpstream() : acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] {
      for (;;) {
        tcp::socket s(ioc_);
        beast::error_code ec;
        acceptor_.accept(s, ec);
        if (ec || stop_) return;
        {
          std::lock_guard lock(mutex_);
          fds_.push_back(s.native_handle());
        }
        workers_.emplace_back([s = std::move(s)]() mutable {
          try {
            s.set_option(tcp::no_delay(true));
            websocket::stream<tcp::socket> ws(std::move(s));
            ws.accept();
            beast::flat_buffer b;
            for (;;) {
              b.clear();
              ws.read(b);
              ws.binary(ws.got_binary());
              ws.write(b.data());
            }
          } catch (const std::exception&) {
          }
        });
      }
    });
  }
  ~WsEchoUpstream() {
    stop_ = true;
    asio::io_context ioc;
    beast::error_code ec;
    tcp::socket poke(ioc);
    poke.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
    {
      // Wake workers still blocked in a read; they end on the error.
      std::lock_guard lock(mutex_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& w : workers_) w.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<int> fds_;
  std::vector<std::thread> workers_;
};

// A WebSocket upstream for thousands of silent connections: one thread, one coroutine each.
class IdleWsUpstream {
 public:
  IdleWsUpstream() : acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(ioc_, acceptLoop(), asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~IdleWsUpstream() {
    ioc_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  asio::awaitable<void> acceptLoop() {
    for (;;) {
      auto [ec, s] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(ioc_, hold(std::move(s)), asio::detached);
    }
  }
  static asio::awaitable<void> hold(tcp::socket s) {
    websocket::stream<tcp::socket> ws(std::move(s));
    auto [aec] = co_await ws.async_accept(asio::as_tuple(asio::use_awaitable));
    if (aec) co_return;
    beast::flat_buffer b;
    for (;;) {
      auto [ec, n] = co_await ws.async_read(b, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      b.clear();
    }
  }

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// ---- nginx -----------------------------------------------------------------------------------

std::uint16_t freePort() {
  asio::io_context ioc;
  tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

bool waitForPort(std::uint16_t port) {
  for (int i = 0; i < 500; ++i) {
    asio::io_context ioc;
    tcp::socket s(ioc);
    beast::error_code ec;
    s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    if (!ec) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

class Nginx {
 public:
  Nginx(const std::string& binary, std::uint16_t http_upstream, std::uint16_t ws_upstream,
        std::uint16_t idle_upstream) {
    char tmpl[] = "/tmp/kasm-bench-nginx-XXXXXX";
    dir_ = mkdtemp(tmpl);
    port_ = freePort();
    std::ofstream conf(dir_ + "/nginx.conf");
    // Room for the idle case: each proxied WebSocket is two connections, and one worker may take
    // them all.
    conf << "daemon off;\nmaster_process on;\nworker_processes 2;\nuser root;\n"
         << "worker_rlimit_nofile " << 2 * kMaxIdle + 2048 << ";\n"
         << "pid " << dir_ << "/nginx.pid;\nerror_log " << dir_ << "/error.log warn;\n"
         << "events { worker_connections " << 2 * kMaxIdle + 1024
         << "; }\n"
         // nginx closes a keep-alive connection after keepalive_requests (1000 by default), client
         // side and upstream side; the benchmark's connections make far more requests than that.
         << "http {\n  access_log off;\n  keepalive_requests 10000000;\n"
         << "  client_body_temp_path " << dir_ << "/body;\n  proxy_temp_path " << dir_ << "/proxy;\n"
         << "  fastcgi_temp_path " << dir_ << "/fcgi;\n  uwsgi_temp_path " << dir_ << "/uwsgi;\n"
         << "  scgi_temp_path " << dir_ << "/scgi;\n"
         << "  upstream app { server 127.0.0.1:" << http_upstream << "; keepalive 64; keepalive_requests 10000000; }\n"
         << "  upstream ws { server 127.0.0.1:" << ws_upstream << "; }\n"
         << "  upstream idle { server 127.0.0.1:" << idle_upstream << "; }\n"
         << "  server {\n    listen 127.0.0.1:" << port_ << ";\n"
         << "    location /desktop/s1/ws { proxy_pass http://ws/ws; proxy_http_version 1.1;\n"
         << "      proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\"; }\n"
         << "    location /desktop/s1/idle { proxy_pass http://idle/idle; proxy_http_version 1.1;\n"
         << "      proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\"; }\n"
         << "    location /desktop/s1/ { proxy_pass http://app/; proxy_http_version 1.1;\n"
         << "      proxy_set_header Connection \"\"; proxy_set_header X-Forwarded-For $remote_addr; }\n"
         << "  }\n}\n";
    conf.close();
    std::vector<std::string> args = {binary, "-p", dir_, "-c", dir_ + "/nginx.conf"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // nginx must not hold our stdout open: a caller reading it would wait for nginx too.
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ) != 0) pid_ = 0;
    posix_spawn_file_actions_destroy(&actions);
    ok_ = pid_ > 0 && waitForPort(port_);
  }
  ~Nginx() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    // KASM_BENCH_KEEP_NGINX=1 keeps the generated config and nginx's error log for inspection.
    if (const char* keep = std::getenv("KASM_BENCH_KEEP_NGINX"); keep && std::string(keep) == "1") {
      std::cerr << "nginx files kept in " << dir_ << "\n";
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool ok() const { return ok_; }
  pid_t pid() const { return pid_; }
  std::uint16_t port() const { return port_; }

 private:
  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = 0;
  bool ok_ = false;
};

// ---- CPU accounting ------------------------------------------------------------------------------
// CPU per request is steadier than throughput on a small shared machine: it does not depend on who
// else got the cores during the run. This process (clients, upstreams, our proxy) and nginx's
// workers are counted; a path's CPU minus the direct path's is what the proxy costs per request.

pid_t g_nginx_master = 0;

double processCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// utime + stime of nginx's master and its workers (children of the master).
double nginxCpuSeconds() {
  if (g_nginx_master <= 0) return 0;
  double ticks = 0;
  DIR* proc = opendir("/proc");
  if (!proc) return 0;
  while (dirent* e = readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
    std::string stat;
    std::getline(in, stat);
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    long ppid = 0, skip = 0, utime = 0, stime = 0;
    rest >> state >> ppid;
    for (int i = 0; i < 9; ++i) rest >> skip;  // pgrp .. cmajflt
    rest >> utime >> stime;
    if (ppid == g_nginx_master || std::atol(e->d_name) == g_nginx_master) ticks += utime + stime;
  }
  closedir(proc);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double totalCpuSeconds() {
  return processCpuSeconds() + nginxCpuSeconds();
}

// ---- clients ---------------------------------------------------------------------------------

struct Throughput {
  double per_second = 0;
  double mbytes_per_second = 0;
  double cpu_us_per_request = 0;  // Every process involved, see totalCpuSeconds().
};

struct Latency {
  double median_us = 0;
  double p99_us = 0;
};

// C connections, each doing keep-alive GETs of `target` until the time is up.
Throughput httpThroughput(std::uint16_t port, const std::string& target) {
  std::atomic<long> done{0};
  std::atomic<long> bytes{0};
  std::vector<std::thread> threads;
  const auto deadline = Clock::now() + std::chrono::duration<double>(g_seconds);
  const auto start = Clock::now();
  const double cpu0 = totalCpuSeconds();
  for (int c = 0; c < g_connections; ++c) {
    threads.emplace_back([&] {
      try {
        asio::io_context ioc;
        auto s = connectTo(ioc, port);
        http::request<http::empty_body> req{http::verb::get, target, 11};
        req.set(http::field::host, "127.0.0.1");
        beast::flat_buffer buffer;
        for (long i = 0; i < kMaxRequestsPerConnection && Clock::now() < deadline; ++i) {
          http::write(s, req);
          http::response_parser<http::string_body> p;
          p.body_limit(8 * 1024 * 1024);
          http::read(s, buffer, p);
          if (p.get().result_int() != 200) throw std::runtime_error("status " + std::to_string(p.get().result_int()));
          bytes += static_cast<long>(p.get().body().size());
          ++done;
        }
      } catch (const std::exception& e) {
        std::cerr << "client error (port " << port << ", request " << done.load() << "): " << e.what() << "\n";
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = totalCpuSeconds() - cpu0;
  return {done / secs, bytes / secs / 1e6, done > 0 ? cpu * 1e6 / static_cast<double>(done) : 0};
}

Latency summarize(std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  if (us.empty()) return {};
  return {us[us.size() / 2], us[us.size() * 99 / 100]};
}

Latency httpLatency(std::uint16_t port, const std::string& target) {
  asio::io_context ioc;
  auto s = connectTo(ioc, port);
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  beast::flat_buffer buffer;
  std::vector<double> us;
  for (int i = 0; i < kLatencySamples + 100; ++i) {
    auto t0 = Clock::now();
    http::write(s, req);
    http::response<http::string_body> res;
    http::read(s, buffer, res);
    if (i >= 100) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return summarize(us);
}

std::unique_ptr<websocket::stream<tcp::socket>> openWs(asio::io_context& ioc, std::uint16_t port,
                                                       const std::string& target) {
  auto ws = std::make_unique<websocket::stream<tcp::socket>>(connectTo(ioc, port));
  ws->handshake("127.0.0.1", target);
  ws->binary(true);
  return ws;
}

Throughput wsThroughput(std::uint16_t port, const std::string& target) {
  std::atomic<long> done{0};
  std::vector<std::thread> threads;
  const auto deadline = Clock::now() + std::chrono::duration<double>(g_seconds);
  const auto start = Clock::now();
  const double cpu0 = totalCpuSeconds();
  for (int c = 0; c < g_connections; ++c) {
    threads.emplace_back([&] {
      try {
        asio::io_context ioc;
        auto ws = openWs(ioc, port, target);
        std::string msg(64, 'm');
        beast::flat_buffer b;
        for (long i = 0; i < kMaxRequestsPerConnection && Clock::now() < deadline; ++i) {
          ws->write(asio::buffer(msg));
          b.clear();
          ws->read(b);
          ++done;
        }
        ws->close(websocket::close_code::normal);
      } catch (const std::exception& e) {
        std::cerr << "ws client error: " << e.what() << "\n";
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = totalCpuSeconds() - cpu0;
  return {done / secs, done * 64.0 / secs / 1e6, done > 0 ? cpu * 1e6 / static_cast<double>(done) : 0};
}

Latency wsLatency(std::uint16_t port, const std::string& target) {
  asio::io_context ioc;
  auto ws = openWs(ioc, port, target);
  std::string msg(64, 'm');
  beast::flat_buffer b;
  std::vector<double> us;
  for (int i = 0; i < kLatencySamples + 100; ++i) {
    auto t0 = Clock::now();
    ws->write(asio::buffer(msg));
    b.clear();
    ws->read(b);
    if (i >= 100) us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  beast::error_code ec;
  ws->close(websocket::close_code::normal, ec);
  return summarize(us);
}

// ---- idle connections: memory per connection and memory given back ------------------------------

const std::string kSecret(32, 'b');

struct Memory {
  double pss_kib = 0;
  double rss_kib = 0;
};

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
  std::vector<pid_t> out;
  if (g_nginx_master <= 0) return out;
  DIR* proc = opendir("/proc");
  if (!proc) return out;
  while (dirent* e = readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
    std::string stat;
    std::getline(in, stat);
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    long ppid = 0;
    rest >> state >> ppid;
    const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
    if (ppid == g_nginx_master || pid == g_nginx_master) out.push_back(pid);
  }
  closedir(proc);
  return out;
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
    return net::ProxyTarget{address, SessionProtocol::kHttp, UserId("bench")};
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
  char c = 0;
  while (::read(0, &c, 1) > 0) {
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
class ProxyChild {
 public:
  explicit ProxyChild(std::uint16_t idle_upstream) {
    int out[2], in[2];
    if (pipe(out) != 0 || pipe(in) != 0) return;
    std::vector<std::string> args = {"/proc/self/exe", "--proxy-child", std::to_string(idle_upstream)};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    posix_spawn_file_actions_addclose(&actions, in[1]);
    if (posix_spawn(&pid_, "/proc/self/exe", &actions, nullptr, argv.data(), environ) != 0) pid_ = 0;
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
  ~ProxyChild() {
    if (stdin_ >= 0) ::close(stdin_);
    if (pid_ > 0) {
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  pid_t pid() const { return pid_; }
  std::uint16_t port() const { return port_; }

 private:
  pid_t pid_ = 0;
  int stdin_ = -1;
  std::uint16_t port_ = 0;
};

struct IdleResult {
  int opened = 0;
  double pss_per_connection_kib = 0;
  Memory before, peak, after;
};

// Opens g_idle WebSockets to `port`, holds them silent, closes them; `memory` and `fds` look at
// the proxy's processes.
IdleResult idleRun(std::uint16_t port, const std::string& target, const std::function<Memory()>& memory,
                   const std::function<int()>& fds) {
  asio::io_context ioc;
  std::vector<std::unique_ptr<websocket::stream<tcp::socket>>> open;
  auto openSome = [&](int n) {
    for (int i = 0; i < n; ++i) {
      try {
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

}  // namespace

int main(int argc, char** argv) {
  std::string nginx_binary = "/usr/sbin/nginx";
  std::string cases = "all";  // --cases idle | throughput | all
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
    else if (a == "--serve")
      g_serve_seconds = std::stod(argv[i + 1]);
    else if (a == "--idle")
      g_idle = std::stoi(argv[i + 1]);
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
  const std::string small(100, 's');
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
  IdleWsUpstream idle_upstream;

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
  auto medianOf = [](const Latency& l) { return l.median_us; };
  auto p99Of = [](const Latency& l) { return l.p99_us; };
  auto rateOf = [](const Throughput& t) { return t.per_second; };
  const std::array<std::uint16_t, 3> http_ports{up_port, kasm_port, nginx.ok() ? nginx.port() : std::uint16_t{0}};

  if (g_idle > 0 && cases != "throughput") {
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
    const std::string target = "/desktop/s1/idle" + q;
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
    if (nginx.ok()) {
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
    std::printf("idle: %d WebSockets held silent through each proxy (kasm: %d opened, nginx: %d)\n", g_idle,
                idle[1].opened, idle[2].opened);
    row("idle ws PSS KiB/conn", 0, idle[1].pss_per_connection_kib, idle[2].pss_per_connection_kib, false);
    row("idle RSS MiB before", 0, idle[1].before.rss_kib / 1024, idle[2].before.rss_kib / 1024, false);
    row("idle RSS MiB peak", 0, idle[1].peak.rss_kib / 1024, idle[2].peak.rss_kib / 1024, false);
    row("idle RSS MiB closed", 0, idle[1].after.rss_kib / 1024, idle[2].after.rss_kib / 1024, false);
  }
  if (cases == "idle") {
    (*proxy_server)->stop(std::chrono::seconds(1));
    (*upstream)->stop(std::chrono::seconds(1));
    return 0;
  }

  for (auto [label, path] : {std::pair{"small", "/small"}, std::pair{"1MiB", "/large"}}) {
    const std::string name = std::string("http ") + label;
    auto targetOf = [&](int which) { return which == 0 ? std::string(path) : "/desktop/s1" + std::string(path) + q; };
    auto t = median(rounds([&](int w) { return httpThroughput(http_ports[w], targetOf(w)); }), rateOf);
    row((name + " req/s").c_str(), t[0].per_second, t[1].per_second, t[2].per_second, true);
    cpuRow(name + " proxy CPU us", t);
    if (std::string(label) == "1MiB")
      row("http 1MiB MB/s", t[0].mbytes_per_second, t[1].mbytes_per_second, t[2].mbytes_per_second, true);
    auto runs = rounds([&](int w) { return httpLatency(http_ports[w], targetOf(w)); });
    auto l = median(runs, medianOf);
    auto l99 = median(runs, p99Of);
    row((name + " p50 us").c_str(), l[0].median_us, l[1].median_us, l[2].median_us, false);
    row((name + " p99 us").c_str(), l99[0].p99_us, l99[1].p99_us, l99[2].p99_us, false);
    addedRow(name + " +p50 us", l);
  }

  {
    const std::array<std::uint16_t, 3> ws_ports{ws_upstream.port(), kasm_port,
                                                nginx.ok() ? nginx.port() : std::uint16_t{0}};
    auto targetOf = [&](int which) { return which == 0 ? std::string("/ws") : "/desktop/s1/ws" + q; };
    auto t = median(rounds([&](int w) { return wsThroughput(ws_ports[w], targetOf(w)); }), rateOf);
    row("ws echo msg/s", t[0].per_second, t[1].per_second, t[2].per_second, true);
    cpuRow("ws echo proxy CPU us", t);
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
