// bench_chat: chat fan-out of one sender to the members of a shared session (issue 15), through
// the library as the servers use it: kasm::share::ChatService over a share database.
//
//   redis   two ChatServices ("server 1" and "server 2"), each over its own RedisShareDatabase on
//           one Redis, half of the members connected to each; the sender is a member of server 1.
//   memory  the in-process baseline: one ChatService over a MemoryShareDatabase, every member on it.
//
// Each member's send function parses what it gets (boost::json) and, for a chat line
// "m<seq> <send-time-ns>", records arrival - send. The sender's own line comes back to it like to
// everyone else, so M members means M deliveries per message. Two phases per backend:
//   burst   N messages sent as fast as ChatConnection::receive() takes them: messages/s from the
//           first send to the last delivery (latencies here are mostly queueing behind the burst);
//   paced   P messages at R per second: delivery latency of a chat that is not saturated.
// CPU: this process (getrusage; both "servers", the clients and the parsing) and, for a Redis this
// benchmark started itself, redis-server (/proc/<pid>/stat), per delivered message.
//
// Only 127.0.0.1. Redis: KASM_BENCH_REDIS_URL, else a private redis-server (no persistence) on a
// free loopback port, stopped at the end. Every wait is bounded.
//
// Usage: bench_chat [--messages N] [--paced P] [--rate R] [--members M] [--redis-server PATH]
//                   [--backend memory|redis|both]

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "kasm/share/chat.hpp"
#include "kasm/share/memory_share_database.hpp"
#ifdef KASM_BENCH_WITH_REDIS
#include "kasm/share/redis_share_database.hpp"
#endif

extern char** environ;

namespace {

using namespace kasm;
namespace json = boost::json;
using Steady = std::chrono::steady_clock;

int g_messages = 2000;  // Burst.
int g_paced = 1000;
double g_rate = 500;  // Paced messages per second.
int g_members = 100;
std::string g_redis_server = "/usr/bin/redis-server";
std::string g_backend = "both";
constexpr auto kDeliveryTimeout = std::chrono::seconds(60);
constexpr int kMaxMessages = 100'000;  // Bounds --messages and --paced (the chat queue holds 10,000).

std::int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Steady::now().time_since_epoch()).count();
}

// What one member saw: latency per message sequence number (-1: not yet), written only by the
// share database's delivery thread of that member's server.
struct Member {
  std::vector<std::int64_t> latency_ns;
};

struct Tally {
  std::atomic<long> delivered{0};
  std::atomic<long> probe{-1};  // The probe line being waited for and how many members have it.
  std::atomic<long> probe_seen{0};
  std::atomic<std::int64_t> last_arrival_ns{0};
};

std::function<void(std::string)> recorder(Member& m, Tally& tally) {
  return [&m, &tally](std::string text) {
    const auto arrival = nowNs();
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object()) return;
    const auto* body = v.get_object().if_contains("body");
    if (!body || !body->is_object()) return;
    const auto* kind = body->get_object().if_contains("kind");
    const auto* line = body->get_object().if_contains("message");
    if (!kind || !line || !kind->is_string() || kind->get_string() != "message" || !line->is_string()) return;
    const std::string_view s = line->get_string();  // "m<seq> <send-ns>" or "p<probe>"
    if (s.size() >= 2 && s[0] == 'p') {
      long n = -1;
      std::from_chars(s.data() + 1, s.data() + s.size(), n);
      if (n == tally.probe.load()) tally.probe_seen.fetch_add(1);
      return;
    }
    const auto space = s.find(' ');
    if (s.size() < 2 || s[0] != 'm' || space == std::string_view::npos) return;
    long seq = -1;
    std::int64_t sent = 0;
    std::from_chars(s.data() + 1, s.data() + space, seq);
    std::from_chars(s.data() + space + 1, s.data() + s.size(), sent);
    if (seq < 0 || seq >= static_cast<long>(m.latency_ns.size()) || m.latency_ns[seq] >= 0) return;
    m.latency_ns[seq] = arrival - sent;
    auto last = tally.last_arrival_ns.load(std::memory_order_relaxed);
    while (arrival > last && !tally.last_arrival_ns.compare_exchange_weak(last, arrival)) {
    }
    tally.delivered.fetch_add(1, std::memory_order_release);
  };
}

// A private redis-server on a free loopback port.
class RedisProcess {
 public:
  ~RedisProcess() { stop(); }

  bool start(const std::string& binary) {
    port_ = freePort();
    if (port_ == 0) return false;
    dir_ = std::filesystem::temp_directory_path() / ("bench_chat_redis." + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    std::vector<std::string> args{
        binary, "--bind", "127.0.0.1",   "--port",    std::to_string(port_),        "--save", "", "--appendonly",
        "no",   "--dir",  dir_.string(), "--logfile", (dir_ / "redis.log").string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, binary.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      pid_ = 0;
      return false;
    }
    return true;
  }

  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
      pid_ = 0;
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
  pid_t pid() const { return pid_; }

 private:
  static std::uint16_t freePort() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    std::uint16_t port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    close(fd);
    return port;
  }

  pid_t pid_ = 0;
  std::uint16_t port_ = 0;
  std::filesystem::path dir_;
};

struct PhaseResult {
  int messages = 0;
  double send_seconds = 0;     // First to last receive() call.
  double deliver_seconds = 0;  // First send to last delivery.
  long delivered = 0;
  double p50_us = 0, p99_us = 0, max_us = 0;
  double process_cpu = 0, redis_cpu = -1;
};

double percentile(std::vector<std::int64_t>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k]) / 1000.0;
}

// One backend's run: `services` are the servers, members are dealt to them in turn (member 0,
// on the first server, sends).
class FanOut {
 public:
  FanOut(std::vector<share::ChatService*> services, pid_t redis_pid)
      : services_(std::move(services)), redis_pid_(redis_pid), session_("bench-chat-" + std::to_string(nowNs())) {
    members_.resize(static_cast<std::size_t>(g_members));
    for (auto& m : members_) m.latency_ns.assign(static_cast<std::size_t>(g_messages + g_paced), -1);
    for (int i = 0; i < g_members; ++i) {
      auto* svc = services_[static_cast<std::size_t>(i) % services_.size()];
      spi::ChatMember who{.member_id = "member-" + std::to_string(i),
                          .user_id = "user-" + std::to_string(i),
                          .username = "user" + std::to_string(i),
                          .access = i == 0 ? "owner" : "r"};
      conns_.push_back(svc->connect(session_, who, recorder(members_[static_cast<std::size_t>(i)], tally_)));
    }
  }

  ~FanOut() {
    for (auto& c : conns_) c->leave();
    if (!services_.empty()) services_.front()->endSession(session_);
  }

  // Joins are chat lines too: let them (and the subscriptions) settle before measuring. A probe
  // line that every member has received shows that all of them are subscribed.
  bool settle() {
    const auto deadline = Steady::now() + std::chrono::seconds(20);
    for (long n = 0; Steady::now() < deadline; ++n) {
      tally_.probe_seen.store(0);
      tally_.probe.store(n);
      conns_.front()->receive(R"({"message":"p)" + std::to_string(n) + R"("})");
      const auto wait_until = Steady::now() + std::chrono::milliseconds(500);
      while (Steady::now() < wait_until && tally_.probe_seen.load() < g_members)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (tally_.probe_seen.load() >= g_members) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // Late join lines drain.
        return true;
      }
    }
    return false;
  }

  // Messages [first, first + count) at `rate` per second (0: as fast as possible).
  PhaseResult run(int first, int count, double rate) {
    PhaseResult r;
    r.messages = count;
    tally_.delivered.store(0);
    const double cpu0 = bench::processCpuSeconds(), redis0 = redisCpuSeconds();
    const auto start = Steady::now();
    const auto start_ns = nowNs();
    for (int i = 0; i < count; ++i) {
      if (rate > 0) std::this_thread::sleep_until(start + std::chrono::nanoseconds(static_cast<long>(i * 1e9 / rate)));
      send(first + i, nowNs());
    }
    r.send_seconds = static_cast<double>(nowNs() - start_ns) / 1e9;
    const long expected = static_cast<long>(count) * g_members;
    const auto deadline = Steady::now() + kDeliveryTimeout;
    while (tally_.delivered.load(std::memory_order_acquire) < expected && Steady::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    r.delivered = tally_.delivered.load(std::memory_order_acquire);
    r.deliver_seconds = static_cast<double>(tally_.last_arrival_ns.load() - start_ns) / 1e9;
    r.process_cpu = bench::processCpuSeconds() - cpu0;
    if (redis0 >= 0) r.redis_cpu = redisCpuSeconds() - redis0;
    std::vector<std::int64_t> all;
    all.reserve(static_cast<std::size_t>(expected));
    for (auto& m : members_)
      for (int i = first; i < first + count; ++i)
        if (m.latency_ns[static_cast<std::size_t>(i)] >= 0) all.push_back(m.latency_ns[static_cast<std::size_t>(i)]);
    r.p50_us = percentile(all, 0.50);
    r.p99_us = percentile(all, 0.99);
    r.max_us = all.empty() ? 0 : static_cast<double>(*std::max_element(all.begin(), all.end())) / 1000.0;
    return r;
  }

 private:
  void send(int seq, std::int64_t at_ns) {
    json::object o;
    o["message"] = "m" + std::to_string(seq) + " " + std::to_string(at_ns);
    conns_.front()->receive(json::serialize(o));
  }

  std::vector<share::ChatService*> services_;
  // Redis's CPU seconds so far, or a negative value when it cannot be read.
  double redisCpuSeconds() const {
    if (redis_pid_ <= 0) return -1;
    const auto stat = bench::readProcStat(redis_pid_);
    return stat ? stat->cpu_seconds : -1;
  }

  pid_t redis_pid_;
  SessionId session_;
  std::vector<Member> members_;
  Tally tally_;
  std::vector<std::shared_ptr<share::ChatConnection>> conns_;
};

void print(const char* backend, const char* phase, const PhaseResult& r) {
  const double msgs_per_s = r.deliver_seconds > 0 ? r.messages / r.deliver_seconds : 0;
  const double cpu_per_delivery_us = r.delivered > 0 ? r.process_cpu / static_cast<double>(r.delivered) * 1e6 : 0;
  char redis_cpu[32] = "-";
  if (r.redis_cpu >= 0 && r.messages > 0)
    std::snprintf(redis_cpu, sizeof redis_cpu, "%.1f", r.redis_cpu / r.messages * 1e6);
  std::printf("%-7s %-6s %6d %10.0f %10.0f %12.0f %10.1f %10.1f %10.1f %9.2f %10s %9ld/%ld\n", backend, phase,
              r.messages, r.send_seconds > 0 ? r.messages / r.send_seconds : 0, msgs_per_s, msgs_per_s * g_members,
              r.p50_us, r.p99_us, r.max_us, cpu_per_delivery_us, redis_cpu, r.delivered,
              static_cast<long>(r.messages) * g_members);
  std::fflush(stdout);
}

void header() {
  std::printf("%-7s %-6s %6s %10s %10s %12s %10s %10s %10s %9s %10s %s\n", "backend", "phase", "msgs", "sent/s",
              "msgs/s", "deliveries/s", "p50 us", "p99 us", "max us", "cpu/dlv us", "redis/msg us", "delivered");
}

bool runBackend(const char* name, std::vector<share::ChatService*> services, pid_t redis_pid) {
  FanOut fan(std::move(services), redis_pid);
  if (!fan.settle()) {
    std::fprintf(stderr, "%s: the members did not all receive a probe line within 20 s\n", name);
    return false;
  }
  print(name, "burst", fan.run(0, g_messages, 0));
  print(name, "paced", fan.run(g_messages, g_paced, g_rate));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--messages")
      g_messages = std::atoi(argv[i + 1]);
    else if (a == "--paced")
      g_paced = std::atoi(argv[i + 1]);
    else if (a == "--rate")
      g_rate = std::atof(argv[i + 1]);
    else if (a == "--members")
      g_members = std::atoi(argv[i + 1]);
    else if (a == "--redis-server")
      g_redis_server = argv[i + 1];
    else if (a == "--backend")
      g_backend = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  g_messages = std::clamp(g_messages, 1, kMaxMessages);
  g_paced = std::clamp(g_paced, 1, kMaxMessages);
  g_members = std::clamp(g_members, 2, 10'000);
  g_rate = std::clamp(g_rate, 1.0, 100'000.0);
  // A chat line of ours is a few dozen bytes; the queue bound is the service's, not the benchmark's.
  const share::ChatOptions options{.max_queue = static_cast<std::size_t>(std::max(g_messages, g_paced)) + 1000};

  std::printf("bench_chat: %d members, burst %d messages, paced %d at %.0f/s\n", g_members, g_messages, g_paced,
              g_rate);
  header();
  SystemClock clock;
  bool ok = true;

  if (g_backend == "memory" || g_backend == "both") {
    MemoryShareDatabase db(clock);
    share::ChatService service(db, clock, options);
    ok = runBackend("memory", {&service}, 0) && ok;
  }

  if (g_backend == "redis" || g_backend == "both") {
#ifdef KASM_BENCH_WITH_REDIS
    RedisProcess redis;
    std::string url;
    if (const char* env = std::getenv("KASM_BENCH_REDIS_URL")) {
      url = env;
    } else if (redis.start(g_redis_server)) {
      url = redis.url();
    } else {
      std::fprintf(stderr, "redis: could not start %s (set KASM_BENCH_REDIS_URL instead)\n", g_redis_server.c_str());
      return 1;
    }
    RedisShareDatabaseOptions ropts{.url = url, .key_prefix = "kasmbench-chat:"};
    Result<std::unique_ptr<spi::ShareDatabase>> a = Error(ErrorCode::kUnavailable, "not tried");
    const auto deadline = Steady::now() + std::chrono::seconds(10);
    while (!(a = openRedisShareDatabase(ropts, clock)).ok() && Steady::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto b = openRedisShareDatabase(ropts, clock);
    if (!a.ok() || !b.ok()) {
      std::fprintf(stderr, "redis: %s\n", (a.ok() ? b.error() : a.error()).toString().c_str());
      return 1;
    }
    {
      share::ChatService server1(**a, clock, options), server2(**b, clock, options);
      ok = runBackend("redis", {&server1, &server2}, redis.pid()) && ok;
    }
#else
    std::fprintf(stderr, "redis: built without kasm::redis\n");
    ok = false;
#endif
  }
  return ok ? 0 : 1;
}
