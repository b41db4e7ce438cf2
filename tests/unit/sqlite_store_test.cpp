// SQLite-specific behaviour beyond the conformance suite: files on disk, bad files, future schemas.

#include "kasm/store/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>

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

TEST_F(SqliteStoreTest, EmptyPathIsInvalid) {
  auto store = openSqliteStore({.path = ""});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace kasm
