// Manager throughput with the store in the loop: concurrent requestSession (placement, atomic
// reservation + session insert, provision on an in-memory agent link, lifetimes) followed by
// destroySession, on 100 agents. The agent link is a fake so the figure is the manager and the store,
// not Docker. Backends: SQLite (a temp file), and PostgreSQL when KASM_BENCH_POSTGRES_URL is set.
//
//   KASM_BENCH_POSTGRES_URL=postgresql://... bench_manager

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <pqxx/pqxx>
#include <thread>

#include "kasm/kasm.hpp"
#include "kasm/manager/manager.hpp"
#include "kasm/store/postgres_store.hpp"
#include "kasm/store/sqlite_store.hpp"
#include "unit/fake_agent_link.hpp"

namespace {

using namespace kasm;

// Removes a benchmark's scratch database (a PostgreSQL database, or SQLite's directory) when it goes
// out of scope: declared before the store on it.
struct ScratchDatabase {
  std::string name;
  std::filesystem::path dir;
  ~ScratchDatabase() {
    std::error_code ignored;
    if (!dir.empty()) std::filesystem::remove_all(dir, ignored);
    const char* url = std::getenv("KASM_BENCH_POSTGRES_URL");
    if (name.empty() || !url) return;
    try {
      pqxx::connection c(url);
      pqxx::nontransaction t(c);
      t.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_manager: could not drop database %s: %s\n", name.c_str(), e.what());
    }
  }
};

Result<std::unique_ptr<spi::Store>> openBackend(const std::string& backend, int run, ScratchDatabase& scratch) {
  if (backend == "sqlite") {
    auto dir = std::filesystem::temp_directory_path() /
               ("kasm-bench-mgr-" + std::to_string(::getpid()) + "-" + std::to_string(run));
    std::filesystem::remove_all(dir);
    scratch.dir = dir;
    return openSqliteStore({.path = (dir / "kasm.db").string()});
  }
  const char* url = std::getenv("KASM_BENCH_POSTGRES_URL");
  if (!url) return unavailable("KASM_BENCH_POSTGRES_URL not set");
  const std::string db = "kasm_bench_mgr_" + std::to_string(::getpid()) + "_" + std::to_string(run);
  try {
    pqxx::connection c(url);
    pqxx::nontransaction t(c);
    t.exec("CREATE DATABASE " + db);
    scratch.name = db;
  } catch (const std::exception& e) {
    return unavailable(e.what());
  }
  std::string u(url);
  return openPostgresStore({.url = u.substr(0, u.find('/', u.find("://") + 3)) + "/" + db, .pool_size = 8});
}

void BM_RequestAndDestroy(benchmark::State& state, std::string backend) {
  static int run = 0;
  ScratchDatabase scratch;
  auto store = openBackend(backend, run++, scratch);
  if (!store.ok()) {
    state.SkipWithError(store.error().toString().c_str());
    return;
  }
  SystemClock clock;
  SeededRandom random(3);
  Manager m(**store, clock, random);
  (void)m.start();
  Repository repo(**store);
  Zone z;
  z.id = ZoneId("east");
  z.name = "East";
  (void)m.upsertZone(z);
  Workspace w;
  w.id = WorkspaceId("desktop");
  w.friendly_name = "Desktop";
  w.image = "desktop:1";
  w.resources = Resources::fromCores(1, Resources::kGiB);
  (void)m.upsertWorkspace(w);
  Group g;
  g.id = GroupId("all");
  g.name = "All";
  g.settings.max_sessions_per_user = 0;
  (void)repo.insert(g);
  auto link = std::make_shared<testing::FakeAgentLink>();
  for (int i = 0; i < 100; ++i) {
    Agent a;
    a.id = AgentId("agent" + std::to_string(i));
    a.hostname = a.id.str();
    a.zone_id = z.id;
    auto reg = m.registerAgent(a);
    m.attachAgentLink(a.id, link);
    (void)m.checkIn(AgentCheckIn{a.id,
                                 reg.ok() ? reg->token : "",
                                 Resources::fromCores(64, 256 * Resources::kGiB),
                                 0,
                                 0,
                                 {"desktop:1"},
                                 "bench"});
  }
  const int threads = static_cast<int>(state.range(0));
  for (int t = 0; t < threads; ++t) {
    User u;
    u.id = UserId("user" + std::to_string(t));
    u.username = u.id.str();
    u.group_ids = {g.id};
    (void)repo.insert(u);
  }
  constexpr int kPerThread = 200;
  std::atomic<int> errors{0};
  for (auto _ : state) {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          auto s = m.requestSession(SessionRequest{UserId("user" + std::to_string(t)), w.id, z.id, {}});
          if (!s.ok()) {
            ++errors;
            continue;
          }
          if (!m.destroySession(s->id).ok()) ++errors;
        }
      });
    }
    for (auto& th : pool) th.join();
  }
  state.counters["sessions_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * threads * kPerThread), benchmark::Counter::kIsRate);
  state.counters["errors"] = errors.load();
}

}  // namespace

BENCHMARK_CAPTURE(BM_RequestAndDestroy, sqlite, std::string("sqlite"))
    ->Arg(1)
    ->Arg(4)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_RequestAndDestroy, postgres, std::string("postgres"))
    ->Arg(1)
    ->Arg(4)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
