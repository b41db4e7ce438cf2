#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "kasm/core/result.hpp"
#include "kasm/spi/store.hpp"

namespace kasm {

struct PostgresStoreOptions {
  // libpq connection URL, e.g. "postgresql://kasm:secret@127.0.0.1:5432/kasm".
  std::string url;
  // Connections kept open; callers beyond this wait for a free one.
  int pool_size = 4;
  // How long a caller waits for a free connection before Unavailable.
  std::chrono::milliseconds acquire_timeout{10000};
};

// Opens the scale-out store on PostgreSQL and applies migrations (under an advisory lock, so several
// servers may start at once). Component: kasm::postgres. Errors: Unavailable (server down, wrong
// password: the message carries the server's reason), FailedPrecondition (schema newer than this
// build), InvalidArgument (malformed URL).
Result<std::unique_ptr<spi::Store>> openPostgresStore(const PostgresStoreOptions& options);

}  // namespace kasm
