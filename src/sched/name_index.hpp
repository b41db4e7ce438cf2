#pragma once

// Dense indexes for the names a placement request carries (zone ids, image references). Every
// decision looks up one or two of them, and std::unordered_map<std::string> spends more there than
// the rest of the decision outside the trees: a byte hash, a modulo by a prime, a chain of nodes and
// a memcmp call. This is one flat open-addressing table of (hash, index) pairs, a power of two in
// size and at most half full, probed linearly with an FNV-1a hash. Names are never removed (the
// scheduler interns zones and images for its lifetime). Private to the scheduler.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kasm::sched::detail {

class NameIndex {
 public:
  static constexpr std::uint32_t kAbsent = UINT32_MAX;

  // The index of `name`, or kAbsent.
  std::uint32_t find(std::string_view name) const {
    if (table_.empty()) return kAbsent;
    const std::uint64_t h = hash(name);
    const std::size_t mask = table_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const Entry& e = table_[i];
      if (e.index == kAbsent) return kAbsent;
      if (e.hash == h && names_[e.index] == name) return e.index;
    }
  }

  // The index of `name`, adding it (as size()) when it is new.
  std::uint32_t intern(std::string_view name) {
    if (const std::uint32_t found = find(name); found != kAbsent) return found;
    if ((names_.size() + 1) * 2 > table_.size()) grow();
    const auto index = static_cast<std::uint32_t>(names_.size());
    names_.emplace_back(name);
    place(hash(name), index);
    return index;
  }

  std::size_t size() const { return names_.size(); }
  const std::string& name(std::uint32_t index) const { return names_[index]; }

 private:
  struct Entry {
    std::uint64_t hash = 0;
    std::uint32_t index = kAbsent;
  };

  static std::uint64_t hash(std::string_view s) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const char c : s) {
      h ^= static_cast<unsigned char>(c);
      h *= 0x100000001b3ull;
    }
    // FNV's low bits mix poorly for short keys; fold the high half in before masking.
    return h ^ (h >> 29);
  }

  void place(std::uint64_t h, std::uint32_t index) {
    const std::size_t mask = table_.size() - 1;
    std::size_t i = h & mask;
    while (table_[i].index != kAbsent) i = (i + 1) & mask;
    table_[i] = Entry{h, index};
  }

  void grow() {
    table_.assign(table_.empty() ? 16 : table_.size() * 2, Entry{});
    for (std::uint32_t i = 0; i < names_.size(); ++i) place(hash(names_[i]), i);
  }

  std::vector<std::string> names_;
  std::vector<Entry> table_;
};

}  // namespace kasm::sched::detail
