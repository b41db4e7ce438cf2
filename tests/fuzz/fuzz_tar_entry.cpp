// Fuzzes the tar reader of the agent's file transfer (src/agent/tar.cpp), which reads what the
// engine's archive API returns for a file in a session's container: content the session controls.
//
// Input: an archive. Reading never crashes or reads out of bounds; an entry it returns holds data
// only for a regular file, never more than the archive itself. Then, as an invariant of the writer,
// an archive written around the input's first bytes (as a name and as content) reads back intact.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/tar.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kasm::agent::detail;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto entry = readFirstTarEntry(input);
  if (entry.ok()) {
    FUZZ_CHECK(entry->data.size() <= input.size());
    FUZZ_CHECK(entry->data.empty() || entry->type == '0' || entry->type == '7');
  }
  // Round trip: a name (no '/', no NUL) and content from the input.
  std::string name(input.substr(0, std::min<std::size_t>(size, 300)));
  for (char& c : name) {
    if (c == '/' || c == '\0') c = '_';
  }
  if (name.empty()) name = "x";
  const std::string tar = tarFileInDirectory("Uploads", name, input, {1000, 1000, 1700000000});
  auto file = readFirstTarEntry(std::string_view(tar).substr(512));
  FUZZ_CHECK(file.ok());
  FUZZ_CHECK(file->name == "Uploads/" + name);
  FUZZ_CHECK(file->data == input);
  FUZZ_CHECK(file->uid == 1000 && file->mode == 0644);
  return 0;
}
