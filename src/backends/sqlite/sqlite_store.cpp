// The embedded store: one SQLite file in WAL mode behind one connection.
//
// A single connection guarded by a mutex is deliberate: SQLite allows one writer at a time anyway,
// and a cache of prepared statements makes each call a few microseconds. Several processes may open
// the same file (the CLI beside a running server, a second server, an operator's sqlite3): every
// statement is reset as soon as its result is read (a statement left at SQLITE_ROW would keep its
// read transaction, pinning an old snapshot so that other processes' commits stay invisible and no
// checkpoint can complete), writes wait for the lock (busy timeout) and retry a stale snapshot, and
// the WAL is checkpointed and truncated so it stays bounded.

#include "kasm/store/sqlite_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <thread>
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

// Resets a cached statement when the call that used it returns, whatever the path: no statement
// outlives its call with a read transaction open.
class Reset {
 public:
  explicit Reset(sqlite3_stmt* st) : st_(st) {}
  ~Reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  Reset(const Reset&) = delete;
  Reset& operator=(const Reset&) = delete;

 private:
  sqlite3_stmt* st_;
};

// WAL size past which a commit runs a passive checkpoint of its own and the file is truncated
// back after a checkpoint that completes.
constexpr std::int64_t kWalLimitBytes = 4 << 20;

class SqliteStore final : public spi::Store {
 public:
  SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteStore() override {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  Result<void> init(std::chrono::milliseconds busy_timeout, bool in_memory) {
    std::lock_guard lock(mu_);
    busy_timeout_ = busy_timeout;
    in_memory_ = in_memory;
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
      // Automatic checkpoints every 1000 pages (SQLite's default, made explicit) and a WAL file
      // truncated back to this size once a checkpoint has completed.
      KASM_RETURN_IF_ERROR(execLocked("PRAGMA wal_autocheckpoint=1000", "cannot set wal_autocheckpoint"));
      KASM_RETURN_IF_ERROR(
          execLocked("PRAGMA journal_size_limit=" + std::to_string(kWalLimitBytes), "cannot set journal_size_limit"));
    }
    KASM_RETURN_IF_ERROR(execLocked(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
        "cannot create the migrations table"));
    KASM_RETURN_IF_ERROR(beginWriteLocked("cannot start the migration"));
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
    Reset reset(st);
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
    Reset reset(st);
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
    Reset reset(st);
    for (std::size_t i = 0; i < stmt.params.size(); ++i) bindText(st, static_cast<int>(i + 1), stmt.params[i]);
    const int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) return sqliteError(db_, rc, "counting " + std::string(spi::tableSchema(table).name));
    return static_cast<std::int64_t>(sqlite3_column_int64(st, 0));
  }

  Result<std::vector<std::int64_t>> apply(std::span<const spi::Mutation> mutations) override {
    for (const auto& m : mutations) KASM_RETURN_IF_ERROR(sql::checkRecord(m.table, m.record));
    std::lock_guard lock(mu_);
    KASM_RETURN_IF_ERROR(beginWriteLocked("cannot start a write"));
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
    if (!in_memory_ && ++commits_since_check_ >= 64) {
      commits_since_check_ = 0;
      checkpointIfLargeLocked();
    }
    return versions;
  }

  std::vector<spi::StoreMetric> metrics() override {
    std::vector<spi::StoreMetric> out;
    if (in_memory_) return out;
    out.push_back({"kasm_store_wal_bytes", "Size of the SQLite write-ahead log file.", walBytes()});
    out.push_back({"kasm_store_database_bytes", "Size of the SQLite database file.", fileBytes(path_)});
    return out;
  }

  Result<void> ping() override {
    std::lock_guard lock(mu_);
    return execLocked("SELECT 1", "ping");
  }

 private:
  // BEGIN IMMEDIATE takes the write lock at once. The busy timeout makes it wait for another
  // process's write; a busy answer that comes back before the timeout has elapsed (a snapshot
  // that went stale, a checkpoint in the way) is retried with a short back-off until it has.
  Result<void> beginWriteLocked(std::string_view what) {
    const auto deadline = std::chrono::steady_clock::now() + busy_timeout_;
    auto pause = std::chrono::milliseconds(1);
    while (true) {
      char* err = nullptr;
      const int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, &err);
      if (err) sqlite3_free(err);
      if (rc == SQLITE_OK) return {};
      const int primary = rc & 0xFF;
      if ((primary != SQLITE_BUSY && primary != SQLITE_LOCKED) || std::chrono::steady_clock::now() >= deadline) {
        return sqliteError(db_, rc, what);
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
  }

  // Automatic checkpoints are passive: a reader in another process can keep one from reaching the
  // end of the log. When the log has still grown past the limit, try again now (still passive,
  // never waiting on readers); a checkpoint that completes lets the next writer rewind the log
  // and journal_size_limit truncates the file.
  void checkpointIfLargeLocked() {
    if (walBytes() < kWalLimitBytes) return;
    int log_frames = 0, checkpointed = 0;
    sqlite3_wal_checkpoint_v2(db_, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames, &checkpointed);
  }

  std::int64_t walBytes() const { return fileBytes(path_ + "-wal"); }

  static std::int64_t fileBytes(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return 0;
    return static_cast<std::int64_t>(st.st_size);
  }

  Result<void> migrateLocked() {
    KASM_ASSIGN_OR_RETURN(sqlite3_stmt * st, prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    std::int32_t current = 0;
    {
      Reset reset(st);
      const int rc = sqlite3_step(st);
      if (rc != SQLITE_ROW) return sqliteError(db_, rc, "cannot read the schema version");
      current = static_cast<std::int32_t>(sqlite3_column_int(st, 0));
    }
    if (current > spi::kSchemaVersion) return sql::futureSchemaError(current);
    if (current < spi::kSchemaVersion) {
      // Columns added to existing tables first; then tables and indexes, which the statements create
      // only when missing: one pass brings any older database up to date.
      for (const auto& stmt : sql::upgradeStatements(kDialect, current))
        KASM_RETURN_IF_ERROR(execLocked(stmt, "migration"));
      for (const auto& stmt : sql::schemaStatements(kDialect)) KASM_RETURN_IF_ERROR(execLocked(stmt, "migration"));
      for (std::int32_t v = current + 1; v <= spi::kSchemaVersion; ++v) {
        KASM_RETURN_IF_ERROR(execLocked("INSERT INTO schema_migrations (version, applied_at) VALUES (" +
                                            std::to_string(v) + ", CAST(strftime('%s','now') AS INTEGER) * 1000)",
                                        "recording a migration"));
      }
    }
    schema_version_ = spi::kSchemaVersion;
    return {};
  }

  Result<std::int64_t> applyOne(const spi::Mutation& m) {
    const auto cols = sql::columnValues(m.table, m.record);
    switch (m.kind) {
      case spi::Mutation::Kind::kInsert: {
        KASM_ASSIGN_OR_RETURN(sqlite3_stmt * st, prepare(sql::insertStatement(kDialect, m.table)));
        Reset reset(st);
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
        Reset reset(st);
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
        Reset reset(st);
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
    Reset reset(st);
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

  // Returns a statement from the cache (reset by the Reset guard of its last use), preparing it on
  // first use. The caller holds a Reset guard for as long as it reads the statement.
  Result<sqlite3_stmt*> prepare(const std::string& text) {
    auto it = cache_.find(text);
    if (it != cache_.end()) return it->second;
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
  std::string path_;
  std::chrono::milliseconds busy_timeout_{5000};
  bool in_memory_ = false;
  int commits_since_check_ = 0;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
  std::int32_t schema_version_ = 0;
};

// Creates the database file 0600 before SQLite opens it (SQLite would create it with the umask's
// mode, 0644 usually, and give its WAL and shared-memory files the same), or narrows an existing
// file to 0600. Files of another owner are left alone: changing them is not ours to do.
Result<void> makePrivateFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return {};  // sqlite3_open reports why, in its own words.
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_uid == ::geteuid() && (st.st_mode & 077) != 0) {
    ::fchmod(fd, st.st_mode & 0700);
  }
  ::close(fd);
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string side = path + suffix;
    if (::stat(side.c_str(), &st) == 0 && st.st_uid == ::geteuid() && (st.st_mode & 077) != 0) {
      ::chmod(side.c_str(), st.st_mode & 0700);
    }
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<spi::Store>> openSqliteStore(const SqliteStoreOptions& options) {
  if (options.path.empty()) return invalidArgument("sqlite path must not be empty");
  const bool in_memory = options.path == ":memory:";
  if (!in_memory) {
    std::error_code ec;
    const auto parent = std::filesystem::path(options.path).parent_path();
    if (!parent.empty() && !std::filesystem::exists(parent, ec)) {
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return unavailable("cannot create the data directory " + parent.string() + ": " + ec.message());
      }
      if (options.private_files) ::chmod(parent.c_str(), 0700);
    }
    if (options.private_files) KASM_RETURN_IF_ERROR(makePrivateFile(options.path));
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(options.path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error e = sqliteError(db, rc, "cannot open SQLite database " + options.path);
    sqlite3_close_v2(db);
    return e;
  }
  auto store = std::make_unique<SqliteStore>(db, options.path);
  auto init = store->init(options.busy_timeout, in_memory);
  if (!init.ok()) return std::move(init).error().withContext("opening " + options.path);
  return std::unique_ptr<spi::Store>(std::move(store));
}

}  // namespace kasm
