// The embedded store: one SQLite file in WAL mode behind one connection.
//
// A single connection guarded by a mutex is deliberate: SQLite allows one writer at a time anyway,
// and a cache of prepared statements makes each call a few microseconds. Several processes may open
// the same file (busy_timeout makes writers wait), but the embedded server uses it from one process.

#include "kasm/store/sqlite_store.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <mutex>
#include <unordered_map>

#include "store/sql.hpp"

namespace kasm {
namespace {

constexpr sql::Dialect kDialect = sql::Dialect::kSqlite;

Error sqliteError(sqlite3* db, int rc, std::string_view what) {
  const int primary = rc & 0xFF;
  std::string msg = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (primary) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return dataLoss(msg + " (the database file is corrupt or not a SQLite database; restore it from a backup)");
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return unavailable(msg + " (another process holds the database lock)");
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM: return unavailable(msg + " (check that the file and its directory exist and are writable)");
    case SQLITE_FULL:
    case SQLITE_IOERR: return unavailable(msg + " (disk full or I/O error)");
    case SQLITE_CONSTRAINT: return alreadyExists(msg);
    default: return internalError(msg);
  }
}

class SqliteStore final : public spi::Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  ~SqliteStore() override {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  Result<void> init(std::chrono::milliseconds busy_timeout, bool in_memory) {
    std::lock_guard lock(mu_);
    sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
    sqlite3_extended_result_codes(db_, 1);
    // The first read of the header tells a corrupt file apart.
    KASM_RETURN_IF_ERROR(execLocked("SELECT count(*) FROM sqlite_master", "cannot read the database"));
    if (sqlite3_db_readonly(db_, "main") == 1) {
      return unavailable("SQLite database is read-only; kasm needs to write it (check file permissions)");
    }
    if (!in_memory) {
      KASM_RETURN_IF_ERROR(execLocked("PRAGMA journal_mode=WAL", "cannot enable WAL"));
      KASM_RETURN_IF_ERROR(execLocked("PRAGMA synchronous=NORMAL", "cannot set synchronous"));
    }
    KASM_RETURN_IF_ERROR(execLocked(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
        "cannot create the migrations table"));
    KASM_RETURN_IF_ERROR(execLocked("BEGIN IMMEDIATE", "cannot start the migration"));
    auto migrated = migrateLocked();
    if (!migrated.ok()) {
      (void)execLocked("ROLLBACK", "rollback");
      return migrated;
    }
    return execLocked("COMMIT", "cannot commit the migration");
  }

  std::string_view backendName() const override { return "sqlite"; }
  std::int32_t schemaVersion() const override { return schema_version_; }

  Result<spi::Record> get(spi::Table table, std::string_view id) override {
    std::lock_guard lock(mu_);
    KASM_ASSIGN_OR_RETURN(sqlite3_stmt * st, prepare(sql::getStatement(kDialect, table)));
    bindText(st, 1, id);
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) return sql::missingRowError(table, std::string(id));
    if (rc != SQLITE_ROW) return sqliteError(db_, rc, "reading " + std::string(spi::tableSchema(table).name));
    return readRow(table, st);
  }

  Result<std::vector<spi::Record>> list(spi::Table table, const spi::Query& query) override {
    KASM_RETURN_IF_ERROR(sql::checkQuery(table, query));
    const auto stmt = sql::selectStatement(kDialect, table, query, false);
    std::lock_guard lock(mu_);
    KASM_ASSIGN_OR_RETURN(sqlite3_stmt * st, prepare(stmt.text));
    for (std::size_t i = 0; i < stmt.params.size(); ++i) bindText(st, static_cast<int>(i + 1), stmt.params[i]);
    std::vector<spi::Record> out;
    while (true) {
      const int rc = sqlite3_step(st);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return sqliteError(db_, rc, "listing " + std::string(spi::tableSchema(table).name));
      out.push_back(readRow(table, st));
    }
    return out;
  }

  Result<std::int64_t> count(spi::Table table, const spi::Query& query) override {
    KASM_RETURN_IF_ERROR(sql::checkQuery(table, query));
    const auto stmt = sql::selectStatement(kDialect, table, query, true);
    std::lock_guard lock(mu_);
    KASM_ASSIGN_OR_RETURN(sqlite3_stmt * st, prepare(stmt.text));
    for (std::size_t i = 0; i < stmt.params.size(); ++i) bindText(st, static_cast<int>(i + 1), stmt.params[i]);
    const int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) return sqliteError(db_, rc, "counting " + std::string(spi::tableSchema(table).name));
    return static_cast<std::int64_t>(sqlite3_column_int64(st, 0));
  }

  Result<std::vector<std::int64_t>> apply(std::span<const spi::Mutation> mutations) override {
    for (const auto& m : mutations) KASM_RETURN_IF_ERROR(sql::checkRecord(m.table, m.record));
    std::lock_guard lock(mu_);
    KASM_RETURN_IF_ERROR(execLocked("BEGIN IMMEDIATE", "cannot start a write"));
    std::vector<std::int64_t> versions;
    versions.reserve(mutations.size());
    for (const auto& m : mutations) {
      auto v = applyOne(m);
      if (!v.ok()) {
        (void)execLocked("ROLLBACK", "rollback");
        return std::move(v).error();
      }
      versions.push_back(*v);
    }
    auto committed = execLocked("COMMIT", "cannot commit");
    if (!committed.ok()) {
      (void)execLocked("ROLLBACK", "rollback");
      return std::move(committed).error();
    }
    return versions;
  }

  Result<void> ping() override {
    std::lock_guard lock(mu_);
    return execLocked("SELECT 1", "ping");
  }

 private:
  Result<void> migrateLocked() {
    KASM_ASSIGN_OR_RETURN(sqlite3_stmt * st, prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) return sqliteError(db_, rc, "cannot read the schema version");
    const auto current = static_cast<std::int32_t>(sqlite3_column_int(st, 0));
    sqlite3_reset(st);
    if (current > spi::kSchemaVersion) return sql::futureSchemaError(current);
    if (current < 1) {
      for (const auto& stmt : sql::schemaV1(kDialect)) KASM_RETURN_IF_ERROR(execLocked(stmt, "migration 1"));
      KASM_RETURN_IF_ERROR(
          execLocked("INSERT INTO schema_migrations (version, applied_at) VALUES (1, CAST(strftime('%s','now') AS "
                     "INTEGER) * 1000)",
                     "recording migration 1"));
    }
    schema_version_ = spi::kSchemaVersion;
    return {};
  }

  Result<std::int64_t> applyOne(const spi::Mutation& m) {
    const auto cols = sql::columnValues(m.table, m.record);
    switch (m.kind) {
      case spi::Mutation::Kind::kInsert: {
        KASM_ASSIGN_OR_RETURN(sqlite3_stmt * st, prepare(sql::insertStatement(kDialect, m.table)));
        bindText(st, 1, m.record.id);
        bindText(st, 2, m.record.data);
        for (std::size_t i = 0; i < cols.size(); ++i) bindText(st, static_cast<int>(i + 3), cols[i]);
        const int rc = sqlite3_step(st);
        if ((rc & 0xFF) == SQLITE_CONSTRAINT) {
          return sql::duplicateError(m.table, m.record.id, sqlite3_errmsg(db_));
        }
        if (rc != SQLITE_DONE)
          return sqliteError(db_, rc, "inserting into " + std::string(spi::tableSchema(m.table).name));
        return std::int64_t{1};
      }
      case spi::Mutation::Kind::kUpdate: {
        KASM_ASSIGN_OR_RETURN(sqlite3_stmt * st, prepare(sql::updateStatement(kDialect, m.table)));
        bindText(st, 1, m.record.data);
        int n = 2;
        for (const auto& c : cols) bindText(st, n++, c);
        bindText(st, n, m.record.id);
        sqlite3_bind_int64(st, n + 1, m.record.version);
        const int rc = sqlite3_step(st);
        if ((rc & 0xFF) == SQLITE_CONSTRAINT) return sql::duplicateError(m.table, m.record.id, sqlite3_errmsg(db_));
        if (rc != SQLITE_DONE) return sqliteError(db_, rc, "updating " + std::string(spi::tableSchema(m.table).name));
        if (sqlite3_changes(db_) == 0) return missOrStale(m);
        return m.record.version + 1;
      }
      case spi::Mutation::Kind::kRemove: {
        KASM_ASSIGN_OR_RETURN(sqlite3_stmt * st, prepare(sql::removeStatement(kDialect, m.table, m.check_version)));
        bindText(st, 1, m.record.id);
        if (m.check_version) sqlite3_bind_int64(st, 2, m.record.version);
        const int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
          return sqliteError(db_, rc, "removing from " + std::string(spi::tableSchema(m.table).name));
        if (sqlite3_changes(db_) == 0) return missOrStale(m);
        return std::int64_t{0};
      }
    }
    return internalError("unknown mutation kind");
  }

  // After a conditional write touched no row: was the row missing, or was the version stale?
  Result<std::int64_t> missOrStale(const spi::Mutation& m) {
    KASM_ASSIGN_OR_RETURN(sqlite3_stmt * st, prepare(sql::versionStatement(kDialect, m.table)));
    bindText(st, 1, m.record.id);
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) return sql::missingRowError(m.table, m.record.id);
    if (rc != SQLITE_ROW) return sqliteError(db_, rc, "reading a version");
    return sql::staleVersionError(m.table, m.record.id, m.record.version);
  }

  spi::Record readRow(spi::Table table, sqlite3_stmt* st) {
    spi::Record r;
    r.id = columnText(st, 0);
    r.version = sqlite3_column_int64(st, 1);
    r.data = columnText(st, 2);
    const auto& s = spi::tableSchema(table);
    for (std::size_t i = 0; i < s.columns.size(); ++i) {
      r.columns[std::string(s.columns[i])] = columnText(st, static_cast<int>(i + 3));
    }
    return r;
  }

  static std::string columnText(sqlite3_stmt* st, int i) {
    const auto* p = sqlite3_column_text(st, i);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(st, i)))
             : std::string();
  }

  static void bindText(sqlite3_stmt* st, int i, std::string_view v) {
    sqlite3_bind_text(st, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }

  // Returns a reset statement from the cache, preparing it on first use.
  Result<sqlite3_stmt*> prepare(const std::string& text) {
    auto it = cache_.find(text);
    if (it != cache_.end()) {
      sqlite3_reset(it->second);
      sqlite3_clear_bindings(it->second);
      return it->second;
    }
    sqlite3_stmt* st = nullptr;
    const int rc =
        sqlite3_prepare_v3(db_, text.c_str(), static_cast<int>(text.size()), SQLITE_PREPARE_PERSISTENT, &st, nullptr);
    if (rc != SQLITE_OK) return sqliteError(db_, rc, "preparing a statement");
    cache_.emplace(text, st);
    return st;
  }

  Result<void> execLocked(const std::string& text, std::string_view what) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
    if (err) sqlite3_free(err);
    if (rc != SQLITE_OK) return sqliteError(db_, rc, what);
    return {};
  }

  std::mutex mu_;
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
  std::int32_t schema_version_ = 0;
};

}  // namespace

Result<std::unique_ptr<spi::Store>> openSqliteStore(const SqliteStoreOptions& options) {
  if (options.path.empty()) return invalidArgument("sqlite path must not be empty");
  const bool in_memory = options.path == ":memory:";
  if (!in_memory) {
    std::error_code ec;
    const auto parent = std::filesystem::path(options.path).parent_path();
    if (!parent.empty()) {
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return unavailable("cannot create the data directory " + parent.string() + ": " + ec.message());
      }
    }
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(options.path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error e = sqliteError(db, rc, "cannot open SQLite database " + options.path);
    sqlite3_close_v2(db);
    return e;
  }
  auto store = std::make_unique<SqliteStore>(db);
  auto init = store->init(options.busy_timeout, in_memory);
  if (!init.ok()) return std::move(init).error().withContext("opening " + options.path);
  return std::unique_ptr<spi::Store>(std::move(store));
}

}  // namespace kasm
