// bench_proxy's peers: the in-process WebSocket upstreams, nginx, and the CPU accounting that
// counts this process and nginx's. See bench_proxy.cpp for what is measured.

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_proxy.hpp"

extern char** environ;

namespace kasm::bench {

// ---- upstreams -------------------------------------------------------------------------------

WsEchoUpstream::WsEchoUpstream() : acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
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

WsEchoUpstream::~WsEchoUpstream() {
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

IdleWsUpstream::IdleWsUpstream(bool rfb) : acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}), rfb_(rfb) {
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(ioc_, acceptLoop(), asio::detached);
  thread_ = std::thread([this] { ioc_.run(); });
}

IdleWsUpstream::~IdleWsUpstream() {
  ioc_.stop();
  thread_.join();
}

asio::awaitable<void> IdleWsUpstream::acceptLoop() {
  for (;;) {
    auto [ec, s] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    asio::co_spawn(ioc_, rfb_ ? holdRfb(std::move(s)) : hold(std::move(s)), asio::detached);
  }
}

asio::awaitable<void> IdleWsUpstream::hold(tcp::socket s) {
  beast::flat_buffer b;
  http::request<http::string_body> req;
  for (;;) {
    req = {};
    auto [rec, rn] = co_await http::async_read(s, b, req, asio::as_tuple(asio::use_awaitable));
    if (rec) co_return;
    if (websocket::is_upgrade(req)) break;
    http::response<http::string_body> res{http::status::ok, 11, "idle"};
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    auto [wec, wn] = co_await http::async_write(s, res, asio::as_tuple(asio::use_awaitable));
    if (wec || !req.keep_alive()) co_return;
  }
  websocket::stream<tcp::socket> ws(std::move(s));
  auto [aec] = co_await ws.async_accept(req, asio::as_tuple(asio::use_awaitable));
  if (aec) co_return;
  b.clear();
  for (;;) {
    auto [ec, n] = co_await ws.async_read(b, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    b.clear();
  }
}

// A desktop's VNC server as far as the proxy's handshake goes (RFB 3.8, VNC Authentication
// accepted whatever the response, a 1024x768 ServerInit), then silent until the proxy closes.
asio::awaitable<void> IdleWsUpstream::holdRfb(tcp::socket s) {
  auto io = asio::as_tuple(asio::use_awaitable);
  static const unsigned char kVersion[] = {'R', 'F', 'B', ' ', '0', '0', '3', '.', '0', '0', '8', '\n'};
  static const unsigned char kTypes[] = {1, 2};
  static const unsigned char kChallenge[16] = {};
  static const unsigned char kOk[4] = {};
  static const unsigned char kInit[] = {4, 0, 3, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0,   255, 16,
                                        8, 0, 0, 0, 0,  0,  0, 0, 0, 0,   4, 'i', 'd', 'l', 'e'};
  unsigned char in[16];
  if (std::get<0>(co_await asio::async_write(s, asio::buffer(kVersion), io))) co_return;
  if (std::get<0>(co_await asio::async_read(s, asio::buffer(in, 12), io))) co_return;
  if (std::get<0>(co_await asio::async_write(s, asio::buffer(kTypes), io))) co_return;
  if (std::get<0>(co_await asio::async_read(s, asio::buffer(in, 1), io))) co_return;
  if (in[0] == 2) {
    if (std::get<0>(co_await asio::async_write(s, asio::buffer(kChallenge), io))) co_return;
    if (std::get<0>(co_await asio::async_read(s, asio::buffer(in, 16), io))) co_return;
  }
  if (std::get<0>(co_await asio::async_write(s, asio::buffer(kOk), io))) co_return;
  if (std::get<0>(co_await asio::async_read(s, asio::buffer(in, 1), io))) co_return;  // ClientInit.
  if (std::get<0>(co_await asio::async_write(s, asio::buffer(kInit), io))) co_return;
  for (;;) {
    if (std::get<0>(co_await s.async_read_some(asio::buffer(in), io))) co_return;
  }
}

// ---- nginx -----------------------------------------------------------------------------------

namespace {

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

}  // namespace

Nginx::Nginx(const std::string& binary, std::uint16_t http_upstream, std::uint16_t ws_upstream,
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
       << "  upstream idlekeep { server 127.0.0.1:" << idle_upstream << "; keepalive 64; }\n"
       << "  server {\n    listen 127.0.0.1:" << port_ << ";\n"
       << "    location /desktop/s1/ws { proxy_pass http://ws/ws; proxy_http_version 1.1;\n"
       << "      proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\"; }\n"
       << "    location /desktop/s1/idlehttp { proxy_pass http://idlekeep/idle; proxy_http_version 1.1;\n"
       << "      proxy_set_header Connection \"\"; }\n"
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

Nginx::~Nginx() {
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

// ---- CPU accounting ------------------------------------------------------------------------------
// CPU per request is steadier than throughput on a small shared machine: it does not depend on who
// else got the cores during the run. This process (clients, upstreams, our proxy) and nginx's
// workers are counted; a path's CPU minus the direct path's is what the proxy costs per request.

pid_t g_nginx_master = 0;

namespace {

// utime + stime of nginx's master and its workers (children of the master).
double nginxCpuSeconds() {
  return g_nginx_master > 0 ? treeCpuSeconds(g_nginx_master) : 0;
}

}  // namespace

double totalCpuSeconds() {
  return processCpuSeconds() + nginxCpuSeconds();
}

}  // namespace kasm::bench
