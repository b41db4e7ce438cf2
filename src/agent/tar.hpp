#pragma once

// The few tar archives the agent exchanges with the engine's archive API: writing a file (and its
// directory) to unpack into a container, and reading the one file the engine sends back. Archives
// read here come from a session's container, so reading is bounds-checked throughout (fuzzed by
// tests/fuzz/fuzz_tar_entry.cpp).

#include <cstdint>
#include <string>
#include <string_view>

#include "kasm/core/result.hpp"

namespace kasm::agent::detail {

struct TarOwner {
  std::uint32_t uid = 1000;
  std::uint32_t gid = 1000;
  std::int64_t mtime = 0;  // Seconds since the epoch.
};

// An archive holding directory `dir` (mode 0755) and `dir`/`name` (mode 0644) with `data`, both
// owned by `owner`. Names longer than the ustar fields carry a PAX "path" record.
std::string tarFileInDirectory(std::string_view dir, std::string_view name, std::string_view data,
                               const TarOwner& owner);

struct TarEntry {
  std::string name;
  char type = '0';  // '0' regular file, '5' directory, '2' symbolic link, ...
  std::uint32_t mode = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int64_t mtime = 0;
  std::string data;  // Regular files only.
};

// The first entry of `archive` (PAX and GNU long-name records applied). InvalidArgument for a
// malformed or truncated archive (bad checksum, a size that runs past the end), NotFound for an
// empty one.
Result<TarEntry> readFirstTarEntry(std::string_view archive);

}  // namespace kasm::agent::detail
