#pragma once

// Dense indexes for the names a placement request carries (zone ids, image references). Every
// decision looks up one or two of them; std::unordered_map<std::string> pays a modulo by a prime and
// a chain of nodes per lookup, about twice the time of this flat open-addressing table of (hash,
// index) pairs, a power of two in size, at most half full and probed linearly. Names are never
// removed (the scheduler interns zones and images for its lifetime). Private to the scheduler.

#include <cstdint>
#include <cstring>
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

  // Eight bytes at a time, the tail as two overlapping four-byte words (or three single bytes), with
  // the length mixed in first: names are mostly shorter than 16 bytes, so this is a few multiplies.
  static std::uint64_t hash(std::string_view s) {
    constexpr std::uint64_t kMul1 = 0xff51afd7ed558ccdull;
    constexpr std::uint64_t kMul2 = 0xc4ceb9fe1a85ec53ull;
    const char* p = s.data();
    std::size_t n = s.size();
    std::uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * kMul1);
    for (; n >= 8; p += 8, n -= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      h = (h ^ w) * kMul1;
      h ^= h >> 32;
    }
    std::uint64_t tail = 0;
    if (n >= 4) {
      std::uint32_t a, b;
      std::memcpy(&a, p, 4);
      std::memcpy(&b, p + n - 4, 4);
      tail = (std::uint64_t{a} << 32) | b;
    } else if (n > 0) {
      const auto byte = [p](std::size_t i) { return std::uint64_t{static_cast<unsigned char>(p[i])}; };
      tail = (byte(0) << 16) | (byte(n / 2) << 8) | byte(n - 1);
    }
    h = (h ^ tail) * kMul2;
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
