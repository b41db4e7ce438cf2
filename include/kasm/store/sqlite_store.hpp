#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "kasm/core/result.hpp"
#include "kasm/spi/store.hpp"

namespace kasm {

struct SqliteStoreOptions {
  // Path of the database file; created with its directory when missing. ":memory:" is accepted
  // for tests.
  std::string path;
  // How long a write waits for another process holding the write lock.
  std::chrono::milliseconds busy_timeout{5000};
};

// Opens (creating and migrating when needed) the embedded store: one SQLite file in WAL mode.
// Component: kasm::sqlite. Errors: Unavailable (cannot open or write the file), DataLoss (not a
// SQLite database or corrupt), FailedPrecondition (schema newer than this build).
Result<std::unique_ptr<spi::Store>> openSqliteStore(const SqliteStoreOptions& options);

}  // namespace kasm
