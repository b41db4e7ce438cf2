#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kasm/core/result.hpp"
#include "kasm/model/json.hpp"
#include "kasm/model/model.hpp"
#include "kasm/spi/store.hpp"

namespace kasm {

// A model value with the store version it was read at; pass the version back to update it.
template <class T>
struct Versioned {
  T value;
  std::int64_t version = 0;
};

// How each model type maps onto a store table: its id and its queryable columns.
template <class T>
struct EntityTraits;

#define KASM_ENTITY(T, TABLE)                                      \
  template <>                                                      \
  struct EntityTraits<T> {                                         \
    static constexpr spi::Table kTable = spi::Table::TABLE;        \
    static std::string id(const T& v);                             \
    static std::map<std::string, std::string> columns(const T& v); \
  }
KASM_ENTITY(Workspace, kWorkspaces);
KASM_ENTITY(Zone, kZones);
KASM_ENTITY(Agent, kAgents);
KASM_ENTITY(Session, kSessions);
KASM_ENTITY(User, kUsers);
KASM_ENTITY(Group, kGroups);
KASM_ENTITY(ApiKey, kApiKeys);
KASM_ENTITY(Server, kServers);
KASM_ENTITY(ServerPool, kServerPools);
KASM_ENTITY(StagingConfig, kStagingConfigs);
KASM_ENTITY(AutoscaleConfig, kAutoscaleConfigs);
KASM_ENTITY(LicenseRecord, kLicenses);
KASM_ENTITY(Setting, kSettings);
KASM_ENTITY(ShareIndex, kShareIndex);
KASM_ENTITY(AutoscaleVm, kAutoscaleVms);
KASM_ENTITY(AutoscaleDecision, kAutoscaleDecisions);
KASM_ENTITY(ManagerNode, kManagers);
KASM_ENTITY(Lease, kLeases);
KASM_ENTITY(AgentCommandRow, kAgentCommands);
#undef KASM_ENTITY

// Typed access to a Store: validates on write, encodes to JSON, fills the indexed columns, and
// decodes on read. Thread-safe when the Store is.
class Repository {
 public:
  explicit Repository(spi::Store& store) : store_(store) {}

  spi::Store& store() { return store_; }

  template <class T>
  Result<Versioned<T>> get(std::string_view id) {
    KASM_ASSIGN_OR_RETURN(spi::Record rec, store_.get(EntityTraits<T>::kTable, id));
    return decode<T>(rec);
  }

  template <class T>
  Result<std::vector<Versioned<T>>> list(const spi::Query& query = {}) {
    KASM_ASSIGN_OR_RETURN(std::vector<spi::Record> recs, store_.list(EntityTraits<T>::kTable, query));
    std::vector<Versioned<T>> out;
    out.reserve(recs.size());
    for (const auto& rec : recs) {
      KASM_ASSIGN_OR_RETURN(Versioned<T> v, decode<T>(rec));
      out.push_back(std::move(v));
    }
    return out;
  }

  template <class T>
  Result<std::int64_t> count(const spi::Query& query = {}) {
    return store_.count(EntityTraits<T>::kTable, query);
  }

  // Validates and inserts; returns the new version (1).
  template <class T>
  Result<std::int64_t> insert(const T& value) {
    KASM_ASSIGN_OR_RETURN(spi::Mutation m, insertOp(value));
    return store_.insert(m.table, std::move(m.record));
  }

  // Validates and writes if the stored version is still `expected_version`; returns the new one.
  template <class T>
  Result<std::int64_t> update(const T& value, std::int64_t expected_version) {
    KASM_ASSIGN_OR_RETURN(spi::Mutation m, updateOp(value, expected_version));
    return store_.update(m.table, std::move(m.record));
  }

  template <class T>
  Result<void> remove(std::string id, std::optional<std::int64_t> expected_version = std::nullopt) {
    return store_.remove(EntityTraits<T>::kTable, std::move(id), expected_version);
  }

  // Mutations for atomic batches through store().apply().
  template <class T>
  static Result<spi::Mutation> insertOp(const T& value) {
    return makeOp(value, spi::Mutation::Kind::kInsert, 0);
  }
  template <class T>
  static Result<spi::Mutation> updateOp(const T& value, std::int64_t expected_version) {
    return makeOp(value, spi::Mutation::Kind::kUpdate, expected_version);
  }
  template <class T>
  static spi::Mutation removeOp(std::string id, std::optional<std::int64_t> expected_version) {
    spi::Mutation m;
    m.kind = spi::Mutation::Kind::kRemove;
    m.table = EntityTraits<T>::kTable;
    m.record.id = std::move(id);
    m.record.version = expected_version.value_or(0);
    m.check_version = expected_version.has_value();
    return m;
  }

 private:
  template <class T>
  static Result<spi::Mutation> makeOp(const T& value, spi::Mutation::Kind kind, std::int64_t version) {
    KASM_RETURN_IF_ERROR(value.validate());
    spi::Mutation m;
    m.kind = kind;
    m.table = EntityTraits<T>::kTable;
    m.record.id = EntityTraits<T>::id(value);
    m.record.version = version;
    m.record.data = toJson(value);
    m.record.columns = EntityTraits<T>::columns(value);
    return m;
  }

  template <class T>
  static Result<Versioned<T>> decode(const spi::Record& rec) {
    auto value = fromJson<T>(rec.data);
    if (!value.ok()) {
      return dataLoss("stored " + std::string(spi::tableSchema(EntityTraits<T>::kTable).name) + " row '" + rec.id +
                      "' cannot be read: " + value.error().message());
    }
    return Versioned<T>{std::move(value).value(), rec.version};
  }

  spi::Store& store_;
};

}  // namespace kasm
