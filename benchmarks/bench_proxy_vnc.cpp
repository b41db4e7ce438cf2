// bench_proxy's VNC streaming case (--cases vnc): what the VNC bridge costs while a desktop draws.
//
// A desktop (in this process, a thread per connection) does the server side of the RFB handshake
// (VNC Authentication, any response accepted) and then writes 64 KiB chunks as fast as its viewer
// takes them. C viewers (Beast WebSocket clients, a thread each) connect through:
//   kasm         our proxy in a child process (--proxy-child, RFB terminated with the desktop's
//                password, as for a container desktop);
//   kasm-before  the same child from another build of bench_proxy (--kasm-before PATH), to compare
//                two versions of the bridge in one run;
//   websockify   Debian's websockify (Python) in front of the desktop, the viewer doing RFB itself.
// Each run opens the viewers, then measures over g_seconds the bytes they received and the CPU time
// of the bridge's processes only (/proc/<pid>/stat: our child; websockify's master and the process
// it forks per connection). Figures are the median of R rounds, the paths' order rotated each round.

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_proxy.hpp"

extern char** environ;

namespace kasm::bench {

namespace {

// ---- the desktop ---------------------------------------------------------------------------------

class StreamDesktop {
 public:
  StreamDesktop() : acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { acceptLoop(); });
  }
  ~StreamDesktop() {
    stop_ = true;
    beast::error_code ec;
    tcp::socket poke(ioc_);
    poke.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
    {
      std::lock_guard lock(mutex_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);  // Wakes a writer blocked on a silent viewer.
    }
    for (auto& w : workers_) w.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  void acceptLoop() {
    for (;;) {
      tcp::socket s(ioc_);
      beast::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stop_) return;
      std::lock_guard lock(mutex_);
      fds_.push_back(s.native_handle());
      workers_.emplace_back([s = std::move(s)]() mutable { serve(s); });
    }
  }

  static void serve(tcp::socket& s) {
    static const unsigned char kVersion[] = {'R', 'F', 'B', ' ', '0', '0', '3', '.', '0', '0', '8', '\n'};
    static const unsigned char kTypes[] = {1, 2};
    static const unsigned char kChallenge[16] = {};
    static const unsigned char kOk[4] = {};
    static const unsigned char kInit[] = {4, 0, 3, 0, 32, 24, 0, 1, 0, 255, 0,   255, 0,   255, 16,  8,
                                          0, 0, 0, 0, 0,  0,  0, 0, 0, 6,   's', 't', 'r', 'e', 'a', 'm'};
    beast::error_code ec;
    unsigned char in[16];
    asio::write(s, asio::buffer(kVersion), ec);
    asio::read(s, asio::buffer(in, 12), ec);
    asio::write(s, asio::buffer(kTypes), ec);
    asio::read(s, asio::buffer(in, 1), ec);
    if (!ec && in[0] == 2) {
      asio::write(s, asio::buffer(kChallenge), ec);
      asio::read(s, asio::buffer(in, 16), ec);
    }
    asio::write(s, asio::buffer(kOk), ec);
    asio::read(s, asio::buffer(in, 1), ec);  // ClientInit.
    asio::write(s, asio::buffer(kInit), ec);
    std::string chunk(64 * 1024, '\0');
    for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>(i * 131);
    while (!ec) asio::write(s, asio::buffer(chunk), ec);
  }

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<int> fds_;
  std::vector<std::thread> workers_;
};

// ---- websockify ----------------------------------------------------------------------------------

class Websockify {
 public:
  Websockify(const std::string& binary, std::uint16_t target) {
    if (::access(binary.c_str(), X_OK) != 0) return;
    {
      asio::io_context ioc;
      tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
      port_ = a.local_endpoint().port();
    }
    std::vector<std::string> args = {binary, "127.0.0.1:" + std::to_string(port_),
                                     "127.0.0.1:" + std::to_string(target)};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ) != 0) pid_ = 0;
    posix_spawn_file_actions_destroy(&actions);
    for (int i = 0; pid_ > 0 && i < 500 && !ok_; ++i) {
      asio::io_context ioc;
      tcp::socket s(ioc);
      beast::error_code ec;
      s.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
      ok_ = !ec;
      if (!ok_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~Websockify() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  bool ok() const { return ok_; }
  pid_t pid() const { return pid_; }
  std::uint16_t port() const { return port_; }

 private:
  pid_t pid_ = 0;
  std::uint16_t port_ = 0;
  bool ok_ = false;
};

// ---- CPU of the bridge's processes ---------------------------------------------------------------

struct Stream {
  double mbytes_per_second = 0;
  double cpu_ms_per_mbyte = 0;  // The bridge's processes only.
};

// g_connections viewers through `port`; the bridge's CPU read from `pid`'s process tree.
Stream streamRun(std::uint16_t port, const std::string& target, pid_t pid) {
  std::atomic<long> bytes{0};
  std::atomic<int> ready{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> viewers;
  for (int c = 0; c < g_connections; ++c) {
    viewers.emplace_back([&] {
      try {
        asio::io_context ioc;
        auto ws = openVncViewer(ioc, port, target);
        ++ready;
        std::vector<char> buf(256 * 1024);
        while (!stop.load()) bytes += static_cast<long>(ws->read_some(asio::buffer(buf)));
        beast::error_code ec;
        ws->next_layer().shutdown(tcp::socket::shutdown_both, ec);
      } catch (const std::exception& e) {
        std::cerr << "vnc viewer error (port " << port << "): " << e.what() << "\n";
        ++failed;
      }
    });
  }
  while (ready.load() + failed.load() < g_connections) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // Past the start of every stream.
  const long bytes0 = bytes.load();
  const double cpu0 = treeCpuSeconds(pid);
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(g_seconds));
  const double cpu = treeCpuSeconds(pid) - cpu0;
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const double mb = static_cast<double>(bytes.load() - bytes0) / 1e6;
  stop = true;
  for (auto& v : viewers) v.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // The bridges wind down.
  return {mb / secs, mb > 0 ? cpu * 1e3 / mb : 0};
}

}  // namespace

void runVncStreamCase(const std::string& websockify_binary, const std::string& kasm_before, int rounds,
                      const std::string& target) {
  StreamDesktop desktop;
  const std::string saved_kind = g_idle_kind;
  g_idle_kind = "vnc";  // The proxy child terminates RFB with the desktop's password.
  ProxyChild ours(desktop.port());
  std::optional<ProxyChild> before;
  if (!kasm_before.empty()) before.emplace(desktop.port(), kasm_before);
  g_idle_kind = saved_kind;
  Websockify websockify(websockify_binary, desktop.port());
  if (!websockify.ok()) std::cerr << "websockify could not be started from " << websockify_binary << "\n";
  struct Path {
    const char* name;
    std::uint16_t port;
    pid_t pid;
  };
  std::vector<Path> paths;
  if (ours.port() != 0) paths.push_back({"kasm", ours.port(), ours.pid()});
  if (before && before->port() != 0) paths.push_back({"kasm-before", before->port(), before->pid()});
  if (websockify.ok()) paths.push_back({"websockify", websockify.port(), websockify.pid()});
  std::vector<std::vector<Stream>> runs(paths.size());
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t i = 0; i < paths.size(); ++i) {
      const std::size_t which = (r + i) % paths.size();
      runs[which].push_back(streamRun(paths[which].port, target, paths[which].pid));
    }
  }
  std::printf("vnc stream: %d viewers, %.1f s per run, median of %d rounds (CPU: the bridge's processes only)\n",
              g_connections, g_seconds, rounds);
  std::printf("%-22s %14s %14s\n", "path", "MB/s", "CPU ms/MB");
  for (std::size_t i = 0; i < paths.size(); ++i) {
    auto& v = runs[i];
    if (v.empty()) continue;
    std::sort(v.begin(), v.end(),
              [](const Stream& a, const Stream& b) { return a.cpu_ms_per_mbyte < b.cpu_ms_per_mbyte; });
    const double cpu = v[v.size() / 2].cpu_ms_per_mbyte;
    std::sort(v.begin(), v.end(),
              [](const Stream& a, const Stream& b) { return a.mbytes_per_second < b.mbytes_per_second; });
    std::printf("%-22s %14.1f %14.3f\n", paths[i].name, v[v.size() / 2].mbytes_per_second, cpu);
  }
}

}  // namespace kasm::bench
