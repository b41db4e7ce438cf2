// bench_proxy.hpp: what the files of bench_proxy share. What is measured, and how, is described at
// the top of bench_proxy.cpp. The files:
//   bench_proxy.cpp          main(): the command line, the servers, the rounds and the table
//   bench_proxy_peers.cpp    the in-process upstreams, nginx, CPU accounting
//   bench_proxy_clients.cpp  the HTTP and WebSocket clients: throughput and latency
//   bench_proxy_idle.cpp     idle connections: memory per connection, our proxy in a child process
//   bench_proxy_vnc.cpp      a desktop streaming through the VNC bridge and websockify: CPU per MB
#pragma once

#include <sys/types.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"

namespace kasm::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// ---- settings and constants --------------------------------------------------------------------

// Set from the command line by main() (bench_proxy.cpp).
extern double g_seconds;   // Seconds per throughput run.
extern int g_connections;  // Connections of one throughput run.
extern int g_idle;         // Idle WebSockets per proxy (0: skip the case).
// What the idle connections are (--idle-kind): "ws" (WebSockets tunnelled to a WebSocket upstream),
// "http" (keep-alive connections after one GET each) or "vnc" (the VNC bridge of a desktop, RFB
// terminated by the proxy as for a container desktop with a VNC password; our proxy only).
extern std::string g_idle_kind;
// nginx's master process, 0 when nginx is not running (set by main(), defined in bench_proxy_peers.cpp).
extern pid_t g_nginx_master;

inline constexpr int kMaxIdle = 10000;
inline constexpr long kMaxRequestsPerConnection = 2'000'000;  // Bound beside the time limit.
inline constexpr int kLatencySamples = 3000;
// The access-token secret of both our proxies: main()'s and the proxy child's.
inline const std::string kSecret(32, 'b');

// ---- results -------------------------------------------------------------------------------------

struct Throughput {
  double per_second = 0;
  double mbytes_per_second = 0;
  double cpu_us_per_request = 0;  // Every process involved, see totalCpuSeconds().
};

struct Latency {
  double median_us = 0;
  double p99_us = 0;
};

struct Memory {
  double pss_kib = 0;
  double rss_kib = 0;
};

struct IdleResult {
  int opened = 0;
  double pss_per_connection_kib = 0;
  Memory before, peak, after;
};

// ---- upstreams (bench_proxy_peers.cpp) -----------------------------------------------------------

// A WebSocket echo server: one thread per connection.
class WsEchoUpstream {
 public:
  WsEchoUpstream();
  ~WsEchoUpstream();
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

// An upstream for thousands of silent connections: one thread, one coroutine each. A connection
// answers GETs (keep-alive) and accepts a WebSocket upgrade; with `rfb`, it is a VNC desktop
// instead (VNC Authentication with any password, then silence).
class IdleWsUpstream {
 public:
  explicit IdleWsUpstream(bool rfb = false);
  ~IdleWsUpstream();
  std::uint16_t port() const { return port_; }

 private:
  asio::awaitable<void> acceptLoop();
  static asio::awaitable<void> hold(tcp::socket s);
  static asio::awaitable<void> holdRfb(tcp::socket s);

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  bool rfb_ = false;
};

// ---- nginx (bench_proxy_peers.cpp) ---------------------------------------------------------------

// nginx (a master and 2 workers) proxying the three upstreams under /desktop/s1/, from a config
// generated in a temporary directory; stopped, and the directory removed, on destruction.
class Nginx {
 public:
  Nginx(const std::string& binary, std::uint16_t http_upstream, std::uint16_t ws_upstream, std::uint16_t idle_upstream);
  ~Nginx();
  bool ok() const { return ok_; }
  pid_t pid() const { return pid_; }
  std::uint16_t port() const { return port_; }

 private:
  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = 0;
  bool ok_ = false;
};

// ---- CPU accounting (bench_proxy_peers.cpp) ------------------------------------------------------

// CPU seconds used so far by this process and by nginx's master and workers.
double totalCpuSeconds();

// ---- clients (bench_proxy_clients.cpp) -----------------------------------------------------------

// C connections, each doing keep-alive GETs of `target` until the time is up.
Throughput httpThroughput(std::uint16_t port, const std::string& target);
// One connection, sequential GETs of `target`: median and p99.
Latency httpLatency(std::uint16_t port, const std::string& target);
// C WebSockets, each echoing 64-byte messages until the time is up.
Throughput wsThroughput(std::uint16_t port, const std::string& target);
// One WebSocket, sequential 64-byte echoes: median and p99.
Latency wsLatency(std::uint16_t port, const std::string& target);
// A connection to 127.0.0.1:`port`, Nagle off.
tcp::socket connectTo(asio::io_context& ioc, std::uint16_t port);
// A WebSocket to 127.0.0.1:`port``target`, handshake done, in binary mode.
std::unique_ptr<websocket::stream<tcp::socket>> openWs(asio::io_context& ioc, std::uint16_t port,
                                                       const std::string& target);

// ---- idle connections (bench_proxy_idle.cpp) -----------------------------------------------------

// Rss and Pss of one process.
Memory memoryOf(pid_t pid);
// Open file descriptors of one process.
int openFds(pid_t pid);
// nginx's master and its workers.
std::vector<pid_t> nginxProcesses();
// main() of `bench_proxy --proxy-child PORT`: our proxy alone in a process.
int runProxyChild(std::uint16_t idle_upstream);
// A viewer through a VNC bridge (ours, or websockify in front of a desktop), the RFB handshake done
// (security None, shared) and the ServerInit read.
std::shared_ptr<websocket::stream<tcp::socket>> openVncViewer(asio::io_context& ioc, std::uint16_t port,
                                                              const std::string& target);
// Opens g_idle connections of g_idle_kind to `port`, holds them silent, closes them; `memory` and
// `fds` look at the proxy's processes.
IdleResult idleRun(std::uint16_t port, const std::string& target, const std::function<Memory()>& memory,
                   const std::function<int()>& fds);

// runProxyChild() in a child process started from `binary` (this one by default; another build of
// bench_proxy to compare with, see --kasm-before) with --proxy-child; it ends when this object is
// destroyed.
class ProxyChild {
 public:
  explicit ProxyChild(std::uint16_t idle_upstream, const std::string& binary = "/proc/self/exe");
  ~ProxyChild();
  pid_t pid() const { return pid_; }
  std::uint16_t port() const { return port_; }

 private:
  pid_t pid_ = 0;
  int stdin_ = -1;
  std::uint16_t port_ = 0;
};

// ---- VNC streaming (bench_proxy_vnc.cpp) ---------------------------------------------------------

// --cases vnc: a desktop streaming to C viewers through our VNC bridge (RFB terminated, in a proxy
// child), optionally an older build's (`kasm_before`, a bench_proxy binary), and websockify
// (`websockify`, skipped when it cannot be run): MB/s and the bridge processes' CPU per MB, the
// median of `rounds`. `target` is the bridge's path with a token the proxy child accepts.
void runVncStreamCase(const std::string& websockify, const std::string& kasm_before, int rounds,
                      const std::string& target);

}  // namespace kasm::bench
