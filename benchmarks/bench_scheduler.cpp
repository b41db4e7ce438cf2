// Scheduler benchmark (C1M): 1,000,000 placements onto 10,000 agents in 10 zones with mixed session
// sizes, labels, GPUs and 5% draining agents; the same at 100,000 agents; and the reference scan in
// the same run for the ratio. Sessions are released in FIFO order once 10 per agent are live, so the
// cluster stays busy (about half full) instead of filling up.
//
//   bench_scheduler --benchmark_format=json

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <deque>

#include "kasm/sched/scheduler.hpp"

namespace {

using namespace kasm;
using namespace kasm::sched;

struct Cluster {
  SeededRandom random{12345};
  Scheduler scheduler{random};
  std::vector<PlacementRequest> requests;
};

std::unique_ptr<Cluster> buildCluster(int agents, int zones) {
  auto c = std::make_unique<Cluster>();
  SeededRandom gen(99);
  for (int z = 0; z < zones; ++z) {
    ZoneRules r;
    r.id = ZoneId("zone" + std::to_string(z));
    r.strategy = z % 2 ? LoadStrategy::kMostLoad : LoadStrategy::kLeastLoad;
    r.search_alternate_zones = z % 3 == 0;
    c->scheduler.upsertZone(r);
  }
  const Resources shapes[] = {Resources::fromCores(16, 64 * Resources::kGiB),
                              Resources::fromCores(32, 128 * Resources::kGiB),
                              Resources::fromCores(64, 256 * Resources::kGiB)};
  for (int i = 0; i < agents; ++i) {
    AgentEntry e;
    e.id = AgentId("agent" + std::to_string(i));
    e.zone = ZoneId("zone" + std::to_string(i % zones));
    e.capacity = shapes[gen.uniform(3)];
    if (gen.uniform(10) == 0) {
      e.capacity.gpus = 2;
      e.labels["gpu"] = "yes";
    }
    if (gen.uniform(10) < 3) e.labels["tier"] = "cheap";
    e.kind = gen.uniform(10) == 0 ? AgentKind::kAutoscaled : AgentKind::kStatic;
    e.draining = gen.uniform(20) == 0;  // 5%.
    e.images =
        gen.uniform(10) == 0 ? std::vector<std::string>{"base:1"} : std::vector<std::string>{"base:1", "desktop:1"};
    (void)c->scheduler.upsertAgent(e);
  }
  const Resources sizes[] = {Resources::fromCores(0.5, Resources::kGiB), Resources::fromCores(1, 2 * Resources::kGiB),
                             Resources::fromCores(2, 4 * Resources::kGiB),
                             Resources::fromCores(4, 8 * Resources::kGiB)};
  for (int i = 0; i < 65536; ++i) {
    PlacementRequest r;
    r.zone = ZoneId("zone" + std::to_string(gen.uniform(zones)));
    r.resources = sizes[gen.uniform(4)];
    r.image = "desktop:1";
    if (gen.uniform(100) == 0) {
      r.resources.gpus = 1;
      r.include_labels["gpu"] = "yes";
    }
    if (gen.uniform(10) == 0) r.exclude_labels["tier"] = "cheap";
    c->requests.push_back(std::move(r));
  }
  return c;
}

void run(benchmark::State& state, bool scan) {
  const int agents = static_cast<int>(state.range(0));
  const std::int64_t placements = state.range(1);
  auto cluster = buildCluster(agents, 10);
  const std::size_t live_cap = static_cast<std::size_t>(agents) * 10;
  std::vector<std::uint32_t> latencies;
  latencies.reserve(static_cast<std::size_t>(placements));
  std::int64_t placed = 0, refused = 0;
  double seconds = 0;
  for (auto _ : state) {
    std::deque<std::pair<AgentId, Resources>> live;
    const auto start = std::chrono::steady_clock::now();
    for (std::int64_t i = 0; i < placements; ++i) {
      const auto& r = cluster->requests[static_cast<std::size_t>(i) & 65535];
      const auto t0 = std::chrono::steady_clock::now();
      auto p = scan ? cluster->scheduler.chooseByScan(r) : cluster->scheduler.place(r);
      if (scan && p.ok()) (void)cluster->scheduler.reserve(p->agent, r.resources);
      const auto t1 = std::chrono::steady_clock::now();
      latencies.push_back(
          static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
      if (p.ok()) {
        ++placed;
        live.emplace_back(p->agent, r.resources);
        if (live.size() > live_cap) {
          (void)cluster->scheduler.release(live.front().first, live.front().second);
          live.pop_front();
        }
      } else {
        ++refused;
      }
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.SetIterationTime(seconds);
  }
  double decision_ns = 0;
  for (auto l : latencies) decision_ns += l;
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double q) {
    return static_cast<double>(latencies[static_cast<std::size_t>(q * static_cast<double>(latencies.size() - 1))]);
  };
  // placements_per_s: decisions (choose + reserve) per second of time spent deciding, which is what
  // a placement costs; loop_ops_per_s also pays for the releases and the benchmark's bookkeeping.
  state.counters["placements_per_s"] = static_cast<double>(placements) / (decision_ns / 1e9);
  state.counters["loop_ops_per_s"] = static_cast<double>(placements) / seconds;
  state.counters["p50_ns"] = pct(0.50);
  state.counters["p99_ns"] = pct(0.99);
  state.counters["p999_ns"] = pct(0.999);
  state.counters["refused"] = static_cast<double>(refused);
  state.counters["placed"] = static_cast<double>(placed);
}

void BM_C1M_Indexed(benchmark::State& state) {
  run(state, false);
}
void BM_C1M_Scan(benchmark::State& state) {
  run(state, true);
}

}  // namespace

BENCHMARK(BM_C1M_Indexed)
    ->Args({10000, 1000000})
    ->Args({100000, 1000000})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_C1M_Scan)
    ->Args({10000, 20000})
    ->Args({100000, 2000})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
