// SQLite-specific behaviour beyond the conformance suite: files on disk, bad files, future schemas.

#include "kasm/store/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "kasm/kasm.hpp"

namespace kasm {
namespace {

namespace fs = std::filesystem;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kasm-sqlite-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(SqliteStoreTest, CreatesDirectoryUsesWalAndPersistsAcrossReopen) {
  const auto path = (dir_ / "nested" / "kasm.db").string();
  {
    auto store = openSqliteStore({.path = path});
    ASSERT_TRUE(store.ok()) << store.error().toString();
    Repository repo(**store);
    Zone z;
    z.id = ZoneId("east");
    z.name = "East";
    ASSERT_TRUE(repo.insert(z).ok());
  }
  EXPECT_TRUE(fs::exists(path));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);

  auto again = openSqliteStore({.path = path});
  ASSERT_TRUE(again.ok());
  Repository repo(**again);
  auto z = repo.get<Zone>("east");
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->value.name, "East");
}

TEST_F(SqliteStoreTest, CorruptFileIsDataLossAndLeftUntouched) {
  fs::create_directories(dir_);
  const auto path = (dir_ / "kasm.db").string();
  const std::string garbage(8192, 'x');
  std::ofstream(path) << garbage;
  auto store = openSqliteStore({.path = path});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code(), ErrorCode::kDataLoss);
  EXPECT_NE(store.error().message().find(path), std::string::npos);
  std::ifstream in(path);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, garbage);  // We never "repair" a user's file by overwriting it.
}

TEST_F(SqliteStoreTest, UnwritableLocationIsUnavailable) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "a-file") << "not a directory";
  // A path under a regular file cannot be created, even by root.
  auto store = openSqliteStore({.path = (dir_ / "a-file" / "kasm.db").string()});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code(), ErrorCode::kUnavailable);
}

TEST_F(SqliteStoreTest, SchemaFromTheFutureIsRefusedWithoutChanges) {
  const auto path = (dir_ / "kasm.db").string();
  { ASSERT_TRUE(openSqliteStore({.path = path}).ok()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_migrations VALUES (99, 0)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = openSqliteStore({.path = path});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(store.error().message().find("99"), std::string::npos);
  EXPECT_NE(store.error().message().find("newer"), std::string::npos);
}

// A database of schema version 1 (before session sharing and fixed servers) gains the share index
// and the sessions' server_id column on open, keeps its rows, and records version 3.
TEST_F(SqliteStoreTest, AVersionOneDatabaseIsMigratedOnOpen) {
  const auto path = (dir_ / "kasm.db").string();
  {
    auto store = openSqliteStore({.path = path});
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(Repository(**store).insert(Setting{"kept", "yes", fromUnixMillis(1)}).ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP TABLE share_index; DROP INDEX sessions_server_id_idx; DROP TABLE managers; "
                         "DROP TABLE leases; DROP TABLE autoscale_vms; DROP TABLE autoscale_decisions; "
                         "ALTER TABLE sessions DROP COLUMN server_id; DROP INDEX sessions_launch_key_uniq; "
                         "DROP INDEX sessions_launch_key_idx; ALTER TABLE sessions DROP COLUMN launch_key; "
                         "DELETE FROM schema_migrations WHERE version > 1",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = openSqliteStore({.path = path});
  ASSERT_TRUE(store.ok()) << store.error().toString();
  EXPECT_EQ((*store)->schemaVersion(), spi::kSchemaVersion);
  Repository repo(**store);
  EXPECT_EQ(repo.get<Setting>("kept")->value.value, "yes");
  // The tables of version 4 (autoscaling, scale-out) exist again.
  EXPECT_TRUE(repo.insert(Lease{"zone:z", ManagerNodeId("m1"), fromUnixMillis(5), fromUnixMillis(1), 1}).ok());
  EXPECT_TRUE(repo.list<AutoscaleVm>().ok());
  ShareIndex index{"ab12", SessionId("s1"), fromUnixMillis(1)};
  ASSERT_TRUE(repo.insert(index).ok());
  EXPECT_EQ(repo.get<ShareIndex>("ab12")->value.session_id, SessionId("s1"));
  Session s;
  s.id = SessionId("s2");
  s.user_id = UserId("u1");
  s.workspace_id = WorkspaceId("w1");
  s.server_id = ServerId("srv1");
  s.created_at = s.state_changed_at = fromUnixMillis(1);
  ASSERT_TRUE(repo.insert(s).ok());
  auto on_server = repo.list<Session>(spi::Query().where("server_id", "srv1"));
  ASSERT_TRUE(on_server.ok()) << on_server.error().toString();
  ASSERT_EQ(on_server->size(), 1u);
}

// A database of schema version 5 (before idempotent launches) gains the sessions' unique
// launch_key on open, keeps its sessions (without a key), and records version 6.
TEST_F(SqliteStoreTest, AVersionFiveDatabaseGainsUniqueLaunchKeys) {
  const auto path = (dir_ / "kasm.db").string();
  Session old;
  old.id = SessionId("old");
  old.user_id = UserId("u1");
  old.workspace_id = WorkspaceId("w1");
  old.created_at = old.state_changed_at = fromUnixMillis(1);
  {
    auto store = openSqliteStore({.path = path});
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(Repository(**store).insert(old).ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  // As version 5 left it: no column, no index, and documents without the field.
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP INDEX sessions_launch_key_uniq; DROP INDEX sessions_launch_key_idx; "
                         "ALTER TABLE sessions DROP COLUMN launch_key; "
                         "UPDATE sessions SET data = json_remove(data, '$.launch_key'); "
                         "DELETE FROM schema_migrations WHERE version > 5",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  auto store = openSqliteStore({.path = path});
  ASSERT_TRUE(store.ok()) << store.error().toString();
  EXPECT_EQ((*store)->schemaVersion(), 6);
  Repository repo(**store);
  auto kept = repo.get<Session>("old");
  ASSERT_TRUE(kept.ok()) << kept.error().toString();
  EXPECT_EQ(kept->value.launch_key, "");
  Session keyed = old;
  keyed.id = SessionId("new");
  keyed.launch_key = std::string(64, 'a');
  ASSERT_TRUE(repo.insert(keyed).ok());
  keyed.id = SessionId("twin");
  auto twin = repo.insert(keyed);
  ASSERT_FALSE(twin.ok());
  EXPECT_EQ(twin.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(repo.list<Session>(spi::Query().where("launch_key", std::string(64, 'a')))->size(), 1u);
}

TEST_F(SqliteStoreTest, EmptyPathIsInvalid) {
  auto store = openSqliteStore({.path = ""});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code(), ErrorCode::kInvalidArgument);
}

std::int64_t walBytes(spi::Store& store) {
  for (const auto& m : store.metrics()) {
    if (m.name == "kasm_store_wal_bytes") return m.value;
  }
  return -1;
}

// 10,000 writes (inserts, updates and removes, as a busy server makes) leave the write-ahead log
// at a few MiB: checkpoints complete and the file is truncated back. A second connection reading
// between the writes, as the CLI or an operator's sqlite3 would, does not hold them back.
TEST_F(SqliteStoreTest, WalStaysBoundedUnderSustainedWrites) {
  const auto path = (dir_ / "kasm.db").string();
  auto store = openSqliteStore({.path = path});
  ASSERT_TRUE(store.ok()) << store.error().toString();
  auto reader = openSqliteStore({.path = path});
  ASSERT_TRUE(reader.ok());
  const std::string pad(400, 'p');
  std::int64_t largest = 0;
  for (int i = 0; i < 5000; ++i) {
    const std::string id = "u" + std::to_string(i);
    ASSERT_TRUE((*store)->insert(spi::Table::kUsers, spi::Record{id, 0, "{\"pad\":\"" + pad + "\"}", {}}).ok());
    ASSERT_TRUE((*store)->remove(spi::Table::kUsers, id, std::nullopt).ok());
    if (i % 100 == 0) {
      ASSERT_TRUE((*reader)->get(spi::Table::kUsers, id).error().code() == ErrorCode::kNotFound);
      ASSERT_TRUE((*reader)->count(spi::Table::kUsers, spi::Query()).ok());
    }
    largest = std::max(largest, walBytes(**store));
  }
  const auto wal = walBytes(**store);
  EXPECT_GE(wal, 0);
  EXPECT_LT(largest, 8 << 20) << "the WAL grew to " << largest << " bytes";
  EXPECT_LT(wal, 5 << 20) << "the WAL is " << wal << " bytes after 10,000 writes";
  EXPECT_EQ(fs::file_size(path + "-wal"), static_cast<std::uintmax_t>(wal));
}

// A write that meets another process's write lock waits for it (busy timeout) instead of failing.
TEST_F(SqliteStoreTest, WriteWaitsForAnotherProcesssLock) {
  const auto path = (dir_ / "kasm.db").string();
  auto store = openSqliteStore({.path = path});
  ASSERT_TRUE(store.ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO zones (id, version, data, name) VALUES ('z0', 1, '{}', 'zero')", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  std::thread holder([db] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  });
  auto wrote = (*store)->insert(spi::Table::kZones, spi::Record{"z1", 0, "{}", {{"name", "one"}}});
  holder.join();
  sqlite3_close(db);
  ASSERT_TRUE(wrote.ok()) << wrote.error().toString();
  EXPECT_TRUE((*store)->get(spi::Table::kZones, "z0").ok());
}

int modeOf(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 0777);
}

// The database holds password hashes and the installation's key: the directory the store creates is
// 0700 and the database and its WAL 0600, whatever the umask; a file an older version made 0644 is
// narrowed when opened.
TEST_F(SqliteStoreTest, DataDirectoryAndFilesArePrivate) {
  const auto old_mask = ::umask(022);
  const auto path = dir_ / "data" / "kasm.db";
  {
    auto store = openSqliteStore({.path = path.string()});
    ASSERT_TRUE(store.ok()) << store.error().toString();
    ASSERT_TRUE((*store)->insert(spi::Table::kZones, spi::Record{"z", 0, "{}", {}}).ok());
    EXPECT_EQ(modeOf(dir_ / "data"), 0700);
    EXPECT_EQ(modeOf(path), 0600);
    EXPECT_EQ(modeOf(path.string() + "-wal"), 0600);
  }
  ::chmod(path.c_str(), 0644);
  {
    auto again = openSqliteStore({.path = path.string()});
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(modeOf(path), 0600);
  }
  ::umask(old_mask);
}

}  // namespace
}  // namespace kasm
