// One conformance suite for every spi::Store implementation: the in-memory double, SQLite and
// PostgreSQL must behave the same way, including under concurrent writers.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "kasm/kasm.hpp"
#include "kasm/store/postgres_store.hpp"
#include "kasm/store/sqlite_store.hpp"
#include "support/services.hpp"

namespace kasm {
namespace {

using spi::Mutation;
using spi::Query;
using spi::Record;
using spi::Table;

// A second handle on the memory store: the memory "database" is the object itself, so a second
// instance on it is a view that forwards every call.
class SharedMemoryView final : public spi::Store {
 public:
  explicit SharedMemoryView(spi::Store& s) : s_(s) {}
  std::string_view backendName() const override { return s_.backendName(); }
  std::int32_t schemaVersion() const override { return s_.schemaVersion(); }
  Result<Record> get(Table t, std::string_view id) override { return s_.get(t, id); }
  Result<std::vector<Record>> list(Table t, const Query& q) override { return s_.list(t, q); }
  Result<std::int64_t> count(Table t, const Query& q) override { return s_.count(t, q); }
  Result<std::vector<std::int64_t>> apply(std::span<const Mutation> m) override { return s_.apply(m); }
  Result<void> ping() override { return s_.ping(); }

 private:
  spi::Store& s_;
};

struct MemoryBackend {
  static constexpr const char* kName = "Memory";
  spi::Store* first = nullptr;
  Result<std::unique_ptr<spi::Store>> open(std::string*) {
    auto s = makeMemoryStore();
    first = s.get();
    return s;
  }
  Result<std::unique_ptr<spi::Store>> openAnother() {
    return std::unique_ptr<spi::Store>(std::make_unique<SharedMemoryView>(*first));
  }
};

struct SqliteBackend {
  static constexpr const char* kName = "Sqlite";
  std::filesystem::path dir;
  Result<std::unique_ptr<spi::Store>> open(std::string*) {
    dir = std::filesystem::temp_directory_path() /
          ("kasm-conf-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir);
    return openSqliteStore({.path = (dir / "kasm.db").string()});
  }
  // Another connection on the same file, as a second process (the CLI, a second server) opens it.
  Result<std::unique_ptr<spi::Store>> openAnother() { return openSqliteStore({.path = (dir / "kasm.db").string()}); }
  ~SqliteBackend() {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
  static inline std::atomic<int> counter{0};
};

struct PostgresBackend {
  static constexpr const char* kName = "Postgres";
  std::optional<testing::ScratchPostgresDatabase> db;
  Result<std::unique_ptr<spi::Store>> open(std::string* why_not) {
    db = testing::ScratchPostgresDatabase::create(why_not);
    if (!db) return unavailable(*why_not);
    return openPostgresStore({.url = db->url(), .pool_size = 4});
  }
  Result<std::unique_ptr<spi::Store>> openAnother() { return openPostgresStore({.url = db->url(), .pool_size = 4}); }
};

template <class Backend>
class StoreConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    auto s = backend_.open(&why);
    if (!s.ok()) {
      if (!why.empty()) KASM_SKIP_OR_FAIL(why);
      FAIL() << s.error().toString();
    }
    store_ = std::move(s).value();
  }

  Record rec(std::string id, std::string data, std::map<std::string, std::string> cols = {}) {
    return Record{std::move(id), 0, std::move(data), std::move(cols)};
  }

  Backend backend_;
  std::unique_ptr<spi::Store> store_;
};

struct BackendNames {
  template <class T>
  static std::string GetName(int) {
    return T::kName;
  }
};
using Backends = ::testing::Types<MemoryBackend, SqliteBackend, PostgresBackend>;
TYPED_TEST_SUITE(StoreConformance, Backends, BackendNames);

TYPED_TEST(StoreConformance, ReportsCurrentSchemaAndAnswersPing) {
  EXPECT_EQ(this->store_->schemaVersion(), spi::kSchemaVersion);
  EXPECT_TRUE(this->store_->ping().ok());
}

TYPED_TEST(StoreConformance, InsertThenGetRoundTripsEveryField) {
  auto v =
      this->store_->insert(Table::kSessions, this->rec("s1", R"({"a":1})", {{"user_id", "u1"}, {"state", "running"}}));
  ASSERT_TRUE(v.ok()) << v.error().toString();
  EXPECT_EQ(*v, 1);
  auto got = this->store_->get(Table::kSessions, "s1");
  ASSERT_TRUE(got.ok()) << got.error().toString();
  EXPECT_EQ(got->id, "s1");
  EXPECT_EQ(got->version, 1);
  auto data = fromJson<Resources>(got->data);  // Any JSON object parses; fields are ignored.
  EXPECT_TRUE(data.ok());
  EXPECT_EQ(got->columns.at("user_id"), "u1");
  EXPECT_EQ(got->columns.at("state"), "running");
  EXPECT_EQ(got->columns.at("agent_id"), "");  // Missing columns read back as "".
}

TYPED_TEST(StoreConformance, GetOfUnknownIdIsNotFound) {
  auto got = this->store_->get(Table::kAgents, "nope");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(got.error().message().find("nope"), std::string::npos);
}

TYPED_TEST(StoreConformance, DuplicateIdIsAlreadyExistsAndKeepsTheFirst) {
  ASSERT_TRUE(this->store_->insert(Table::kZones, this->rec("z1", R"({"n":1})", {{"name", "east"}})).ok());
  auto dup = this->store_->insert(Table::kZones, this->rec("z1", R"({"n":2})", {{"name", "west"}}));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(this->store_->get(Table::kZones, "z1")->columns.at("name"), "east");
}

TYPED_TEST(StoreConformance, UniqueColumnsRejectClashesButAllowEmpty) {
  ASSERT_TRUE(this->store_->insert(Table::kUsers, this->rec("u1", "{}", {{"username", "alice"}})).ok());
  auto clash = this->store_->insert(Table::kUsers, this->rec("u2", "{}", {{"username", "alice"}}));
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_TRUE(this->store_->insert(Table::kUsers, this->rec("u3", "{}", {})).ok());
  EXPECT_TRUE(this->store_->insert(Table::kUsers, this->rec("u4", "{}", {})).ok());
  // Renaming onto a taken name is refused too.
  auto rename = this->store_->update(Table::kUsers, Record{"u3", 1, "{}", {{"username", "alice"}}});
  ASSERT_FALSE(rename.ok());
  EXPECT_EQ(rename.error().code(), ErrorCode::kAlreadyExists);
}

// Sessions' launch_key (an idempotency key's hash) is unique among the sessions that have one, on
// insert and on update (a staged session claimed with a key), also when two instances on one
// database race to write it: exactly one wins, the others get AlreadyExists and change nothing.
TYPED_TEST(StoreConformance, SessionLaunchKeysAreUnique) {
  spi::Store& s = *this->store_;
  ASSERT_TRUE(s.insert(Table::kSessions, this->rec("s1", "{}", {{"user_id", "u1"}, {"launch_key", "k1"}})).ok());
  auto clash = s.insert(Table::kSessions, this->rec("s2", "{}", {{"user_id", "u2"}, {"launch_key", "k1"}}));
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_FALSE(s.get(Table::kSessions, "s2").ok());
  for (const char* id : {"s3", "s4"}) EXPECT_TRUE(s.insert(Table::kSessions, this->rec(id, "{}", {})).ok());
  auto claim = s.update(Table::kSessions, Record{"s3", 1, "{}", {{"launch_key", "k1"}}});
  ASSERT_FALSE(claim.ok());
  EXPECT_EQ(claim.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(s.get(Table::kSessions, "s3")->version, 1);
  ASSERT_TRUE(s.update(Table::kSessions, Record{"s3", 1, "{}", {{"launch_key", "k3"}}}).ok());
  auto found = s.list(Table::kSessions, Query().where("launch_key", "k1"));
  ASSERT_TRUE(found.ok()) << found.error().toString();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front().id, "s1");

  auto other = this->backend_.openAnother();
  ASSERT_TRUE(other.ok()) << other.error().toString();
  constexpr int kThreads = 8;
  for (int round = 0; round < 5; ++round) {
    const std::string key = "race" + std::to_string(round);
    std::atomic<int> winners{0}, duplicates{0}, other_errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        spi::Store& mine = t % 2 ? **other : s;
        const std::string id = key + "-" + std::to_string(t);
        // The row and something else in one batch, as a launch writes its session with the agent.
        std::vector<Mutation> batch{
            {Mutation::Kind::kInsert, Table::kSessions, this->rec(id, "{}", {{"launch_key", key}})},
            {Mutation::Kind::kInsert, Table::kSettings, this->rec("note-" + id, "{}")}};
        auto r = mine.apply(batch);
        if (r.ok())
          ++winners;
        else if (r.error().code() == ErrorCode::kAlreadyExists)
          ++duplicates;
        else
          ++other_errors;
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(winners.load(), 1) << "round " << round;
    EXPECT_EQ(duplicates.load(), kThreads - 1);
    EXPECT_EQ(other_errors.load(), 0);
    EXPECT_EQ(*s.count(Table::kSessions, Query().where("launch_key", key)), 1);
    EXPECT_EQ(*s.count(Table::kSettings, Query()), round + 1) << "a losing batch leaves nothing";
  }
}

TYPED_TEST(StoreConformance, UpdateIsCompareAndSet) {
  ASSERT_TRUE(this->store_->insert(Table::kAgents, this->rec("a1", R"({"v":1})", {{"zone_id", "z"}})).ok());
  auto v2 = this->store_->update(Table::kAgents, Record{"a1", 1, R"({"v":2})", {{"zone_id", "z"}}});
  ASSERT_TRUE(v2.ok()) << v2.error().toString();
  EXPECT_EQ(*v2, 2);
  auto stale = this->store_->update(Table::kAgents, Record{"a1", 1, R"({"v":3})", {{"zone_id", "z"}}});
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code(), ErrorCode::kAborted);
  auto got = this->store_->get(Table::kAgents, "a1");
  EXPECT_EQ(got->version, 2);
  EXPECT_NE(got->data.find('2'), std::string::npos);
  auto missing = this->store_->update(Table::kAgents, Record{"zz", 1, "{}", {}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TYPED_TEST(StoreConformance, RemoveChecksVersionWhenAsked) {
  ASSERT_TRUE(this->store_->insert(Table::kWorkspaces, this->rec("w1", "{}")).ok());
  auto stale = this->store_->remove(Table::kWorkspaces, "w1", 7);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code(), ErrorCode::kAborted);
  EXPECT_TRUE(this->store_->remove(Table::kWorkspaces, "w1", 1).ok());
  EXPECT_EQ(this->store_->get(Table::kWorkspaces, "w1").error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(this->store_->insert(Table::kWorkspaces, this->rec("w2", "{}")).ok());
  EXPECT_TRUE(this->store_->remove(Table::kWorkspaces, "w2", std::nullopt).ok());
  auto gone = this->store_->remove(Table::kWorkspaces, "w2", std::nullopt);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
}

TYPED_TEST(StoreConformance, ListFiltersOrdersAndPages) {
  for (int i = 0; i < 10; ++i) {
    const std::string id = "s" + std::to_string(i);
    ASSERT_TRUE(this->store_
                    ->insert(Table::kSessions, this->rec(id, "{}",
                                                         {{"user_id", i % 2 ? "bob" : "alice"},
                                                          {"state", i < 6 ? "running" : "stopped"}}))
                    .ok());
  }
  auto alice_running =
      this->store_->list(Table::kSessions, Query().where("user_id", "alice").where("state", "running"));
  ASSERT_TRUE(alice_running.ok()) << alice_running.error().toString();
  ASSERT_EQ(alice_running->size(), 3u);
  EXPECT_EQ((*alice_running)[0].id, "s0");
  EXPECT_EQ((*alice_running)[2].id, "s4");
  EXPECT_EQ(*this->store_->count(Table::kSessions, Query().where("state", "stopped")), 4);

  Query page;
  page.limit = 4;
  auto p1 = this->store_->list(Table::kSessions, page);
  ASSERT_EQ(p1->size(), 4u);
  page.after_id = p1->back().id;
  auto p2 = this->store_->list(Table::kSessions, page);
  ASSERT_EQ(p2->size(), 4u);
  EXPECT_EQ(p2->front().id, "s4");
  page.after_id = p2->back().id;
  EXPECT_EQ(this->store_->list(Table::kSessions, page)->size(), 2u);

  auto in = this->store_->list(Table::kSessions, Query().whereIn("id", {"s1", "s3", "nope"}));
  ASSERT_EQ(in->size(), 2u);
  EXPECT_TRUE(this->store_->list(Table::kSessions, Query().whereIn("state", {}))->empty());
}

TYPED_TEST(StoreConformance, UnknownColumnsAndEmptyIdsAreInvalidArgument) {
  auto bad_rec = this->store_->insert(Table::kSessions, this->rec("s1", "{}", {{"password", "x"}}));
  ASSERT_FALSE(bad_rec.ok());
  EXPECT_EQ(bad_rec.error().code(), ErrorCode::kInvalidArgument);
  auto bad_query = this->store_->list(Table::kSessions, Query().where("1=1; DROP TABLE sessions; --", "x"));
  ASSERT_FALSE(bad_query.ok());
  EXPECT_EQ(bad_query.error().code(), ErrorCode::kInvalidArgument);
  auto empty = this->store_->insert(Table::kSessions, this->rec("", "{}"));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
}

TYPED_TEST(StoreConformance, ValuesAreParametersNotSql) {
  const std::string evil = "x'); DELETE FROM sessions; --\"\\ \xc3\xa9";
  ASSERT_TRUE(this->store_->insert(Table::kSessions, this->rec("s1", "{}", {{"user_id", "keep"}})).ok());
  ASSERT_TRUE(this->store_->insert(Table::kSessions, this->rec("s2", "{}", {{"user_id", evil}})).ok());
  auto found = this->store_->list(Table::kSessions, Query().where("user_id", evil));
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front().columns.at("user_id"), evil);
  EXPECT_EQ(*this->store_->count(Table::kSessions, {}), 2);
}

TYPED_TEST(StoreConformance, LargeDocumentsRoundTrip) {
  Workspace w;
  w.id = WorkspaceId("big");
  w.description = std::string(512 * 1024, 'd');
  const std::string doc = toJson(w);
  ASSERT_TRUE(this->store_->insert(Table::kWorkspaces, this->rec("big", doc)).ok());
  auto back = fromJson<Workspace>(this->store_->get(Table::kWorkspaces, "big")->data);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->description.size(), 512u * 1024);
}

TYPED_TEST(StoreConformance, BatchesAreAllOrNothing) {
  ASSERT_TRUE(this->store_->insert(Table::kAgents, this->rec("a1", "{}")).ok());
  std::vector<Mutation> batch;
  batch.push_back(Mutation{Mutation::Kind::kInsert, Table::kSessions, this->rec("s1", "{}"), true});
  batch.push_back(Mutation{Mutation::Kind::kUpdate, Table::kAgents, Record{"a1", 5, "{}", {}}, true});  // Stale.
  auto r = this->store_->apply(batch);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kAborted);
  EXPECT_EQ(this->store_->get(Table::kSessions, "s1").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(this->store_->get(Table::kAgents, "a1")->version, 1);

  batch[1].record.version = 1;
  auto ok = this->store_->apply(batch);
  ASSERT_TRUE(ok.ok()) << ok.error().toString();
  EXPECT_EQ(*ok, (std::vector<std::int64_t>{1, 2}));
  EXPECT_TRUE(this->store_->get(Table::kSessions, "s1").ok());
}

TYPED_TEST(StoreConformance, SameIdInDifferentTablesIsIndependent) {
  ASSERT_TRUE(this->store_->insert(Table::kUsers, this->rec("x", "{}")).ok());
  ASSERT_TRUE(this->store_->insert(Table::kGroups, this->rec("x", "{}")).ok());
  ASSERT_TRUE(this->store_->remove(Table::kUsers, "x", std::nullopt).ok());
  EXPECT_TRUE(this->store_->get(Table::kGroups, "x").ok());
}

// Many writers race to claim the same version: exactly one wins each round.
TYPED_TEST(StoreConformance, ConcurrentClaimsHaveExactlyOneWinner) {
  ASSERT_TRUE(this->store_->insert(Table::kAgents, this->rec("a1", R"({"owner":""})")).ok());
  constexpr int kThreads = 8;
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    const auto version = this->store_->get(Table::kAgents, "a1")->version;
    std::atomic<int> winners{0}, losers{0}, other{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        auto r = this->store_->update(Table::kAgents,
                                      Record{"a1", version, R"({"owner":")" + std::to_string(t) + R"("})", {}});
        if (r.ok())
          ++winners;
        else if (r.error().code() == ErrorCode::kAborted)
          ++losers;
        else
          ++other;
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(winners.load(), 1) << "round " << round;
    EXPECT_EQ(losers.load(), kThreads - 1);
    EXPECT_EQ(other.load(), 0);
  }
  EXPECT_EQ(this->store_->get(Table::kAgents, "a1")->version, 1 + kRounds);
}

// Read-modify-write with retry never loses an update: the capacity counter ends exact.
TYPED_TEST(StoreConformance, ConcurrentReadModifyWriteLosesNothing) {
  Agent a;
  a.id = AgentId("a1");
  a.hostname = "h";
  a.zone_id = ZoneId("z");
  Repository repo(*this->store_);
  ASSERT_TRUE(repo.insert(a).ok());
  constexpr int kThreads = 6;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        for (int attempt = 0;; ++attempt) {
          auto cur = repo.get<Agent>("a1");
          if (!cur.ok()) {
            ++failures;
            break;
          }
          cur->value.reserved.millicores += 100;
          cur->value.session_count += 1;
          auto w = repo.update(cur->value, cur->version);
          if (w.ok()) break;
          if (w.error().code() != ErrorCode::kAborted || attempt > 10000) {
            ++failures;
            break;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto final_agent = repo.get<Agent>("a1");
  ASSERT_TRUE(final_agent.ok());
  EXPECT_EQ(final_agent->value.session_count, kThreads * kPerThread);
  EXPECT_EQ(final_agent->value.reserved.millicores, 100 * kThreads * kPerThread);
  EXPECT_EQ(final_agent->version, 1 + kThreads * kPerThread);
}

TYPED_TEST(StoreConformance, RepositoryRoundTripsTheModel) {
  Repository repo(*this->store_);
  ManualClock clock;
  Session s;
  s.id = SessionId("s1");
  s.user_id = UserId("u1");
  s.workspace_id = WorkspaceId("w1");
  s.agent_id = AgentId("a1");
  s.resources = Resources::fromCores(2, 2 * Resources::kGiB);
  s.created_at = clock.now();
  ASSERT_TRUE(s.transitionTo(SessionState::kProvisioning, "placed", clock.now()).ok());
  ASSERT_TRUE(repo.insert(s).ok());
  auto back = repo.get<Session>("s1");
  ASSERT_TRUE(back.ok()) << back.error().toString();
  EXPECT_EQ(back->value, s);
  auto listed = repo.list<Session>(Query().where("state", "provisioning").where("user_id", "u1"));
  ASSERT_EQ(listed->size(), 1u);

  // Validation runs before anything is written.
  Session bad = s;
  bad.id = SessionId("s2");
  bad.progress = 500;
  auto rejected = repo.insert(bad);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(repo.get<Session>("s2").error().code(), ErrorCode::kNotFound);

  // A row that is not valid JSON reads as DataLoss, not a crash.
  ASSERT_TRUE(this->store_->insert(Table::kSessions, this->rec("broken", "{\"id\": 5}")).ok());
  auto broken = repo.get<Session>("broken");
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().code(), ErrorCode::kDataLoss);
}

// Two instances on one database (two processes on one file, two servers on one PostgreSQL): what
// one commits, the other reads at its next call, even when it had read before (a read must not
// leave a snapshot open), and the other's own writes go on working.
TYPED_TEST(StoreConformance, TwoInstancesOnOneDatabaseSeeEachOthersWrites) {
  auto other = this->backend_.openAnother();
  ASSERT_TRUE(other.ok()) << other.error().toString();
  spi::Store& a = *this->store_;
  spi::Store& b = **other;
  ASSERT_TRUE(a.insert(Table::kApiKeys, this->rec("k1", "{}", {{"key", "first"}})).ok());
  // b reads first: a get that stops at its row, a list and a count.
  ASSERT_TRUE(b.get(Table::kApiKeys, "k1").ok());
  ASSERT_EQ(b.list(Table::kApiKeys, Query())->size(), 1u);
  ASSERT_EQ(*b.count(Table::kApiKeys, Query()), 1);

  ASSERT_TRUE(a.insert(Table::kApiKeys, this->rec("k2", "{}", {{"key", "scripts"}})).ok());
  auto seen = b.get(Table::kApiKeys, "k2");
  ASSERT_TRUE(seen.ok()) << "b does not see a's commit: " << seen.error().toString();
  EXPECT_EQ(b.list(Table::kApiKeys, Query())->size(), 2u);
  EXPECT_EQ(*b.count(Table::kApiKeys, Query().where("key", "scripts")), 1);

  // b's own writes still work, and a sees them.
  auto wrote = b.insert(Table::kUsers, this->rec("u1", "{}", {{"username", "bob"}}));
  ASSERT_TRUE(wrote.ok()) << wrote.error().toString();
  auto updated = b.update(Table::kApiKeys, Record{"k2", 1, R"({"x":1})", {{"key", "scripts"}}});
  ASSERT_TRUE(updated.ok()) << updated.error().toString();
  EXPECT_TRUE(a.get(Table::kUsers, "u1").ok());
  EXPECT_EQ(a.get(Table::kApiKeys, "k2")->version, 2);
  // And a, which read k2 before b changed it, can write over b's version.
  EXPECT_TRUE(a.update(Table::kApiKeys, Record{"k2", 2, R"({"x":2})", {{"key", "scripts"}}}).ok());
  EXPECT_EQ(b.get(Table::kApiKeys, "k2")->version, 3);
}

// One instance lists in a loop while the other commits: every commit succeeds, and once the
// reader's lists end, its next read sees all of them.
TYPED_TEST(StoreConformance, LongReadsInOneInstanceDoNotHoldBackTheOthersCommits) {
  auto other = this->backend_.openAnother();
  ASSERT_TRUE(other.ok()) << other.error().toString();
  spi::Store& writer = *this->store_;
  spi::Store& reader = **other;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(
        writer.insert(Table::kZones, this->rec("base" + std::to_string(i), R"({"pad":"xxxxxxxxxxxxxxxx"})")).ok());
  }
  std::atomic<bool> done{false};
  std::atomic<int> lists{0};
  std::thread t([&] {
    while (!done.load()) {
      auto l = reader.list(Table::kZones, Query());
      if (l.ok()) lists.fetch_add(1);
    }
  });
  while (lists.load() == 0) std::this_thread::yield();
  // Commits go on until the reader has finished a few more lists meanwhile (at least 50 commits,
  // at most 2,000 or 20 s): a store whose reads waited for every commit, or whose commits waited
  // for every read, would not get there. Bounded by progress rather than by timing, so a loaded
  // machine that deschedules the reader for a while does not fail it.
  const int lists_before = lists.load();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int committed = 0;
  for (int i = 0; i < 2000 && std::chrono::steady_clock::now() < until; ++i) {
    if (committed >= 50 && lists.load() >= lists_before + 3) break;
    auto r = writer.insert(Table::kZones, this->rec("new" + std::to_string(i), "{}"));
    EXPECT_TRUE(r.ok()) << r.error().toString();
    if (r.ok()) ++committed;
    std::this_thread::yield();
  }
  const int lists_during_commits = lists.load() - lists_before;
  done = true;
  t.join();
  EXPECT_GE(lists_during_commits, 3);
  EXPECT_GE(committed, 50);
  EXPECT_EQ(*reader.count(Table::kZones, Query()), 200 + committed);
  EXPECT_TRUE(reader.get(Table::kZones, "new49").ok());
}

}  // namespace
}  // namespace kasm
