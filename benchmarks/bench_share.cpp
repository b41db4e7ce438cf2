// Share database benchmark: append alone, append until a subscriber of another instance has it
// (the chat round trip between two servers), and reading the newest 50 messages; on the memory
// database and, when KASM_BENCH_REDIS_URL is set, on Redis.
//
//   KASM_BENCH_REDIS_URL=redis://:pw@127.0.0.1:6379/0 bench_share

#include <benchmark/benchmark.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>

#include "kasm/share/memory_share_database.hpp"
#ifdef KASM_BENCH_WITH_REDIS
#include "kasm/share/redis_share_database.hpp"
#endif

namespace {

using namespace kasm;

SystemClock clock_;

// Two instances standing for two servers (the memory one twice, as it has no second server).
struct Pair {
  std::unique_ptr<spi::ShareDatabase> a, b;
};

Pair open(const std::string& name, benchmark::State& state) {
  if (name == "memory") {
    auto db = std::make_unique<MemoryShareDatabase>(clock_);
    return {std::move(db), nullptr};
  }
#ifdef KASM_BENCH_WITH_REDIS
  const char* url = std::getenv("KASM_BENCH_REDIS_URL");
  if (url) {
    RedisShareDatabaseOptions options{.url = url, .key_prefix = "kasmbench:"};
    auto a = openRedisShareDatabase(options, clock_);
    auto b = openRedisShareDatabase(options, clock_);
    if (a.ok() && b.ok()) return {std::move(*a), std::move(*b)};
    state.SkipWithError((a.ok() ? b.error() : a.error()).toString().c_str());
    return {};
  }
#endif
  state.SkipWithError("KASM_BENCH_REDIS_URL not set");
  return {};
}

spi::ChatMessage message() {
  return {.user_id = "u1", .username = "alice", .body = std::string(120, 'x'), .at_ms = 1};
}

void appendOnly(benchmark::State& state, const std::string& name) {
  auto dbs = open(name, state);
  if (!dbs.a) return;
  const SessionId session("bench-append");
  for (auto _ : state) {
    if (!dbs.a->append(session, message()).ok()) state.SkipWithError("append failed");
  }
  (void)dbs.a->dropSession(session);
}

void appendAndDeliver(benchmark::State& state, const std::string& name) {
  auto dbs = open(name, state);
  if (!dbs.a) return;
  auto* receiver = dbs.b ? dbs.b.get() : dbs.a.get();
  const SessionId session("bench-deliver");
  std::mutex mu;
  std::condition_variable cv;
  long received = 0;
  auto sub = receiver->subscribe(session, [&](const spi::ChatMessage&) {
    std::lock_guard lk(mu);
    ++received;
    cv.notify_one();
  });
  if (!sub.ok()) return state.SkipWithError(sub.error().toString().c_str());
  long sent = 0;
  for (auto _ : state) {
    if (!dbs.a->append(session, message()).ok()) return state.SkipWithError("append failed");
    ++sent;
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return received == sent; });
  }
  (void)dbs.a->dropSession(session);
}

void history50(benchmark::State& state, const std::string& name) {
  auto dbs = open(name, state);
  if (!dbs.a) return;
  const SessionId session("bench-history");
  for (int i = 0; i < 500; ++i) (void)dbs.a->append(session, message());
  for (auto _ : state) {
    auto h = dbs.a->history(session, 50);
    if (!h.ok() || h->size() != 50) state.SkipWithError("history failed");
  }
  (void)dbs.a->dropSession(session);
}

}  // namespace

BENCHMARK_CAPTURE(appendOnly, memory, std::string("memory"))->UseRealTime();
BENCHMARK_CAPTURE(appendOnly, redis, std::string("redis"))->UseRealTime();
BENCHMARK_CAPTURE(appendAndDeliver, memory, std::string("memory"))->UseRealTime();
BENCHMARK_CAPTURE(appendAndDeliver, redis, std::string("redis"))->UseRealTime();
BENCHMARK_CAPTURE(history50, memory, std::string("memory"))->UseRealTime();
BENCHMARK_CAPTURE(history50, redis, std::string("redis"))->UseRealTime();
BENCHMARK_MAIN();
