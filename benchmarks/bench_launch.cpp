// Cold launch of a small container, create + start + ready, through kasm::docker against the
// docker CLI (`docker run -d`) in the same run; then 20 launches at once, both ways.
//
// Needs a running dockerd and the busybox test image (scripts/lib-services.sh:
// start_docker_services builds it); KASM_BENCH_IMAGE overrides the image. "Ready" means the
// published port on 127.0.0.1 answers (the agent's readiness probe), for both contenders; the
// CLI does not print the published port, so its run also pays one inspect through our client.

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kasm/agent/local_agent.hpp"
#include "kasm/docker/docker_runtime.hpp"

namespace {

using namespace kasm;

constexpr const char* kBenchLabel = "kasm.bench";
constexpr int kParallel = 20;

spi::ContainerRuntime* g_runtime = nullptr;
std::string g_image;
std::atomic<int> g_counter{0};

std::string uniqueName() {
  return "kasm-bench-" + std::to_string(::getpid()) + "-" + std::to_string(g_counter++);
}

void removeBenchContainers() {
  auto all = g_runtime->list({{kBenchLabel, "launch"}});
  if (!all.ok()) return;
  std::vector<std::thread> threads;
  for (const auto& c : *all) threads.emplace_back([id = c.id] { (void)g_runtime->remove(id); });
  for (auto& t : threads) t.join();
}

bool ready(const std::string& published) {
  // The agent's defaults (LocalAgentOptions) for both contenders.
  const agent::LocalAgentOptions defaults;
  return agent::waitForTcp(published, defaults.probe_connect_timeout, defaults.probe_interval, defaults.probe_attempts)
      .ok();
}

// Ours: one createAndStart (create, start, inspect) then the probe.
bool launchOurs(std::string* error) {
  spi::ContainerSpec spec;
  spec.name = uniqueName();
  spec.image = g_image;
  spec.labels = {{kBenchLabel, "launch"}};
  spec.port = 8080;
  spec.resources = {500, 64 * Resources::kMiB, 0};
  spec.cpu_allocation = CpuAllocationMethod::kQuotas;
  auto info = g_runtime->createAndStart(spec);
  if (!info.ok()) {
    *error = info.error().toString();
    return false;
  }
  if (!ready(info->published)) {
    *error = "not ready: " + info->published;
    return false;
  }
  return true;
}

// The peer: `docker run -d` with the same limits, label and loopback port, then the probe.
bool launchCli(std::string* error) {
  const std::string name = uniqueName();
  const std::string cmd = "docker run -d --name " + name + " --label " + kBenchLabel +
                          "=launch --cpus 0.5 --memory 64m -p 127.0.0.1::8080 " + g_image + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    *error = "popen failed";
    return false;
  }
  char buf[512];
  std::string out;
  while (std::fgets(buf, sizeof(buf), p)) out += buf;
  if (::pclose(p) != 0) {
    *error = "docker run failed: " + out;
    return false;
  }
  auto info = g_runtime->inspect(name);
  if (!info.ok() || !ready(info->published)) {
    *error = "not ready";
    return false;
  }
  return true;
}

void runLaunches(benchmark::State& state, bool (*launch)(std::string*), int parallel) {
  for (auto _ : state) {
    std::vector<std::thread> threads;
    std::mutex mu;
    std::string failure;
    for (int i = 0; i < parallel; ++i) {
      threads.emplace_back([&] {
        std::string error;
        if (!launch(&error)) {
          std::lock_guard lock(mu);
          failure = error;
        }
      });
    }
    for (auto& t : threads) t.join();
    state.PauseTiming();
    removeBenchContainers();
    state.ResumeTiming();
    if (!failure.empty()) {
      state.SkipWithError(failure.c_str());
      break;
    }
  }
  state.counters["containers"] = parallel;
}

void BM_LaunchOurs(benchmark::State& state) {
  runLaunches(state, launchOurs, 1);
}
void BM_LaunchDockerCli(benchmark::State& state) {
  runLaunches(state, launchCli, 1);
}
void BM_Launch20ParallelOurs(benchmark::State& state) {
  runLaunches(state, launchOurs, kParallel);
}
void BM_Launch20ParallelDockerCli(benchmark::State& state) {
  runLaunches(state, launchCli, kParallel);
}

// Interleaved registration keeps both contenders under the same engine conditions.
BENCHMARK(BM_LaunchOurs)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(20);
BENCHMARK(BM_LaunchDockerCli)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(20);
BENCHMARK(BM_Launch20ParallelOurs)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_Launch20ParallelDockerCli)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

// Prints the console table and remembers each benchmark's mean real time for the ratios.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) {
      if (!r.error_occurred) times_[r.benchmark_name()] = r.GetAdjustedRealTime();
    }
  }
  void printRatio(const std::string& ours, const std::string& cli) const {
    auto a = times_.find(ours), b = times_.find(cli);
    if (a == times_.end() || b == times_.end()) return;
    std::printf("ratio %s / %s = %.3f (%.1f ms vs %.1f ms; <= 1.0 means ours is no slower)\n", ours.c_str(),
                cli.c_str(), a->second / b->second, a->second, b->second);
  }

 private:
  std::map<std::string, double> times_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const char* image = std::getenv("KASM_BENCH_IMAGE");
  g_image = image && *image ? image
                            : (std::getenv("KASM_TEST_IMAGE") ? std::getenv("KASM_TEST_IMAGE") : "kasm-test/busybox:1");
  auto runtime = docker::openDockerRuntime(docker::DockerOptions::fromEnvironment());
  if (!runtime.ok()) {
    std::cerr << "bench_launch: " << runtime.error().toString() << "\n";
    return 1;
  }
  g_runtime = runtime->get();
  std::cout << "bench_launch: image " << g_image << ", Engine API " << docker::negotiatedApiVersion(**runtime) << "\n";
  removeBenchContainers();
  // Warm-up: the first launch after an engine start pays one-off costs for both contenders.
  std::string error;
  if (!launchOurs(&error) || !launchCli(&error)) {
    std::cerr << "bench_launch: warm-up launch failed: " << error << "\n";
    removeBenchContainers();
    return 1;
  }
  removeBenchContainers();
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.printRatio("BM_LaunchOurs/iterations:20/real_time", "BM_LaunchDockerCli/iterations:20/real_time");
  reporter.printRatio("BM_Launch20ParallelOurs/iterations:3/real_time",
                      "BM_Launch20ParallelDockerCli/iterations:3/real_time");
  removeBenchContainers();
  benchmark::Shutdown();
  return 0;
}
