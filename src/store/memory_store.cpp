#include "kasm/store/memory_store.hpp"

#include <algorithm>
#include <array>
#include <mutex>
#include <map>
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
    // Work on a copy of the touched tables so a failure half-way changes nothing.
    std::array<std::optional<Rows>, spi::kTableCount> staged;
    std::vector<std::int64_t> versions;
    for (const auto& m : mutations) {
      auto& slot = staged[static_cast<std::size_t>(m.table)];
      if (!slot) slot = tables_[static_cast<std::size_t>(m.table)];
      Rows& rows = *slot;
      const std::string& id = m.record.id;
      auto it = rows.find(id);
      switch (m.kind) {
        case spi::Mutation::Kind::kInsert: {
          if (it != rows.end()) return sql::duplicateError(m.table, id, "id exists");
          KASM_RETURN_IF_ERROR(checkUnique(rows, m.table, m.record));
          spi::Record r = normalized(m.table, m.record);
          r.version = 1;
          rows.emplace(id, std::move(r));
          versions.push_back(1);
          break;
        }
        case spi::Mutation::Kind::kUpdate: {
          if (it == rows.end()) return sql::missingRowError(m.table, id);
          if (it->second.version != m.record.version) return sql::staleVersionError(m.table, id, m.record.version);
          KASM_RETURN_IF_ERROR(checkUnique(rows, m.table, m.record));
          spi::Record r = normalized(m.table, m.record);
          r.version = it->second.version + 1;
          versions.push_back(r.version);
          it->second = std::move(r);
          break;
        }
        case spi::Mutation::Kind::kRemove: {
          if (it == rows.end()) return sql::missingRowError(m.table, id);
          if (m.check_version && it->second.version != m.record.version) {
            return sql::staleVersionError(m.table, id, m.record.version);
          }
          rows.erase(it);
          versions.push_back(0);
          break;
        }
      }
    }
    for (std::size_t i = 0; i < staged.size(); ++i) {
      if (staged[i]) tables_[i] = std::move(*staged[i]);
    }
    return versions;
  }

  Result<void> ping() override { return {}; }

 private:
  using Rows = std::map<std::string, spi::Record, std::less<>>;

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

std::unique_ptr<spi::Store> makeMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace kasm
