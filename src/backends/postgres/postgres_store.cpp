// The scale-out store on PostgreSQL through libpqxx, with a small connection pool.
//
// Compare-and-set is a conditional UPDATE (WHERE id = $ AND version = $) under READ COMMITTED:
// PostgreSQL re-checks the condition against the newest row version after waiting for a concurrent
// writer, so of two managers racing on the same version exactly one sees a changed row.

#include "kasm/store/postgres_store.hpp"

#include <condition_variable>
#include <mutex>
#include <pqxx/pqxx>
#include <unordered_map>

#include "store/sql.hpp"

namespace kasm {
namespace {

constexpr sql::Dialect kDialect = sql::Dialect::kPostgres;
constexpr long kMigrationLockKey = 0x6b61736d;  // "kasm"

// Hides the password of a URL or key=value connection string in messages.
std::string redact(std::string url) {
  const auto scheme = url.find("://");
  if (scheme != std::string::npos) {
    const auto at = url.find('@', scheme);
    const auto colon = url.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      url.replace(colon + 1, at - colon - 1, "***");
    }
  }
  const auto pw = url.find("password=");
  if (pw != std::string::npos) {
    auto end = url.find_first_of(" &", pw);
    url.replace(pw + 9, (end == std::string::npos ? url.size() : end) - pw - 9, "***");
  }
  return url;
}

std::string withConnectTimeout(const std::string& url) {
  if (url.find("connect_timeout") != std::string::npos) return url;
  if (url.find("://") != std::string::npos) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=5";
  }
  return url + " connect_timeout=5";
}

std::string trimMessage(std::string m) {
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

struct PooledConnection {
  std::unique_ptr<pqxx::connection> conn;
  std::unordered_map<std::string, std::string> prepared;  // SQL text -> statement name.
};

class PostgresStore final : public spi::Store {
 public:
  PostgresStore(PostgresStoreOptions options)
      : options_(std::move(options)), url_(withConnectTimeout(options_.url)), redacted_(redact(options_.url)) {
    for (int i = 0; i < std::max(1, options_.pool_size); ++i) free_.push_back(std::make_unique<PooledConnection>());
  }

  Result<void> init() {
    return withConnection([&](PooledConnection& pc) -> Result<void> {
      pqxx::work w(*pc.conn);
      w.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLockKey) + ")");
      w.exec0("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)");
      const auto current = w.exec1("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0].as<int>();
      if (current > spi::kSchemaVersion) return sql::futureSchemaError(current);
      if (current < spi::kSchemaVersion) {
        // Columns added to existing tables first; then tables and indexes, created only when missing.
        for (const auto& stmt : sql::upgradeStatements(kDialect, current)) w.exec0(stmt);
        for (const auto& stmt : sql::schemaStatements(kDialect)) w.exec0(stmt);
        for (int v = current + 1; v <= spi::kSchemaVersion; ++v) {
          w.exec0("INSERT INTO schema_migrations (version, applied_at) VALUES (" + std::to_string(v) +
                  ", (EXTRACT(EPOCH FROM now()) * 1000)::bigint)");
        }
      }
      w.commit();
      schema_version_ = spi::kSchemaVersion;
      return {};
    });
  }

  std::string_view backendName() const override { return "postgresql"; }
  std::int32_t schemaVersion() const override { return schema_version_; }

  Result<spi::Record> get(spi::Table table, std::string_view id) override {
    // One statement in autocommit sees one snapshot by itself: a round trip instead of three
    // (BEGIN READ ONLY, SELECT, ROLLBACK).
    return withConnection([&](PooledConnection& pc) -> Result<spi::Record> {
      pqxx::nontransaction t(*pc.conn);
      std::vector<std::string> params{std::string(id)};
      auto r = exec(pc, t, sql::getStatement(kDialect, table), params);
      if (r.empty()) return sql::missingRowError(table, std::string(id));
      return readRow(table, r[0]);
    });
  }

  Result<std::vector<spi::Record>> list(spi::Table table, const spi::Query& query) override {
    KASM_RETURN_IF_ERROR(sql::checkQuery(table, query));
    const auto stmt = sql::selectStatement(kDialect, table, query, false);
    return withConnection([&](PooledConnection& pc) -> Result<std::vector<spi::Record>> {
      pqxx::nontransaction t(*pc.conn);
      auto r = exec(pc, t, stmt.text, stmt.params);
      std::vector<spi::Record> out;
      out.reserve(r.size());
      for (const auto& row : r) out.push_back(readRow(table, row));
      return out;
    });
  }

  Result<std::int64_t> count(spi::Table table, const spi::Query& query) override {
    KASM_RETURN_IF_ERROR(sql::checkQuery(table, query));
    const auto stmt = sql::selectStatement(kDialect, table, query, true);
    return withConnection([&](PooledConnection& pc) -> Result<std::int64_t> {
      pqxx::nontransaction t(*pc.conn);
      auto r = exec(pc, t, stmt.text, stmt.params);
      return r[0][0].as<std::int64_t>();
    });
  }

  Result<std::vector<std::int64_t>> apply(std::span<const spi::Mutation> mutations) override {
    for (const auto& m : mutations) KASM_RETURN_IF_ERROR(sql::checkRecord(m.table, m.record));
    return withConnection([&](PooledConnection& pc) -> Result<std::vector<std::int64_t>> {
      if (mutations.size() == 1) {
        // One statement is atomic by itself: no BEGIN and COMMIT around it (a check-in, a lease
        // renewal, most session changes). A miss is told apart by a second read, as in a batch.
        pqxx::nontransaction t(*pc.conn);
        KASM_ASSIGN_OR_RETURN(auto v, applyOne(pc, t, mutations.front()));
        return std::vector<std::int64_t>{v};
      }
      pqxx::work w(*pc.conn);
      std::vector<std::int64_t> versions;
      versions.reserve(mutations.size());
      for (const auto& m : mutations) {
        auto v = applyOne(pc, w, m);
        if (!v.ok()) {
          w.abort();
          return std::move(v).error();
        }
        versions.push_back(*v);
      }
      w.commit();
      return versions;
    });
  }

  Result<void> ping() override {
    return withConnection([&](PooledConnection& pc) -> Result<void> {
      pqxx::nontransaction t(*pc.conn);
      t.exec("SELECT 1");
      return {};
    });
  }

 private:
  Result<std::int64_t> applyOne(PooledConnection& pc, pqxx::transaction_base& w, const spi::Mutation& m) {
    auto cols = sql::columnValues(m.table, m.record);
    switch (m.kind) {
      case spi::Mutation::Kind::kInsert: {
        std::vector<std::string> params{m.record.id, m.record.data};
        params.insert(params.end(), cols.begin(), cols.end());
        // A savepoint-free insert: a unique violation aborts the whole batch, which is what we want.
        try {
          exec(pc, w, sql::insertStatement(kDialect, m.table), params);
        } catch (const pqxx::unique_violation& e) {
          return sql::duplicateError(m.table, m.record.id, trimMessage(e.what()));
        }
        return std::int64_t{1};
      }
      case spi::Mutation::Kind::kUpdate: {
        std::vector<std::string> params{m.record.data};
        params.insert(params.end(), cols.begin(), cols.end());
        params.push_back(m.record.id);
        params.push_back(std::to_string(m.record.version));
        pqxx::result r;
        try {
          r = exec(pc, w, sql::updateStatement(kDialect, m.table), params);
        } catch (const pqxx::unique_violation& e) {
          return sql::duplicateError(m.table, m.record.id, trimMessage(e.what()));
        }
        if (r.affected_rows() == 0) return missOrStale(pc, w, m);
        return m.record.version + 1;
      }
      case spi::Mutation::Kind::kRemove: {
        std::vector<std::string> params{m.record.id};
        if (m.check_version) params.push_back(std::to_string(m.record.version));
        auto r = exec(pc, w, sql::removeStatement(kDialect, m.table, m.check_version), params);
        if (r.affected_rows() == 0) return missOrStale(pc, w, m);
        return std::int64_t{0};
      }
    }
    return internalError("unknown mutation kind");
  }

  Result<std::int64_t> missOrStale(PooledConnection& pc, pqxx::transaction_base& w, const spi::Mutation& m) {
    std::vector<std::string> params{m.record.id};
    auto r = exec(pc, w, sql::versionStatement(kDialect, m.table), params);
    if (r.empty()) return sql::missingRowError(m.table, m.record.id);
    return sql::staleVersionError(m.table, m.record.id, m.record.version);
  }

  static spi::Record readRow(spi::Table table, const pqxx::row& row) {
    spi::Record r;
    r.id = row[0].c_str();
    r.version = row[1].as<std::int64_t>();
    r.data = row[2].c_str();
    const auto& s = spi::tableSchema(table);
    for (std::size_t i = 0; i < s.columns.size(); ++i) {
      r.columns[std::string(s.columns[i])] = row[static_cast<int>(i + 3)].c_str();
    }
    return r;
  }

  // Runs a statement as a prepared statement of this connection (prepared on first use).
  static pqxx::result exec(PooledConnection& pc, pqxx::transaction_base& t, const std::string& text,
                           const std::vector<std::string>& params) {
    auto it = pc.prepared.find(text);
    if (it == pc.prepared.end()) {
      std::string name = "k" + std::to_string(pc.prepared.size());
      pc.conn->prepare(name, text);
      it = pc.prepared.emplace(text, std::move(name)).first;
    }
    return t.exec_prepared(it->second, pqxx::prepare::make_dynamic_params(params));
  }

  // Borrows a pooled connection (connecting it when needed), runs `fn`, and converts libpqxx
  // exceptions to errors. A connection that broke is dropped and reconnected on next use.
  template <class Fn>
  auto withConnection(Fn&& fn) -> decltype(fn(std::declval<PooledConnection&>())) {
    std::unique_ptr<PooledConnection> pc;
    {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, options_.acquire_timeout, [&] { return !free_.empty(); })) {
        return unavailable("no free PostgreSQL connection within " + std::to_string(options_.acquire_timeout.count()) +
                           " ms (pool of " + std::to_string(options_.pool_size) + ")");
      }
      pc = std::move(free_.back());
      free_.pop_back();
    }
    auto give_back = [&] {
      std::lock_guard lock(mu_);
      free_.push_back(std::move(pc));
      cv_.notify_one();
    };
    try {
      if (!pc->conn || !pc->conn->is_open()) {
        pc->prepared.clear();
        pc->conn = std::make_unique<pqxx::connection>(url_);
      }
      auto result = fn(*pc);
      give_back();
      return result;
    } catch (const pqxx::broken_connection& e) {
      pc->conn.reset();
      give_back();
      return unavailable("PostgreSQL at " + redacted_ + " is unreachable: " + trimMessage(e.what()));
    } catch (const pqxx::in_doubt_error& e) {
      pc->conn.reset();
      give_back();
      return unavailable("PostgreSQL connection lost during commit; the outcome is unknown, re-read before retrying: " +
                         trimMessage(e.what()));
    } catch (const pqxx::sql_error& e) {
      const std::string state = e.sqlstate();
      give_back();
      if (state.rfind("08", 0) == 0 || state == "57P01" || state == "57P03") {
        return unavailable("PostgreSQL is unavailable: " + trimMessage(e.what()));
      }
      if (state == "40001" || state == "40P01")
        return aborted("PostgreSQL aborted the transaction: " + trimMessage(e.what()));
      return internalError("PostgreSQL error " + state + ": " + trimMessage(e.what()));
    } catch (const std::exception& e) {
      const bool lost = pc->conn && !pc->conn->is_open();
      if (lost) pc->conn.reset();
      give_back();
      if (lost) return unavailable("PostgreSQL at " + redacted_ + ": " + trimMessage(e.what()));
      return internalError("PostgreSQL store: " + trimMessage(e.what()));
    }
  }

  PostgresStoreOptions options_;
  std::string url_;
  std::string redacted_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PooledConnection>> free_;
  std::int32_t schema_version_ = 0;
};

}  // namespace

Result<std::unique_ptr<spi::Store>> openPostgresStore(const PostgresStoreOptions& options) {
  if (options.url.empty()) return invalidArgument("postgres url must not be empty");
  if (options.pool_size < 1 || options.pool_size > 1000) return invalidArgument("postgres pool_size must be 1-1000");
  auto store = std::make_unique<PostgresStore>(options);
  auto init = store->init();
  if (!init.ok()) return std::move(init).error();
  return std::unique_ptr<spi::Store>(std::move(store));
}

}  // namespace kasm
