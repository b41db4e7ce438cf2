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
  // The database holds password hashes, hashed secrets and the installation's signing key: a
  // directory the store creates is made 0700, and the database file (whose mode SQLite gives its
  // WAL and shared-memory files) is created, or tightened when found wider, to 0600.
  bool private_files = true;
};

// Opens (creating and migrating when needed) the embedded store: one SQLite file in WAL mode.
// Component: kasm::sqlite. Errors: Unavailable (cannot open or write the file), DataLoss (not a
// SQLite database or corrupt), FailedPrecondition (schema newer than this build).
Result<std::unique_ptr<spi::Store>> openSqliteStore(const SqliteStoreOptions& options);

}  // namespace kasm
