#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/result.hpp"

namespace kasm::spi {

// The collections the store keeps. Every backend has one table per collection with the same
// indexed columns (see tableSchema()).
enum class Table {
  kWorkspaces,
  kZones,
  kAgents,
  kSessions,
  kUsers,
  kGroups,
  kApiKeys,
  kServers,
  kServerPools,
  kStagingConfigs,
  kAutoscaleConfigs,
  kLicenses,
  kSettings,
  kShareIndex,
  kAutoscaleVms,
  kAutoscaleDecisions,
  kManagers,
  kLeases,
  kAgentCommands,
};
inline constexpr int kTableCount = 19;

// The fixed shape of a table: its SQL name, the columns that can be queried, and which of those are
// unique among rows where they are non-empty.
struct TableSchema {
  Table table;
  std::string_view name;
  std::vector<std::string_view> columns;
  std::vector<std::string_view> unique_columns;
};
const TableSchema& tableSchema(Table table);
const std::vector<TableSchema>& allTableSchemas();

// One stored document. `data` is an opaque JSON document written by the typed layer
// (kasm/store/repository.hpp); `columns` carries the queryable fields of the table (missing
// columns are stored as "").
struct Record {
  std::string id;
  std::int64_t version = 0;  // 1 after insert, +1 after every update.
  std::string data;
  std::map<std::string, std::string> columns;

  friend bool operator==(const Record&, const Record&) = default;
};

// A conjunction of equality filters, ordered by id, with keyset pagination.
struct Query {
  std::vector<std::pair<std::string, std::string>> equals;  // column = value, all must hold.
  std::string in_column;                                    // column IN (in_values), when set.
  std::vector<std::string> in_values;
  std::string after_id;   // Only ids greater than this (for the next page).
  std::size_t limit = 0;  // 0 = no limit.

  Query& where(std::string column, std::string value) {
    equals.emplace_back(std::move(column), std::move(value));
    return *this;
  }
  Query& whereIn(std::string column, std::vector<std::string> values) {
    in_column = std::move(column);
    in_values = std::move(values);
    return *this;
  }
};

// One write in an atomic batch.
struct Mutation {
  enum class Kind { kInsert, kUpdate, kRemove };
  Kind kind = Kind::kInsert;
  Table table = Table::kWorkspaces;
  Record record;  // kUpdate/kRemove: record.version is the expected current version.
  // kRemove only: when false, the row is removed whatever its version.
  bool check_version = true;
};

// A figure a backend reports about itself (Prometheus gauge: name, help, value).
struct StoreMetric {
  std::string name;
  std::string help;
  std::int64_t value = 0;
};

// Persistent storage for the manager. Implementations: MemoryStore (kasm::kasm), SQLite
// (kasm::sqlite), PostgreSQL (kasm::postgres); all pass tests/conformance/store_conformance.
//
// Threading: every method may be called from any thread concurrently. Calls block on I/O; callers
// on an event loop run them on the blocking pool.
//
// Errors (never exceptions):
//   NotFound        get/update/remove of an id that does not exist.
//   AlreadyExists   insert of an existing id, or a duplicate non-empty unique column.
//   Aborted         update/remove whose expected version is not the current one (a lost race:
//                   re-read and retry).
//   InvalidArgument an unknown column name or an empty id.
//   Unavailable     the database cannot be reached; the call had no effect.
//   DataLoss        the database file or a row is corrupt.
// A failed apply() changes nothing: batches are all-or-nothing.
class Store {
 public:
  virtual ~Store() = default;

  // "sqlite", "postgresql", "memory".
  virtual std::string_view backendName() const = 0;
  // The schema version of the opened database.
  virtual std::int32_t schemaVersion() const = 0;

  virtual Result<Record> get(Table table, std::string_view id) = 0;
  virtual Result<std::vector<Record>> list(Table table, const Query& query) = 0;
  virtual Result<std::int64_t> count(Table table, const Query& query) = 0;

  // Applies every mutation atomically, in order. Returns the new version of each record (0 for a
  // removal).
  virtual Result<std::vector<std::int64_t>> apply(std::span<const Mutation> mutations) = 0;

  // Cheap liveness check of the backing database.
  virtual Result<void> ping() = 0;

  // Backend figures for /metrics (SQLite: the size of its write-ahead log). None by default.
  virtual std::vector<StoreMetric> metrics() { return {}; }

  // Conveniences over apply().
  Result<std::int64_t> insert(Table table, Record record);
  Result<std::int64_t> update(Table table, Record record);  // record.version = expected version.
  Result<void> remove(Table table, std::string id, std::optional<std::int64_t> expected_version);
};

// The newest schema version this build knows. Opening a database whose schema is newer fails with
// FailedPrecondition rather than risking corrupting it.
// 4: autoscale_vms, autoscale_decisions, managers, leases (tables created when missing).
// 5: agent_commands (commands for remote agents relayed between servers).
// 6: sessions.launch_key (unique: idempotent launches); a plain index beside every unique one.
inline constexpr std::int32_t kSchemaVersion = 6;

}  // namespace kasm::spi
