// Store benchmark: session insert, compare-and-set update, and "running sessions of a user" with
// 10,000 sessions in the table, on SQLite (a temp file), the in-memory store and, when
// KASM_BENCH_POSTGRES_URL is set, PostgreSQL.
//
//   bench_store --benchmark_format=json
//   KASM_BENCH_POSTGRES_URL=postgresql://... bench_store

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <pqxx/pqxx>

#include "kasm/kasm.hpp"
#include "kasm/store/postgres_store.hpp"
#include "kasm/store/sqlite_store.hpp"

namespace {

using namespace kasm;

constexpr int kUsers = 2000;
constexpr int kPreloaded = 10000;

std::unique_ptr<spi::Store> openBackend(const std::string& name, benchmark::State& state) {
  Result<std::unique_ptr<spi::Store>> store = unavailable("unknown backend");
  if (name == "memory") {
    store = makeMemoryStore();
  } else if (name == "sqlite") {
    auto dir = std::filesystem::temp_directory_path() / ("kasm-bench-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    store = openSqliteStore({.path = (dir / "kasm.db").string()});
  } else if (name == "postgres") {
    const char* url = std::getenv("KASM_BENCH_POSTGRES_URL");
    if (!url) {
      state.SkipWithError("KASM_BENCH_POSTGRES_URL not set");
      return nullptr;
    }
    // A fresh database per benchmark so runs are comparable (no bloat from the previous one).
    static int n = 0;
    const std::string db = "kasm_bench_" + std::to_string(::getpid()) + "_" + std::to_string(n++);
    try {
      pqxx::connection c(url);
      pqxx::nontransaction t(c);
      t.exec("CREATE DATABASE " + db);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      return nullptr;
    }
    std::string u(url);
    const auto slash = u.find('/', u.find("://") + 3);
    store = openPostgresStore({.url = u.substr(0, slash) + "/" + db, .pool_size = 4});
  }
  if (!store.ok()) {
    state.SkipWithError(store.error().toString().c_str());
    return nullptr;
  }
  return std::move(store).value();
}

Session makeSession(int user) {
  Session s;
  s.id = SessionId::generate();
  s.user_id = UserId("user" + std::to_string(user));
  s.workspace_id = WorkspaceId("desktop");
  s.agent_id = AgentId("agent" + std::to_string(user % 100));
  s.zone_id = ZoneId("east");
  s.resources = Resources::fromCores(2, 4 * Resources::kGiB);
  s.state = SessionState::kRunning;
  s.upstream = "127.0.0.1:40000";
  return s;
}

void preload(Repository& repo, int n) {
  for (int i = 0; i < n; ++i) (void)repo.insert(makeSession(i % kUsers));
}

void BM_SessionInsert(benchmark::State& state, std::string backend) {
  auto store = openBackend(backend, state);
  if (!store) return;
  Repository repo(*store);
  int i = 0;
  for (auto _ : state) {
    auto r = repo.insert(makeSession(i++ % kUsers));
    if (!r.ok()) state.SkipWithError(r.error().toString().c_str());
  }
  state.counters["ops_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_SessionUpdateCas(benchmark::State& state, std::string backend) {
  auto store = openBackend(backend, state);
  if (!store) return;
  Repository repo(*store);
  Session s = makeSession(0);
  auto version = repo.insert(s);
  if (!version.ok()) {
    state.SkipWithError(version.error().toString().c_str());
    return;
  }
  std::int64_t v = *version;
  for (auto _ : state) {
    s.progress = static_cast<int>(v % 100);
    auto r = repo.update(s, v);
    if (!r.ok()) {
      state.SkipWithError(r.error().toString().c_str());
      break;
    }
    v = *r;
  }
  state.counters["ops_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_ListRunningSessionsOfUser(benchmark::State& state, std::string backend) {
  auto store = openBackend(backend, state);
  if (!store) return;
  Repository repo(*store);
  preload(repo, kPreloaded);
  int i = 0;
  std::size_t found = 0;
  for (auto _ : state) {
    auto r = repo.list<Session>(
        spi::Query().where("user_id", "user" + std::to_string(i++ % kUsers)).where("state", "running"));
    if (!r.ok()) {
      state.SkipWithError(r.error().toString().c_str());
      break;
    }
    found += r->size();
  }
  state.counters["ops_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["rows_per_query"] =
      static_cast<double>(found) / static_cast<double>(std::max<std::int64_t>(1, state.iterations()));
}

}  // namespace

BENCHMARK_CAPTURE(BM_SessionInsert, memory, std::string("memory"))->UseRealTime();
BENCHMARK_CAPTURE(BM_SessionInsert, sqlite, std::string("sqlite"))->UseRealTime();
BENCHMARK_CAPTURE(BM_SessionInsert, postgres, std::string("postgres"))->UseRealTime();
BENCHMARK_CAPTURE(BM_SessionUpdateCas, memory, std::string("memory"))->UseRealTime();
BENCHMARK_CAPTURE(BM_SessionUpdateCas, sqlite, std::string("sqlite"))->UseRealTime();
BENCHMARK_CAPTURE(BM_SessionUpdateCas, postgres, std::string("postgres"))->UseRealTime();
BENCHMARK_CAPTURE(BM_ListRunningSessionsOfUser, memory, std::string("memory"))->UseRealTime();
BENCHMARK_CAPTURE(BM_ListRunningSessionsOfUser, sqlite, std::string("sqlite"))->UseRealTime();
BENCHMARK_CAPTURE(BM_ListRunningSessionsOfUser, postgres, std::string("postgres"))->UseRealTime();

BENCHMARK_MAIN();
