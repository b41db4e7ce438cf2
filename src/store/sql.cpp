#include "store/sql.hpp"

#include <algorithm>

namespace kasm::sql {
namespace {

std::string ph(Dialect d, int n) {
  return d == Dialect::kSqlite ? "?" + std::to_string(n) : "$" + std::to_string(n);
}

std::string selectColumns(Dialect d, const spi::TableSchema& s) {
  std::string out = d == Dialect::kPostgres ? "id, version, data::text" : "id, version, data";
  for (auto c : s.columns) {
    out += ", ";
    out += c;
  }
  return out;
}

bool hasColumn(const spi::TableSchema& s, std::string_view c) {
  return std::find(s.columns.begin(), s.columns.end(), c) != s.columns.end();
}

}  // namespace

Result<void> checkRecord(spi::Table table, const spi::Record& record) {
  const auto& s = spi::tableSchema(table);
  if (record.id.empty()) return invalidArgument(std::string(s.name) + ": record id must not be empty");
  if (record.id.size() > 255) return invalidArgument(std::string(s.name) + ": record id is longer than 255 bytes");
  for (const auto& [k, v] : record.columns) {
    if (!hasColumn(s, k)) return invalidArgument(std::string(s.name) + " has no column '" + k + "'");
  }
  return {};
}

Result<void> checkQuery(spi::Table table, const spi::Query& query) {
  const auto& s = spi::tableSchema(table);
  for (const auto& [k, v] : query.equals) {
    if (!hasColumn(s, k) && k != "id")
      return invalidArgument(std::string(s.name) + " has no column '" + k + "' to query");
  }
  if (!query.in_column.empty() && !hasColumn(s, query.in_column) && query.in_column != "id") {
    return invalidArgument(std::string(s.name) + " has no column '" + query.in_column + "' to query");
  }
  return {};
}

std::vector<std::string> columnValues(spi::Table table, const spi::Record& record) {
  const auto& s = spi::tableSchema(table);
  std::vector<std::string> out;
  out.reserve(s.columns.size());
  for (auto c : s.columns) {
    auto it = record.columns.find(std::string(c));
    out.push_back(it == record.columns.end() ? std::string() : it->second);
  }
  return out;
}

std::vector<std::string> upgradeStatements(Dialect, int from) {
  std::vector<std::string> out;
  // Version 3: sessions on fixed servers.
  if (from >= 1 && from < 3) out.push_back("ALTER TABLE sessions ADD COLUMN server_id TEXT NOT NULL DEFAULT ''");
  // Version 6: idempotent launches (the unique index comes with schemaStatements()).
  if (from >= 1 && from < 6) out.push_back("ALTER TABLE sessions ADD COLUMN launch_key TEXT NOT NULL DEFAULT ''");
  return out;
}

std::vector<std::string> schemaStatements(Dialect d) {
  std::vector<std::string> out;
  const char* data_type = d == Dialect::kPostgres ? "JSONB" : "TEXT";
  for (const auto& s : spi::allTableSchemas()) {
    std::string n(s.name);
    std::string create = "CREATE TABLE IF NOT EXISTS " + n + " (id TEXT PRIMARY KEY, version BIGINT NOT NULL, data " +
                         data_type + " NOT NULL";
    for (auto c : s.columns) create += ", " + std::string(c) + " TEXT NOT NULL DEFAULT ''";
    create += ")";
    out.push_back(create);
    for (auto c : s.columns) {
      const bool unique = std::find(s.unique_columns.begin(), s.unique_columns.end(), c) != s.unique_columns.end();
      std::string col(c);
      if (unique) {
        out.push_back("CREATE UNIQUE INDEX IF NOT EXISTS " + n + "_" + col + "_uniq ON " + n + " (" + col + ") WHERE " +
                      col + " <> ''");
      }
      // Lookups need a plain index even beside a unique one: a query "col = ?" does not prove
      // "col <> ''" to SQLite, nor to PostgreSQL's generic plans, so neither uses the partial index.
      out.push_back("CREATE INDEX IF NOT EXISTS " + n + "_" + col + "_idx ON " + n + " (" + col + ")");
    }
  }
  // The hot query of the manager: a user's sessions in a state.
  out.push_back("CREATE INDEX IF NOT EXISTS sessions_user_state_idx ON sessions (user_id, state)");
  return out;
}

Statement selectStatement(Dialect d, spi::Table table, const spi::Query& q, bool count_only) {
  const auto& s = spi::tableSchema(table);
  Statement st;
  st.text = "SELECT " + (count_only ? std::string("COUNT(*)") : selectColumns(d, s)) + " FROM " + std::string(s.name);
  std::vector<std::string> conds;
  for (const auto& [k, v] : q.equals) {
    st.params.push_back(v);
    conds.push_back(k + " = " + ph(d, static_cast<int>(st.params.size())));
  }
  if (!q.in_column.empty()) {
    if (q.in_values.empty()) {
      conds.push_back("1 = 0");
    } else {
      std::string in = q.in_column + " IN (";
      for (std::size_t i = 0; i < q.in_values.size(); ++i) {
        st.params.push_back(q.in_values[i]);
        if (i) in += ", ";
        in += ph(d, static_cast<int>(st.params.size()));
      }
      conds.push_back(in + ")");
    }
  }
  if (!q.after_id.empty()) {
    st.params.push_back(q.after_id);
    conds.push_back("id > " + ph(d, static_cast<int>(st.params.size())));
  }
  for (std::size_t i = 0; i < conds.size(); ++i) st.text += (i == 0 ? " WHERE " : " AND ") + conds[i];
  if (!count_only) {
    st.text += " ORDER BY id";
    if (q.limit > 0) st.text += " LIMIT " + std::to_string(q.limit);  // A number, not user text.
  }
  return st;
}

std::string getStatement(Dialect d, spi::Table table) {
  const auto& s = spi::tableSchema(table);
  return "SELECT " + selectColumns(d, s) + " FROM " + std::string(s.name) + " WHERE id = " + ph(d, 1);
}

std::string insertStatement(Dialect d, spi::Table table) {
  const auto& s = spi::tableSchema(table);
  std::string cols = "id, version, data";
  std::string vals = ph(d, 1) + ", 1, " + ph(d, 2) + (d == Dialect::kPostgres ? "::jsonb" : "");
  int n = 3;
  for (auto c : s.columns) {
    cols += ", " + std::string(c);
    vals += ", " + ph(d, n++);
  }
  return "INSERT INTO " + std::string(s.name) + " (" + cols + ") VALUES (" + vals + ")";
}

std::string updateStatement(Dialect d, spi::Table table) {
  const auto& s = spi::tableSchema(table);
  std::string sets = "version = version + 1, data = " + ph(d, 1) + (d == Dialect::kPostgres ? "::jsonb" : "");
  int n = 2;
  for (auto c : s.columns) sets += ", " + std::string(c) + " = " + ph(d, n++);
  std::string where = " WHERE id = " + ph(d, n) + " AND version = " + ph(d, n + 1);
  return "UPDATE " + std::string(s.name) + " SET " + sets + where;
}

std::string removeStatement(Dialect d, spi::Table table, bool check_version) {
  const auto& s = spi::tableSchema(table);
  std::string out = "DELETE FROM " + std::string(s.name) + " WHERE id = " + ph(d, 1);
  if (check_version) out += " AND version = " + ph(d, 2);
  return out;
}

std::string versionStatement(Dialect d, spi::Table table) {
  return "SELECT version FROM " + std::string(spi::tableSchema(table).name) + " WHERE id = " + ph(d, 1);
}

Error staleVersionError(spi::Table table, const std::string& id, std::int64_t expected) {
  return aborted(std::string(spi::tableSchema(table).name) + " '" + id + "' changed since version " +
                 std::to_string(expected) + " was read; re-read and retry");
}

Error missingRowError(spi::Table table, const std::string& id) {
  return notFound(std::string(spi::tableSchema(table).name) + " '" + id + "' does not exist");
}

Error duplicateError(spi::Table table, const std::string& id, const std::string& detail) {
  return alreadyExists(std::string(spi::tableSchema(table).name) + " '" + id + "' clashes with an existing row" +
                       (detail.empty() ? std::string() : ": " + detail));
}

Error futureSchemaError(std::int32_t found) {
  return failedPrecondition("database schema version " + std::to_string(found) +
                            " is newer than this build of kasm supports (" + std::to_string(spi::kSchemaVersion) +
                            "); upgrade kasm, or restore a backup made by this version");
}

}  // namespace kasm::sql
