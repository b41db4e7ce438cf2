// PostgreSQL-specific behaviour beyond the conformance suite: an unreachable server, a wrong
// password, a schema from the future, several stores migrating the same database at once.

#include "kasm/store/postgres_store.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "kasm/kasm.hpp"
#include "support/services.hpp"

namespace kasm {
namespace {

TEST(PostgresStore, ServerDownIsUnavailableAndHidesThePassword) {
  const std::string url =
      "postgresql://kasm:s3cret@127.0.0.1:" + std::to_string(testing::unusedLoopbackPort()) + "/kasm";
  auto store = openPostgresStore({.url = url});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(store.error().message().find("s3cret"), std::string::npos) << store.error().message();
}

TEST(PostgresStore, BadOptionsAreInvalidArgument) {
  EXPECT_EQ(openPostgresStore({.url = ""}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(openPostgresStore({.url = "postgresql://x", .pool_size = 0}).error().code(), ErrorCode::kInvalidArgument);
}

class PostgresServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    db_ = testing::ScratchPostgresDatabase::create(&why);
    if (!db_) KASM_SKIP_OR_FAIL(why);
  }
  std::optional<testing::ScratchPostgresDatabase> db_;
};

TEST_F(PostgresServerTest, WrongPasswordIsUnavailableWithTheServersReason) {
  db_->execute(
      "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kasm_pw_test') THEN "
      "CREATE ROLE kasm_pw_test LOGIN PASSWORD 'right'; END IF; END $$");
  std::string url = db_->url();
  const auto at = url.find('@');
  ASSERT_NE(at, std::string::npos) << "the test URL must carry user@host";
  url = "postgresql://kasm_pw_test:wrong" + url.substr(at);
  auto store = openPostgresStore({.url = url});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(store.error().message().find("password"), std::string::npos) << store.error().message();
  EXPECT_EQ(store.error().message().find(":wrong@"), std::string::npos);
}

TEST_F(PostgresServerTest, SchemaFromTheFutureIsRefused) {
  { ASSERT_TRUE(openPostgresStore({.url = db_->url()}).ok()); }
  db_->execute("INSERT INTO schema_migrations VALUES (42, 0)");
  auto store = openPostgresStore({.url = db_->url()});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(store.error().message().find("42"), std::string::npos);
}

// A database of schema version 5 (before idempotent launches) gains the sessions' unique
// launch_key on open, keeps its sessions, and records version 6.
TEST_F(PostgresServerTest, AVersionFiveDatabaseGainsUniqueLaunchKeys) {
  Session old;
  old.id = SessionId("old");
  old.user_id = UserId("u1");
  old.workspace_id = WorkspaceId("w1");
  old.created_at = old.state_changed_at = fromUnixMillis(1);
  {
    auto store = openPostgresStore({.url = db_->url()});
    ASSERT_TRUE(store.ok()) << store.error().toString();
    ASSERT_TRUE(Repository(**store).insert(old).ok());
  }
  // As version 5 left it: no column (its indexes go with it) and documents without the field.
  db_->execute("ALTER TABLE sessions DROP COLUMN launch_key");
  db_->execute("UPDATE sessions SET data = data - 'launch_key'");
  db_->execute("DELETE FROM schema_migrations WHERE version > 5");
  auto store = openPostgresStore({.url = db_->url()});
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

TEST_F(PostgresServerTest, ConcurrentOpensMigrateOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (openPostgresStore({.url = db_->url(), .pool_size = 1}).ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
}

TEST_F(PostgresServerTest, RecoversAfterItsConnectionsAreKilled) {
  auto store = openPostgresStore({.url = db_->url(), .pool_size = 1});
  ASSERT_TRUE(store.ok()) << store.error().toString();
  ASSERT_TRUE((*store)->ping().ok());
  // Terminate every other backend on this database, as a server restart would.
  db_->execute(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
      "AND pid <> pg_backend_pid()");
  auto first = (*store)->ping();
  if (!first.ok()) {
    EXPECT_EQ(first.error().code(), ErrorCode::kUnavailable);
  }
  EXPECT_TRUE((*store)->ping().ok());  // The pool reconnects.
}

}  // namespace
}  // namespace kasm
