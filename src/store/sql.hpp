#pragma once

// SQL text shared by the SQLite and PostgreSQL stores. Only identifiers from the fixed table schemas
// are ever spliced into SQL; every value travels as a bound parameter. Private to the library.

#include <string>
#include <vector>

#include "kasm/spi/store.hpp"

namespace kasm::sql {

enum class Dialect { kSqlite, kPostgres };

// Checks a record's columns against its table: InvalidArgument for an unknown column or empty id.
Result<void> checkRecord(spi::Table table, const spi::Record& record);
Result<void> checkQuery(spi::Table table, const spi::Query& query);

// The record's column values in schema order, "" for missing ones.
std::vector<std::string> columnValues(spi::Table table, const spi::Record& record);

// Every table and index of the current schema, each created only when missing, in order.
// What a database at schema version `from` (1 or more) needs before schemaStatements() brings it
// to kSchemaVersion: columns added to existing tables (CREATE TABLE IF NOT EXISTS adds none).
std::vector<std::string> upgradeStatements(Dialect dialect, int from);
std::vector<std::string> schemaStatements(Dialect dialect);

// A SELECT for `query` plus the parameter values in placeholder order. Columns returned:
// id, version, data, then the table's columns in schema order.
struct Statement {
  std::string text;
  std::vector<std::string> params;
};
Statement selectStatement(Dialect dialect, spi::Table table, const spi::Query& query, bool count_only);
std::string getStatement(Dialect dialect, spi::Table table);     // params: id
std::string insertStatement(Dialect dialect, spi::Table table);  // params: id, data, columns...
// params: data, columns..., id, expected version. Sets version = version + 1.
std::string updateStatement(Dialect dialect, spi::Table table);
std::string removeStatement(Dialect dialect, spi::Table table, bool check_version);  // params: id[, version]
std::string versionStatement(Dialect dialect, spi::Table table);                     // params: id; returns version

// Messages shared by the backends so the conformance suite sees the same wording.
Error staleVersionError(spi::Table table, const std::string& id, std::int64_t expected);
Error missingRowError(spi::Table table, const std::string& id);
Error duplicateError(spi::Table table, const std::string& id, const std::string& detail);
Error futureSchemaError(std::int32_t found);

}  // namespace kasm::sql
