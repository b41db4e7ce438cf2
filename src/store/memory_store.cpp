#include "kasm/store/memory_store.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "store/sql.hpp"

namespace kasm {
namespace {

class MemoryStore final : public spi::Store {
 public:
  std::string_view backendName() const override { return "memory"; }
  std::int32_t schemaVersion() const override { return spi::kSchemaVersion; }

  Result<spi::Record> get(spi::Table table, std::string_view id) override {
    std::shared_lock lock(mu_);
    const auto& rows = tables_[static_cast<std::size_t>(table)];
    auto it = rows.find(std::string(id));
    if (it == rows.end()) return sql::missingRowError(table, std::string(id));
    return it->second;
  }

  Result<std::vector<spi::Record>> list(spi::Table table, const spi::Query& query) override {
    KASM_RETURN_IF_ERROR(sql::checkQuery(table, query));
    std::shared_lock lock(mu_);
    const auto& rows = tables_[static_cast<std::size_t>(table)];
    std::vector<spi::Record> out;
    auto it = query.after_id.empty() ? rows.begin() : rows.upper_bound(query.after_id);
    for (; it != rows.end(); ++it) {
      if (!matches(it->second, query)) continue;
      out.push_back(it->second);
      if (query.limit > 0 && out.size() >= query.limit) break;
    }
    return out;
  }

  Result<std::int64_t> count(spi::Table table, const spi::Query& query) override {
    spi::Query q = query;
    q.limit = 0;
    KASM_ASSIGN_OR_RETURN(auto rows, list(table, q));
    return static_cast<std::int64_t>(rows.size());
  }

  Result<std::vector<std::int64_t>> apply(std::span<const spi::Mutation> mutations) override {
    for (const auto& m : mutations) KASM_RETURN_IF_ERROR(sql::checkRecord(m.table, m.record));
    std::unique_lock lock(mu_);
    // Apply in place and keep an undo log, so a failure half-way restores every touched row.
    UndoLog undo;
    auto rollback = [&] {
      for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
        Rows& rows = tables_[static_cast<std::size_t>(it->first)];
        if (it->second.second)
          rows[it->second.first] = std::move(*it->second.second);
        else
          rows.erase(it->second.first);
      }
    };
    std::vector<std::int64_t> versions;
    for (const auto& m : mutations) {
      auto v = applyOne(m, undo);
      if (!v.ok()) {
        rollback();
        return std::move(v).error();
      }
      versions.push_back(*v);
    }
    return versions;
  }

  Result<void> ping() override { return {}; }

 private:
  using Rows = std::map<std::string, spi::Record, std::less<>>;
  using UndoLog = std::vector<std::pair<spi::Table, std::pair<std::string, std::optional<spi::Record>>>>;

  Result<std::int64_t> applyOne(const spi::Mutation& m, UndoLog& undo) {
    Rows& rows = tables_[static_cast<std::size_t>(m.table)];
    const std::string& id = m.record.id;
    auto it = rows.find(id);
    switch (m.kind) {
      case spi::Mutation::Kind::kInsert: {
        if (it != rows.end()) return sql::duplicateError(m.table, id, "id exists");
        KASM_RETURN_IF_ERROR(checkUnique(rows, m.table, m.record));
        spi::Record r = normalized(m.table, m.record);
        r.version = 1;
        undo.push_back({m.table, {id, std::nullopt}});
        rows.emplace(id, std::move(r));
        return std::int64_t{1};
      }
      case spi::Mutation::Kind::kUpdate: {
        if (it == rows.end()) return sql::missingRowError(m.table, id);
        if (it->second.version != m.record.version) return sql::staleVersionError(m.table, id, m.record.version);
        KASM_RETURN_IF_ERROR(checkUnique(rows, m.table, m.record));
        spi::Record r = normalized(m.table, m.record);
        r.version = it->second.version + 1;
        undo.push_back({m.table, {id, it->second}});
        it->second = std::move(r);
        return it->second.version;
      }
      case spi::Mutation::Kind::kRemove: {
        if (it == rows.end()) return sql::missingRowError(m.table, id);
        if (m.check_version && it->second.version != m.record.version) {
          return sql::staleVersionError(m.table, id, m.record.version);
        }
        undo.push_back({m.table, {id, std::move(it->second)}});
        rows.erase(it);
        return std::int64_t{0};
      }
    }
    return internalError("unknown mutation kind");
  }

  static spi::Record normalized(spi::Table table, const spi::Record& in) {
    spi::Record r;
    r.id = in.id;
    r.data = in.data;
    const auto values = sql::columnValues(table, in);
    const auto& s = spi::tableSchema(table);
    for (std::size_t i = 0; i < s.columns.size(); ++i) r.columns[std::string(s.columns[i])] = values[i];
    return r;
  }

  static Result<void> checkUnique(const Rows& rows, spi::Table table, const spi::Record& rec) {
    for (auto col : spi::tableSchema(table).unique_columns) {
      auto it = rec.columns.find(std::string(col));
      if (it == rec.columns.end() || it->second.empty()) continue;
      for (const auto& [id, other] : rows) {
        if (id == rec.id) continue;
        auto o = other.columns.find(std::string(col));
        if (o != other.columns.end() && o->second == it->second) {
          return sql::duplicateError(table, rec.id, std::string(col) + " '" + it->second + "' is taken");
        }
      }
    }
    return {};
  }

  static bool matches(const spi::Record& r, const spi::Query& q) {
    auto value = [&](const std::string& col) -> const std::string& {
      if (col == "id") return r.id;
      static const std::string kEmpty;
      auto it = r.columns.find(col);
      return it == r.columns.end() ? kEmpty : it->second;
    };
    for (const auto& [k, v] : q.equals) {
      if (value(k) != v) return false;
    }
    if (!q.in_column.empty()) {
      const auto& v = value(q.in_column);
      if (std::find(q.in_values.begin(), q.in_values.end(), v) == q.in_values.end()) return false;
    }
    return true;
  }

  std::shared_mutex mu_;
  std::array<Rows, spi::kTableCount> tables_;
};

}  // namespace

std::unique_ptr<spi::Store> makeMemoryStore() {
  return std::make_unique<MemoryStore>();
}

}  // namespace kasm
