// Stores: open one (memory, SQLite, PostgreSQL) and read or write model rows through Repository.
// Rows cross as (json, version) pairs.

#include <pybind11/stl.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kasm/store/memory_store.hpp"
#include "kasm/store/repository.hpp"
#ifdef KASM_PYTHON_WITH_SQLITE
#include "kasm/store/sqlite_store.hpp"
#endif
#ifdef KASM_PYTHON_WITH_POSTGRES
#include "kasm/store/postgres_store.hpp"
#endif
#include "model_kinds.hpp"

namespace kasm::python {
namespace {

using Row = std::pair<std::string, std::int64_t>;

std::shared_ptr<StoreHandle> wrap(std::unique_ptr<spi::Store> store) {
  return std::make_shared<StoreHandle>(std::shared_ptr<spi::Store>(std::move(store)), "store");
}

spi::Query makeQuery(const std::map<std::string, std::string>& where, std::size_t limit, const std::string& after_id) {
  spi::Query q;
  for (const auto& [column, value] : where) q.where(column, value);
  q.limit = limit;
  q.after_id = after_id;
  return q;
}

}  // namespace

void bindStore(py::module_& m) {
  py::class_<StoreHandle, std::shared_ptr<StoreHandle>>(m, "Store")
      .def_property_readonly("backend_name",
                             [](const StoreHandle& h) { return std::string(h.acquire()->backendName()); })
      .def_property_readonly("schema_version", [](const StoreHandle& h) { return h.acquire()->schemaVersion(); })
      .def_property_readonly("closed", &StoreHandle::closed)
      .def(
          "ping", [](const StoreHandle& h) { unwrap(h.acquire()->ping()); }, ReleaseGil())
      .def(
          "insert",
          [](const StoreHandle& h, const std::string& kind, const std::string& json) {
            auto store = h.acquire();
            return withModelKind(kind, [&]<class T>(std::type_identity<T>) {
              return unwrap(Repository(*store).insert(unwrap(fromJson<T>(json))));
            });
          },
          ReleaseGil())
      .def(
          "update",
          [](const StoreHandle& h, const std::string& kind, const std::string& json, std::int64_t expected_version) {
            auto store = h.acquire();
            return withModelKind(kind, [&]<class T>(std::type_identity<T>) {
              return unwrap(Repository(*store).update(unwrap(fromJson<T>(json)), expected_version));
            });
          },
          ReleaseGil())
      .def(
          "get",
          [](const StoreHandle& h, const std::string& kind, const std::string& id) {
            auto store = h.acquire();
            return withModelKind(kind, [&]<class T>(std::type_identity<T>) {
              auto v = unwrap(Repository(*store).get<T>(id));
              return Row{toJson(v.value), v.version};
            });
          },
          ReleaseGil())
      .def(
          "list",
          [](const StoreHandle& h, const std::string& kind, const std::map<std::string, std::string>& where,
             std::size_t limit, const std::string& after_id) {
            auto store = h.acquire();
            return withModelKind(kind, [&]<class T>(std::type_identity<T>) {
              std::vector<Row> out;
              for (auto& v : unwrap(Repository(*store).list<T>(makeQuery(where, limit, after_id)))) {
                out.emplace_back(toJson(v.value), v.version);
              }
              return out;
            });
          },
          py::arg("kind"), py::arg("where"), py::arg("limit") = 0, py::arg("after_id") = "", ReleaseGil())
      .def(
          "remove",
          [](const StoreHandle& h, const std::string& kind, const std::string& id,
             std::optional<std::int64_t> expected_version) {
            auto store = h.acquire();
            withModelKind(kind, [&]<class T>(std::type_identity<T>) {
              unwrap(Repository(*store).remove<T>(id, expected_version));
            });
          },
          py::arg("kind"), py::arg("id"), py::arg("expected_version") = py::none(), ReleaseGil())
      .def(
          "close", [](StoreHandle& h) { h.release(); }, ReleaseGil(),
          "Drops this handle's reference; managers opened on the store keep it alive until they close.");

  m.def("open_memory_store", [] { return wrap(makeMemoryStore()); });
  m.def(
      "open_sqlite_store",
      [](const std::string& path) -> std::shared_ptr<StoreHandle> {
#ifdef KASM_PYTHON_WITH_SQLITE
        return wrap(unwrap(openSqliteStore({.path = path})));
#else
        (void)path;
        throw CallError(failedPrecondition("this build of kasm has no SQLite store (KASM_WITH_SQLITE=OFF)"));
#endif
      },
      ReleaseGil());
  m.def(
      "open_postgres_store",
      [](const std::string& url, int pool_size) -> std::shared_ptr<StoreHandle> {
#ifdef KASM_PYTHON_WITH_POSTGRES
        return wrap(unwrap(openPostgresStore({.url = url, .pool_size = pool_size})));
#else
        (void)url;
        (void)pool_size;
        throw CallError(failedPrecondition("this build of kasm has no PostgreSQL store (KASM_WITH_POSTGRES=OFF)"));
#endif
      },
      py::arg("url"), py::arg("pool_size") = 4, ReleaseGil());
}

}  // namespace kasm::python
