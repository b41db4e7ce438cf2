// bench_rdp: what one RDP-in-the-browser connection costs through kasm::rdp, against the xrdp that
// scripts/services/xrdp.sh starts (KASM_TEST_XRDP_ADDR, _USER, _PASSWORD):
//
//   . scripts/lib-services.sh; start_xrdp; build/benchmarks/bench_rdp; stop_xrdp
//
// For 1 and then 10 concurrent connections it reports
//   - memory per connection: this process's PSS (/proc/self/smaps_rollup) with every connection
//     showing its desktop, minus the PSS before them, divided by the number of connections;
//   - time to first frame: from starting serve() (the RDP connect) to the first FramebufferUpdate
//     that draws non-black pixels, as the viewer (an RFB client on a socketpair) receives it.
// guacd's figures on the same kind of machine, for comparison: about 27 MB per connection and
// 1.4-1.65 s to the first frame.

#include <malloc.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../tests/rdp/rfb_test_client.hpp"
#include "kasm/rdp/rdp_backend.hpp"

namespace {

using Clock = std::chrono::steady_clock;

class AcceptAllPins : public kasm::spi::GatewayPins {
 public:
  kasm::Result<void> check(std::string_view, std::string_view) override { return kasm::okResult(); }
};

long pssKb() {
  std::ifstream in("/proc/self/smaps_rollup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Pss:", 0) == 0) return std::stol(line.substr(4));
  }
  return -1;
}

double cpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Viewer {
  int fds[2] = {-1, -1};
  std::thread server;
  std::unique_ptr<kasm::rdp::testing::RfbTestClient> client;
  double first_frame_ms = -1;
  std::string failure;
};

// Opens `n` connections at once, waits until each shows its desktop, measures, closes them all.
bool run(int n, const kasm::spi::GatewayRequest& request, kasm::spi::GatewayBackend& backend) {
  AcceptAllPins pins;
  // Memory freed by earlier connections may still sit in malloc's per-thread arenas; give it back
  // so that the baseline is what is really in use (and a leak would show as a growing baseline).
  malloc_trim(0);
  const long before = pssKb();
  std::vector<std::unique_ptr<Viewer>> viewers;
  std::vector<std::thread> drivers;
  for (int i = 0; i < n; ++i) viewers.push_back(std::make_unique<Viewer>());
  for (auto& vp : viewers) {
    Viewer& v = *vp;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, v.fds) != 0) return false;
    drivers.emplace_back([&v, &request, &backend, &pins] {
      const auto start = Clock::now();
      v.server = std::thread([&v, &request, &backend, &pins] {
        (void)backend.serve(request, v.fds[0], pins);
        ::shutdown(v.fds[0], SHUT_RDWR);
      });
      try {
        v.client = std::make_unique<kasm::rdp::testing::RfbTestClient>(v.fds[1]);
        v.client->keep_pixels = false;
        v.failure = v.client->handshake(60000);
        if (!v.failure.empty()) return;
        v.client->setPixelFormatNoVnc();
        v.client->setEncodings({16, 0, -308, -223, -239, -258});
        v.client->requestUpdate(false);
        const auto deadline = start + std::chrono::seconds(60);
        while (Clock::now() < deadline) {
          auto m = v.client->readMessage(1000);
          if (m.type == 0 && m.non_black) {
            v.first_frame_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
            return;
          }
          if (m.type == 0) v.client->requestUpdate(true);
        }
        v.failure = "no desktop within 60 s";
      } catch (const std::exception& e) {
        v.failure = e.what();
      }
    });
  }
  for (auto& d : drivers) d.join();
  // Every connection is up and idle: let the allocator settle, then measure.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const long during = pssKb();
  // The CPU an idle desktop costs: a loop that spins would show here.
  const double cpu_before = cpuSeconds();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double idle_cpu_percent = (cpuSeconds() - cpu_before) / 2.0 * 100.0;
  std::vector<double> times;
  int failed = 0;
  for (auto& v : viewers) {
    if (v->first_frame_ms >= 0) {
      times.push_back(v->first_frame_ms);
    } else {
      ++failed;
      std::fprintf(stderr, "bench_rdp: a connection failed: %s\n", v->failure.c_str());
    }
    ::shutdown(v->fds[1], SHUT_RDWR);
  }
  for (auto& v : viewers) {
    if (v->server.joinable()) v->server.join();
    close(v->fds[0]);
    close(v->fds[1]);
  }
  std::sort(times.begin(), times.end());
  if (times.empty()) return false;
  double sum = 0;
  for (double t : times) sum += t;
  std::printf(
      "%2d concurrent: PSS %.1f MB per connection (%.1f MB -> %.1f MB); first frame median %.0f ms, "
      "mean %.0f ms, max %.0f ms; idle CPU %.2f%% of a core%s\n",
      n, (during - before) / 1024.0 / n, before / 1024.0, during / 1024.0, times[times.size() / 2], sum / times.size(),
      times.back(), idle_cpu_percent, failed ? " (some connections failed)" : "");
  std::fflush(stdout);
  return failed == 0;
}

}  // namespace

int main() {
  const char* addr = std::getenv("KASM_TEST_XRDP_ADDR");
  const char* user = std::getenv("KASM_TEST_XRDP_USER");
  const char* password = std::getenv("KASM_TEST_XRDP_PASSWORD");
  if (!addr || !user || !password) {
    std::fprintf(stderr, "bench_rdp: set KASM_TEST_XRDP_ADDR/_USER/_PASSWORD (scripts/services/xrdp.sh start_xrdp)\n");
    return 77;
  }
  const std::string a(addr);
  kasm::spi::GatewayRequest request;
  request.protocol = "rdp";
  request.host = a.substr(0, a.rfind(':'));
  request.port = static_cast<std::uint16_t>(std::stoi(a.substr(a.rfind(':') + 1)));
  request.username = user;
  request.password = password;
  request.certificate_policy = "ignore";
  request.width = 1280;
  request.height = 800;
  auto backend = kasm::rdp::makeRdpBackend();
  std::printf("bench_rdp: RDP desktops at 1280x800 from xrdp on %s through kasm::rdp (guacd: ~27 MB, 1.4-1.65 s)\n",
              addr);
  // The first run also pays one-time process costs (FreeRDP's tables, TLS, the primitives check).
  const char* repeat_env = std::getenv("KASM_BENCH_RDP_REPEAT");
  const int repeat = repeat_env ? std::max(1, std::atoi(repeat_env)) : 2;
  bool ok = true;
  for (int i = 0; i < repeat; ++i) ok = run(1, request, *backend) && ok;
  ok = run(10, request, *backend) && ok;
  ok = run(1, request, *backend) && ok;
  return ok ? 0 : 1;
}
