// The scheduler's flat name table, checked against std::unordered_map.
#include "sched/name_index.hpp"

#include <gtest/gtest.h>

#include <unordered_map>

#include "kasm/core/random.hpp"

namespace kasm::sched::detail {
namespace {

TEST(NameIndex, EmptyFindsNothing) {
  NameIndex index;
  EXPECT_EQ(index.find("zone1"), NameIndex::kAbsent);
  EXPECT_EQ(index.find(""), NameIndex::kAbsent);
  EXPECT_EQ(index.size(), 0u);
}

TEST(NameIndex, InternGivesDenseStableIndexes) {
  NameIndex index;
  EXPECT_EQ(index.intern("east"), 0u);
  EXPECT_EQ(index.intern("west"), 1u);
  EXPECT_EQ(index.intern("east"), 0u);  // Already there.
  EXPECT_EQ(index.intern(""), 2u);      // The empty name is a name like any other.
  EXPECT_EQ(index.find("west"), 1u);
  EXPECT_EQ(index.find("West"), NameIndex::kAbsent);
  EXPECT_EQ(index.find("wes"), NameIndex::kAbsent);
  EXPECT_EQ(index.name(1), "west");
  EXPECT_EQ(index.size(), 3u);
}

// Thousands of names (short, long, sharing prefixes) through several rehashes: every one keeps its
// index, and names never interned are not found.
TEST(NameIndex, MatchesAnUnorderedMapThroughGrowth) {
  SeededRandom gen(3);
  NameIndex index;
  std::unordered_map<std::string, std::uint32_t> ref;
  for (int i = 0; i < 5000; ++i) {
    std::string name;
    switch (gen.uniform(3)) {
      case 0: name = "zone" + std::to_string(gen.uniform(3000)); break;
      case 1: name = "registry.example/desktop:" + std::to_string(gen.uniform(3000)); break;
      default: name = std::string(gen.uniform(4), 'a') + std::to_string(gen.uniform(100)); break;
    }
    const auto expected = ref.try_emplace(name, static_cast<std::uint32_t>(ref.size())).first->second;
    ASSERT_EQ(index.intern(name), expected) << name;
  }
  ASSERT_EQ(index.size(), ref.size());
  for (const auto& [name, idx] : ref) {
    ASSERT_EQ(index.find(name), idx) << name;
    ASSERT_EQ(index.name(idx), name);
  }
  for (int i = 0; i < 1000; ++i) {
    const std::string absent = "never-" + std::to_string(i);
    EXPECT_EQ(index.find(absent), NameIndex::kAbsent);
  }
}

}  // namespace
}  // namespace kasm::sched::detail
