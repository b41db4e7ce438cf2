// The scale-out figures of issue 18, linked into bench_manager (its BENCHMARK_MAIN runs them):
//
//   BM_CheckIn       Manager::checkIn of 10,000 registered agents, one after another: check-ins per
//                    second, CPU per check-in (this process, and for PostgreSQL the server's
//                    backends from /proc), and what 10,000 agents at a 5 s period cost of a core.
//   BM_StagedClaim   requestSession served from a staging pool of fake agents: p50/p99 of the
//                    claim, with tick() refilling the pool between claims (not timed).
//   BM_Launches      requestSession + destroySession from threads split over one or two managers
//                    sharing one PostgreSQL database, each with its own store (connection pool) and
//                    its own fake links to the same agents, as two kasm-servers have.
//
// Every loop is bounded in count and time; all traffic is loopback. SQLite runs in a temporary
// directory; PostgreSQL cases need KASM_BENCH_POSTGRES_URL, an admin URL in which each case creates
// a scratch database of its own and drops it at the end.

#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

#include "bench_util.hpp"
#include "kasm/kasm.hpp"
#include "kasm/manager/manager.hpp"
#include "kasm/store/postgres_store.hpp"
#include "kasm/store/sqlite_store.hpp"
#include "unit/fake_agent_link.hpp"

namespace {

using namespace kasm;
using Seconds = std::chrono::duration<double>;

// A store that counts what the manager asks of it: reads, writes, rows listed, and the
// compare-and-set races it loses, by the row that moved. Store calls per operation, and where two
// managers collide, come from here.
class CountingStore final : public spi::Store {
 public:
  struct Calls {
    std::int64_t reads = 0, writes = 0, rows_listed = 0, lost_on_counter = 0, lost_on_agent = 0, lost_other = 0;
  };

  explicit CountingStore(std::unique_ptr<spi::Store> inner) : inner_(std::move(inner)) {}

  std::string_view backendName() const override { return inner_->backendName(); }
  std::int32_t schemaVersion() const override { return inner_->schemaVersion(); }
  Result<spi::Record> get(spi::Table table, std::string_view id) override {
    ++reads_;
    return inner_->get(table, id);
  }
  Result<std::vector<spi::Record>> list(spi::Table table, const spi::Query& query) override {
    ++reads_;
    auto rows = inner_->list(table, query);
    if (rows.ok()) rows_listed_ += static_cast<std::int64_t>(rows->size());
    return rows;
  }
  Result<std::int64_t> count(spi::Table table, const spi::Query& query) override {
    ++reads_;
    return inner_->count(table, query);
  }
  Result<std::vector<std::int64_t>> apply(std::span<const spi::Mutation> mutations) override {
    ++writes_;
    auto applied = inner_->apply(mutations);
    if (!applied.ok() && applied.error().code() == ErrorCode::kAborted) {
      // The stores name the stale row: "<table> '<id>' changed since version ...".
      const std::string& why = applied.error().message();
      if (why.find("'license_sessions_in_use'") != std::string::npos)
        ++lost_on_counter_;
      else if (why.rfind("agents '", 0) == 0)
        ++lost_on_agent_;
      else
        ++lost_other_;
    }
    return applied;
  }
  Result<void> ping() override { return inner_->ping(); }

  Calls calls() const {
    return {reads_.load(),           writes_.load(),        rows_listed_.load(),
            lost_on_counter_.load(), lost_on_agent_.load(), lost_other_.load()};
  }

 private:
  std::unique_ptr<spi::Store> inner_;
  std::atomic<std::int64_t> reads_{0}, writes_{0}, rows_listed_{0}, lost_on_counter_{0}, lost_on_agent_{0},
      lost_other_{0};
};

CountingStore::Calls operator-(const CountingStore::Calls& a, const CountingStore::Calls& b) {
  return {a.reads - b.reads,
          a.writes - b.writes,
          a.rows_listed - b.rows_listed,
          a.lost_on_counter - b.lost_on_counter,
          a.lost_on_agent - b.lost_on_agent,
          a.lost_other - b.lost_other};
}

CountingStore::Calls operator+(const CountingStore::Calls& a, const CountingStore::Calls& b) {
  return {a.reads + b.reads,
          a.writes + b.writes,
          a.rows_listed + b.rows_listed,
          a.lost_on_counter + b.lost_on_counter,
          a.lost_on_agent + b.lost_on_agent,
          a.lost_other + b.lost_other};
}

// One benchmark's database: a SQLite file in a temporary directory, or a PostgreSQL database
// created through KASM_BENCH_POSTGRES_URL. Both are removed when this is destroyed, so it must
// outlive the stores opened on it.
class ScratchDatabase {
 public:
  static Result<std::unique_ptr<ScratchDatabase>> create(const std::string& backend) {
    static std::atomic<int> serial{0};
    const std::string name =
        "kasm_bench_scale_" + std::to_string(::getpid()) + "_" + std::to_string(serial.fetch_add(1));
    auto db = std::unique_ptr<ScratchDatabase>(new ScratchDatabase());
    db->name_ = name;
    if (backend == "sqlite") {
      db->dir_ = std::filesystem::temp_directory_path() / name;
      std::filesystem::remove_all(db->dir_);
      return db;
    }
    const char* url = std::getenv("KASM_BENCH_POSTGRES_URL");
    if (!url) return unavailable("KASM_BENCH_POSTGRES_URL not set");
    db->admin_url_ = url;
    try {
      pqxx::connection c(db->admin_url_);
      pqxx::nontransaction t(c);
      t.exec("CREATE DATABASE " + name);
    } catch (const std::exception& e) {
      return unavailable(e.what());
    }
    const auto& u = db->admin_url_;
    db->url_ = u.substr(0, u.find('/', u.find("://") + 3)) + "/" + name;
    return db;
  }

  ~ScratchDatabase() {
    if (!postgres()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
      return;
    }
    try {
      pqxx::connection c(admin_url_);
      pqxx::nontransaction t(c);
      t.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_scaleout: could not drop database %s: %s\n", name_.c_str(), e.what());
    }
  }

  bool postgres() const { return !url_.empty(); }

  // A new store on this database. For PostgreSQL each has its own pool of `pool_size` connections,
  // as each kasm-server has.
  Result<std::unique_ptr<CountingStore>> open(int pool_size = 8) {
    auto store = postgres() ? openPostgresStore({.url = url_, .pool_size = pool_size})
                            : openSqliteStore({.path = (dir_ / "kasm.db").string()});
    if (!store.ok()) return store.error();
    return std::make_unique<CountingStore>(std::move(store).value());
  }

  // CPU seconds (user + system) of the server backends connected to this database now, read from
  // /proc: the server runs on this machine. 10 ms ticks. Zero for SQLite, which has no server.
  double serverCpuSeconds() const {
    if (!postgres()) return 0;
    std::vector<int> pids;
    try {
      pqxx::connection c(admin_url_);
      pqxx::nontransaction t(c);
      for (const auto& row : t.exec("SELECT pid FROM pg_stat_activity WHERE datname = " + t.quote(name_))) {
        pids.push_back(row[0].as<int>());
      }
    } catch (const std::exception&) {
      return 0;
    }
    double total = 0;
    for (int pid : pids) {
      if (auto stat = bench::readProcStat(pid)) total += stat->cpu_seconds;
    }
    return total;
  }

 private:
  ScratchDatabase() = default;
  std::string name_;
  std::filesystem::path dir_;
  std::string admin_url_;
  std::string url_;
};

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

const ZoneId kZone("east");
const WorkspaceId kDesktop("desktop");

// The catalogue every case shares: zone "east", a one-core desktop workspace, and a group "all"
// with the given per-user session limit (0: none).
Result<void> seedCatalogue(Manager& m, spi::Store& store, std::int32_t max_sessions_per_user) {
  Zone z;
  z.id = kZone;
  z.name = "East";
  KASM_RETURN_IF_ERROR(m.upsertZone(z));
  Workspace w;
  w.id = kDesktop;
  w.friendly_name = "Desktop";
  w.image = "desktop:1";
  w.resources = Resources::fromCores(1, Resources::kGiB);
  KASM_RETURN_IF_ERROR(m.upsertWorkspace(w));
  Group g;
  g.id = GroupId("all");
  g.name = "All";
  g.settings.max_sessions_per_user = max_sessions_per_user;
  Repository repo(store);
  KASM_RETURN_IF_ERROR(repo.insert(g));
  return {};
}

Result<void> addUser(spi::Store& store, const std::string& id, const std::string& group = "all") {
  User u;
  u.id = UserId(id);
  u.username = id;
  u.group_ids = {GroupId(group)};
  Repository repo(store);
  KASM_RETURN_IF_ERROR(repo.insert(u));
  return {};
}

// What an agent of a 64-core host with three images pulled reports.
AgentCheckIn checkInOf(const std::string& id, const std::string& token, double cpu_utilization) {
  return AgentCheckIn{AgentId(id),
                      token,
                      Resources::fromCores(64, 256 * Resources::kGiB),
                      cpu_utilization,
                      std::int64_t{40} * Resources::kGiB,
                      {"desktop:1", "kasm/chrome:1.16.0", "kasm/terminal:1.16.0"},
                      "bench"};
}

// Registers agent `id` and checks it in once (pending -> ok). Returns its token.
Result<std::string> addAgent(Manager& m, const std::string& id) {
  Agent a;
  a.id = AgentId(id);
  a.hostname = id;
  a.zone_id = kZone;
  KASM_ASSIGN_OR_RETURN(auto reg, m.registerAgent(a));
  KASM_RETURN_IF_ERROR(m.checkIn(checkInOf(id, reg.token, 0.1)));
  return reg.token;
}

// Ends the benchmark with the error of a failed setup step (a Result of any type).
#define BENCH_CHECK(expr)                                           \
  do {                                                              \
    if (const auto& bench_result = (expr); !bench_result.ok()) {    \
      state.SkipWithError(bench_result.error().toString().c_str()); \
      return;                                                       \
    }                                                               \
  } while (0)

// ---- 1. Agent check-ins --------------------------------------------------------------------------

void BM_CheckIn(benchmark::State& state, std::string backend) {
  constexpr int kAgents = 10'000;
  constexpr int kMaxCheckIns = 30'000;  // Three rounds of every agent (a write interval's worth), or kBudget.
  constexpr Seconds kBudget{30};
  auto db = ScratchDatabase::create(backend);
  BENCH_CHECK(db);
  auto store = (*db)->open(4);
  BENCH_CHECK(store);
  // The agents' clock: each round of check-ins comes 5 s after the previous one, as at a 5 s
  // period, so the manager writes an unchanged report one time in three (checkin_write_interval,
  // 15 s) as it does for real agents.
  ManualClock clock(SystemClock().now());
  SeededRandom random(3);
  Manager m(**store, clock, random);
  BENCH_CHECK(m.start());
  BENCH_CHECK(seedCatalogue(m, **store, 0));
  std::vector<std::string> tokens;
  for (int i = 0; i < kAgents; ++i) {
    auto token = addAgent(m, "agent" + std::to_string(i));
    BENCH_CHECK(token);
    tokens.push_back(std::move(token).value());
  }

  int done = 0, errors = 0;
  double wall = 0, cpu = 0, server_cpu = 0;
  CountingStore::Calls calls;
  for (auto _ : state) {
    const auto calls_before = (*store)->calls();
    const double server_before = (*db)->serverCpuSeconds();
    const double cpu_before = bench::processCpuSeconds();
    const auto start = std::chrono::steady_clock::now();
    for (; done < kMaxCheckIns; ++done) {
      if (done % 1000 == 0 && std::chrono::steady_clock::now() - start > kBudget) break;
      const int agent = done % kAgents;
      if (agent == 0) clock.advance(std::chrono::seconds(5));
      // The utilisation moves, as a real agent's does (shown, never acted on: it alone does not
      // make a write).
      const double utilisation = 0.05 + 0.01 * (done % 50);
      if (!m.checkIn(checkInOf("agent" + std::to_string(agent), tokens[agent], utilisation)).ok()) ++errors;
    }
    wall = Seconds(std::chrono::steady_clock::now() - start).count();
    cpu = bench::processCpuSeconds() - cpu_before;
    server_cpu = (*db)->serverCpuSeconds() - server_before;
    calls = (*store)->calls() - calls_before;
  }
  const double n = std::max(1, done);
  const double per_checkin = (cpu + server_cpu) / n;
  state.counters["checkins"] = done;
  state.counters["checkins_per_s"] = done / wall;
  state.counters["cpu_us_per_checkin"] = 1e6 * cpu / n;
  state.counters["server_cpu_us_per_checkin"] = 1e6 * server_cpu / n;
  state.counters["checkins_per_cpu_s"] = per_checkin > 0 ? 1.0 / per_checkin : 0;
  // 10,000 agents checking in every 5 s are 2,000 check-ins a second.
  state.counters["pct_core_10k_agents_5s"] = 100.0 * per_checkin * (kAgents / 5.0);
  state.counters["store_calls_per_checkin"] = static_cast<double>(calls.reads + calls.writes) / n;
  state.counters["writes_per_checkin"] = static_cast<double>(calls.writes) / n;
  state.counters["errors"] = errors;
}

// ---- 2. Staged-session claims --------------------------------------------------------------------

// Arguments: the pool's size, and how many sessions of the same workspace already run (users'
// sessions launched cold before the pool existed).
void BM_StagedClaim(benchmark::State& state, std::string backend) {
  const int staged = static_cast<int>(state.range(0));
  const int running = static_cast<int>(state.range(1));
  constexpr int kAgents = 20;  // 64 cores each: room for 1,280 one-core sessions.
  constexpr int kClaimers = 20;
  constexpr int kMaxClaims = 300;
  constexpr Seconds kBudget{30};
  auto db = ScratchDatabase::create(backend);
  BENCH_CHECK(db);
  auto store = (*db)->open(4);
  BENCH_CHECK(store);
  SystemClock clock;
  SeededRandom random(3);
  ManagerOptions options;
  options.license = license::LicensePolicy::unlimited();  // Staging is a licensed feature.
  // The agents check in once; tick() must not find them missing while the claims run.
  options.agent_missing_after = std::chrono::hours(1);
  options.agent_dead_after = std::chrono::hours(2);
  Manager m(**store, clock, random, options);
  BENCH_CHECK(m.start());
  BENCH_CHECK(seedCatalogue(m, **store, 2));
  std::vector<std::shared_ptr<testing::FakeAgentLink>> links;
  for (int i = 0; i < kAgents; ++i) {
    links.push_back(std::make_shared<testing::FakeAgentLink>());
    m.attachAgentLink(AgentId("agent" + std::to_string(i)), links.back());
    BENCH_CHECK(addAgent(m, "agent" + std::to_string(i)));
  }
  for (int i = 0; i < kClaimers; ++i) BENCH_CHECK(addUser(**store, "claimer" + std::to_string(i)));
  Group bulk;
  bulk.id = GroupId("bulk");
  bulk.name = "Bulk";
  bulk.settings.max_sessions_per_user = 0;
  BENCH_CHECK(Repository(**store).insert(bulk));
  BENCH_CHECK(addUser(**store, "bulk", "bulk"));
  for (int i = 0; i < running; ++i) BENCH_CHECK(m.requestSession(SessionRequest{UserId("bulk"), kDesktop, kZone, {}}));
  StagingConfig cfg;
  cfg.id = StagingConfigId("desktops");
  cfg.workspace_id = kDesktop;
  cfg.zone_id = kZone;
  cfg.desired = staged;
  BENCH_CHECK(Repository(**store).insert(cfg));
  auto filled = m.tick();
  BENCH_CHECK(filled);
  if (filled->staged_launched != staged) {
    state.SkipWithError("the staging pool did not fill");
    return;
  }
  auto provisions = [&] {
    int n = 0;
    for (const auto& l : links) n += l->provision_calls;
    return n;
  };

  std::vector<double> latencies_ms, tick_ms;
  int cold = 0, errors = 0;
  std::string first_error;
  auto fail = [&](std::string why) {
    if (errors++ == 0) first_error = std::move(why);
  };
  CountingStore::Calls claim_calls, tick_calls;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kMaxClaims && std::chrono::steady_clock::now() - start < kBudget; ++i) {
      const int provisions_before = provisions();
      const auto calls_before = (*store)->calls();
      const auto t0 = std::chrono::steady_clock::now();
      auto s = m.requestSession(SessionRequest{UserId("claimer" + std::to_string(i % kClaimers)), kDesktop, kZone, {}});
      const auto t1 = std::chrono::steady_clock::now();
      claim_calls = claim_calls + ((*store)->calls() - calls_before);
      if (!s.ok()) {
        fail("claim: " + s.error().toString());
        continue;
      }
      latencies_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      if (provisions() != provisions_before) ++cold;  // Not served from the pool.
      // Untimed: the user leaves, and the pool is refilled.
      if (auto d = m.destroySession(s->id); !d.ok()) fail("destroy: " + d.error().toString());
      const auto t2 = std::chrono::steady_clock::now();
      const auto tick_before = (*store)->calls();
      auto t = m.tick();
      tick_calls = tick_calls + ((*store)->calls() - tick_before);
      tick_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t2).count());
      if (!t.ok()) fail("tick: " + t.error().toString());
      if (t.ok() && t->staged_launched != 1) fail("tick launched " + std::to_string(t->staged_launched));
    }
  }
  const double n = std::max<std::size_t>(1, latencies_ms.size());
  state.counters["claims"] = static_cast<double>(latencies_ms.size());
  state.counters["p50_ms"] = percentile(latencies_ms, 0.50);
  state.counters["p99_ms"] = percentile(latencies_ms, 0.99);
  state.counters["max_ms"] = percentile(latencies_ms, 1.0);
  state.counters["store_calls_per_claim"] = static_cast<double>(claim_calls.reads + claim_calls.writes) / n;
  state.counters["rows_read_per_claim"] = static_cast<double>(claim_calls.rows_listed) / n;
  state.counters["tick_p50_ms"] = percentile(tick_ms, 0.50);
  state.counters["store_calls_per_tick"] = static_cast<double>(tick_calls.reads + tick_calls.writes) / n;
  state.counters["cold"] = cold;
  state.counters["errors"] = errors;
  if (!first_error.empty()) state.SetLabel(first_error.substr(0, 160));
}

// ---- 3. Launches with one or two managers --------------------------------------------------------

// Arguments: managers (1 or 2), threads (split evenly over the managers).
void BM_Launches(benchmark::State& state) {
  const int managers = static_cast<int>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  constexpr int kAgents = 100;
  constexpr int kPerThread = 200;
  constexpr int kWarmUpPerThread = 5;
  constexpr Seconds kBudget{20};
  auto db = ScratchDatabase::create("postgres");
  BENCH_CHECK(db);
  SystemClock clock;
  ManagerOptions options;
  options.license = license::LicensePolicy::unlimited();  // The community edition allows 5 sessions.
  std::vector<std::unique_ptr<CountingStore>> stores;
  std::vector<std::unique_ptr<SeededRandom>> randoms;
  std::vector<std::unique_ptr<Manager>> ms;
  for (int i = 0; i < managers; ++i) {
    auto store = (*db)->open(8);
    BENCH_CHECK(store);
    stores.push_back(std::move(store).value());
    randoms.push_back(std::make_unique<SeededRandom>(3 + i));
    ms.push_back(std::make_unique<Manager>(*stores.back(), clock, *randoms.back(), options));
    if (i == 0) {
      // The first manager sets the installation up; the second starts on what it stored.
      BENCH_CHECK(ms[0]->start());
      BENCH_CHECK(seedCatalogue(*ms[0], *stores[0], 0));
      for (int a = 0; a < kAgents; ++a) BENCH_CHECK(addAgent(*ms[0], "agent" + std::to_string(a)));
      for (int t = 0; t < threads; ++t) BENCH_CHECK(addUser(*stores[0], "user" + std::to_string(t)));
    } else {
      BENCH_CHECK(ms[i]->start());
    }
    // Each manager's own links to every agent: sessions it launches are provisioned through them.
    for (int a = 0; a < kAgents; ++a) {
      ms[i]->attachAgentLink(AgentId("agent" + std::to_string(a)), std::make_shared<testing::FakeAgentLink>());
    }
  }

  std::atomic<int> completed{0}, launch_errors{0}, destroy_errors{0};
  std::string first_error;
  std::mutex first_error_mu;
  auto run = [&](int per_thread, Seconds budget) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        Manager& m = *ms[t % managers];
        const UserId user("user" + std::to_string(t));
        for (int i = 0; i < per_thread && std::chrono::steady_clock::now() - start < budget; ++i) {
          auto s = m.requestSession(SessionRequest{user, kDesktop, kZone, {}});
          auto d = s.ok() ? m.destroySession(s->id) : Result<Session>(s.error());
          if (d.ok()) {
            ++completed;
            continue;
          }
          ++(s.ok() ? destroy_errors : launch_errors);
          std::lock_guard lock(first_error_mu);
          if (first_error.empty()) first_error = (s.ok() ? "destroy: " : "launch: ") + d.error().toString();
        }
      });
    }
    for (auto& th : pool) th.join();
    return Seconds(std::chrono::steady_clock::now() - start).count();
  };
  (void)run(kWarmUpPerThread, kBudget);  // Opens the pools' connections; not counted.
  completed = 0;
  launch_errors = 0;
  destroy_errors = 0;
  first_error.clear();

  double wall = 0, cpu = 0, server_cpu = 0;
  CountingStore::Calls calls;
  for (auto _ : state) {
    CountingStore::Calls before;
    for (const auto& s : stores) before = before + s->calls();
    const double server_before = (*db)->serverCpuSeconds();
    const double cpu_before = bench::processCpuSeconds();
    wall = run(kPerThread, kBudget);
    cpu = bench::processCpuSeconds() - cpu_before;
    server_cpu = (*db)->serverCpuSeconds() - server_before;
    for (const auto& s : stores) calls = calls + s->calls();
    calls = calls - before;
  }
  const double n = std::max(1, completed.load());
  state.counters["sessions"] = completed.load();
  state.counters["sessions_per_s"] = completed.load() / wall;
  state.counters["cpu_ms_per_session"] = 1e3 * cpu / n;
  state.counters["server_cpu_ms_per_session"] = 1e3 * server_cpu / n;
  state.counters["store_calls_per_session"] = static_cast<double>(calls.reads + calls.writes) / n;
  state.counters["lost_cas_counter_per_session"] = static_cast<double>(calls.lost_on_counter) / n;
  state.counters["lost_cas_agent_per_session"] = static_cast<double>(calls.lost_on_agent) / n;
  state.counters["lost_cas_other_per_session"] = static_cast<double>(calls.lost_other) / n;
  state.counters["launch_errors"] = launch_errors.load();
  state.counters["destroy_errors"] = destroy_errors.load();
  if (!first_error.empty()) state.SetLabel(first_error.substr(0, 120));
}

}  // namespace

BENCHMARK_CAPTURE(BM_CheckIn, sqlite, std::string("sqlite"))
    ->Iterations(1)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_CheckIn, postgres, std::string("postgres"))
    ->Iterations(1)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_StagedClaim, sqlite, std::string("sqlite"))
    ->ArgNames({"staged", "running"})
    ->Args({10, 0})
    ->Args({10, 1000})
    ->Iterations(1)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_StagedClaim, postgres, std::string("postgres"))
    ->ArgNames({"staged", "running"})
    ->Args({10, 0})
    ->Args({10, 1000})
    ->Iterations(1)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kSecond);
BENCHMARK(BM_Launches)
    ->ArgNames({"managers", "threads"})
    ->Args({1, 1})
    ->Args({1, 4})
    ->Args({2, 4})
    ->Args({1, 8})
    ->Args({2, 8})
    ->Iterations(1)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kSecond);
