#pragma once

#include <memory>

#include "kasm/spi/store.hpp"

namespace kasm {

// A Store held in process memory: the test double of choice and a valid backend for embedders that
// do not need persistence. Passes the same conformance suite as SQLite and PostgreSQL.
std::unique_ptr<spi::Store> makeMemoryStore();

}  // namespace kasm
