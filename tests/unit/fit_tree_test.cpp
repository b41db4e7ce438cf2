// The scheduler's private B+tree, checked against a plain ordered map: every operation keeps the
// structure sound and every query answers what a scan of the map answers.
#include "sched/fit_tree.hpp"

#include <gtest/gtest.h>

#include <iterator>
#include <map>

#include "kasm/core/random.hpp"

namespace kasm::sched::detail {
namespace {

using Reference = std::map<Key, Resources>;

std::optional<Key> scanFirstFit(const Reference& ref, const Resources& need, const std::optional<Key>& bound) {
  for (const auto& [k, free] : ref) {
    if (bound && !(k < *bound)) return std::nullopt;
    if (free.fits(need)) return k;
  }
  return std::nullopt;
}

Resources randomFree(SeededRandom& gen) {
  return Resources{static_cast<std::int64_t>(gen.uniform(64'001)),
                   static_cast<std::int64_t>(gen.uniform(257)) * Resources::kGiB / 4,
                   static_cast<std::int32_t>(gen.uniform(3))};
}

Key randomKey(SeededRandom& gen, std::uint32_t slot, std::int64_t spread) {
  return Key{static_cast<std::int64_t>(gen.uniform(static_cast<std::uint64_t>(spread))) - spread / 2,
             static_cast<std::uint32_t>(gen.uniform(1u << 16)), slot};
}

void expectSameAsReference(const FitTree& tree, const Reference& ref) {
  ASSERT_EQ(tree.checkInvariants(), "");
  ASSERT_EQ(tree.size(), ref.size());
  std::vector<Key> keys;
  tree.collect(keys);
  ASSERT_EQ(keys.size(), ref.size());
  auto it = ref.begin();
  for (const Key& k : keys) ASSERT_EQ(k, (it++)->first);
  Resources max;
  for (const auto& [k, free] : ref) {
    max.millicores = std::max(max.millicores, free.millicores);
    max.memory_bytes = std::max(max.memory_bytes, free.memory_bytes);
    max.gpus = std::max(max.gpus, free.gpus);
  }
  EXPECT_EQ(tree.maxFree(), max);
}

TEST(FitTree, EmptyTreeFindsNothing) {
  FitTree tree;
  EXPECT_TRUE(tree.empty());
  EXPECT_EQ(tree.firstFit(Resources{}, std::nullopt), std::nullopt);
  tree.erase(Key{0, 0, 0});  // Absent: ignored.
  EXPECT_EQ(tree.checkInvariants(), "");
  EXPECT_EQ(tree.maxFree(), Resources{});
}

TEST(FitTree, FirstFitSkipsEntriesThatDoNotFitAndHonoursTheBound) {
  FitTree tree;
  // Keys 0..99 in order; only every tenth entry has a GPU.
  for (std::uint32_t i = 0; i < 100; ++i)
    tree.insert(Key{static_cast<std::int64_t>(i), 0, i}, Resources{1000, Resources::kGiB, i % 10 == 0 ? 1 : 0});
  ASSERT_EQ(tree.checkInvariants(), "");
  const Resources gpu{500, Resources::kMiB, 1};
  EXPECT_EQ(tree.firstFit(gpu, std::nullopt)->slot, 0u);
  tree.erase(Key{0, 0, 0});
  EXPECT_EQ(tree.firstFit(gpu, std::nullopt)->slot, 10u);
  EXPECT_EQ(tree.firstFit(gpu, Key{10, 0, 10}), std::nullopt);  // Only keys below the bound count.
  EXPECT_EQ(tree.firstFit(gpu, Key{10, 0, 11})->slot, 10u);
  EXPECT_EQ(tree.firstFit(Resources{2000, 0, 0}, std::nullopt), std::nullopt);
}

TEST(FitTree, RekeyWithinALeafAndAcrossLeaves) {
  FitTree tree;
  Reference ref;
  for (std::uint32_t i = 0; i < 200; ++i) {
    const Key k{static_cast<std::int64_t>(i) * 10, 0, i};
    const Resources free{1000, Resources::kGiB, 0};
    tree.insert(k, free);
    ref.emplace(k, free);
  }
  // A small move stays in the leaf; a large one goes to another leaf.
  for (std::int64_t delta : {1, -1, 5, -5, 1000, -1000, 1995, -1995}) {
    const auto first = ref.begin()->first;
    const auto mid = std::next(ref.begin(), 100)->first;
    for (Key from : {first, mid}) {
      Key to = from;
      to.neg_score += delta;
      if (ref.count(to)) continue;
      const Resources free{static_cast<std::int64_t>(100 + ref.size()), Resources::kGiB / 2, 1};
      tree.rekey(from, to, free);
      ref.erase(from);
      ref.emplace(to, free);
      expectSameAsReference(tree, ref);
    }
  }
}

// Random operations (insert, erase, re-key) against the reference map, with invariants and queries
// checked after every one; the key spread makes some re-keys stay in their leaf and others move.
TEST(FitTree, RandomOperationsMatchAnOrderedMap) {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    SeededRandom gen(seed);
    FitTree tree;
    Reference ref;
    std::vector<Key> present;
    std::uint32_t next_slot = 0;
    const std::int64_t spread = seed % 3 == 0 ? 50 : 1'000'000;
    const int target = seed % 2 ? 40 : 700;  // Small trees (shallow, root splits) and deeper ones.
    for (int step = 0; step < 4000; ++step) {
      const auto op = gen.uniform(10);
      const bool grow = static_cast<int>(present.size()) < target;
      if (present.empty() || (grow && op < 6) || (!grow && op < 3)) {
        const Key k = randomKey(gen, next_slot++, spread);
        const Resources free = randomFree(gen);
        tree.insert(k, free);
        ref.emplace(k, free);
        present.push_back(k);
      } else if (op < 7) {
        const std::size_t i = gen.uniform(present.size());
        tree.erase(present[i]);
        ref.erase(present[i]);
        present[i] = present.back();
        present.pop_back();
      } else {
        const std::size_t i = gen.uniform(present.size());
        Key to = present[i];
        to.neg_score += static_cast<std::int64_t>(gen.uniform(2001)) - 1000;
        to.salt = static_cast<std::uint32_t>(gen.uniform(1u << 16));
        const Resources free = randomFree(gen);
        tree.rekey(present[i], to, free);
        ref.erase(present[i]);
        ref.emplace(to, free);
        present[i] = to;
      }
      if (step % 50 == 0 || present.size() < 40) {
        expectSameAsReference(tree, ref);
      } else {
        ASSERT_EQ(tree.checkInvariants(), "") << "seed " << seed << " step " << step;
      }
      for (int q = 0; q < 3; ++q) {
        const Resources need{static_cast<std::int64_t>(gen.uniform(70'000)),
                             static_cast<std::int64_t>(gen.uniform(70)) * Resources::kGiB,
                             static_cast<std::int32_t>(gen.uniform(3))};
        std::optional<Key> bound;
        if (gen.uniform(2) == 0) bound = randomKey(gen, gen.uniform(1u << 20) & 0xffffffffu, spread);
        ASSERT_EQ(tree.firstFit(need, bound), scanFirstFit(ref, need, bound)) << "seed " << seed << " step " << step;
      }
    }
    // Drain completely: the tree shrinks back to nothing.
    for (const Key& k : present) {
      tree.erase(k);
      ref.erase(k);
      ASSERT_EQ(tree.checkInvariants(), "");
    }
    EXPECT_TRUE(tree.empty());
    EXPECT_EQ(tree.firstFit(Resources{}, std::nullopt), std::nullopt);
  }
}

// Thousands of keys make inner nodes split, merge and lend children to each other as the tree grows
// to four levels and shrinks back, in waves.
TEST(FitTree, GrowsAndShrinksThroughSeveralLevels) {
  SeededRandom gen(7);
  FitTree tree;
  Reference ref;
  std::vector<Key> present;
  std::uint32_t next_slot = 0;
  for (int wave = 0; wave < 3; ++wave) {
    for (int i = 0; i < 12'000; ++i) {
      const Key k = randomKey(gen, next_slot++, 1'000'000);
      const Resources free = randomFree(gen);
      tree.insert(k, free);
      ref.emplace(k, free);
      present.push_back(k);
      if (i % 500 == 0) {
        ASSERT_EQ(tree.checkInvariants(), "") << "wave " << wave << " insert " << i;
      }
    }
    expectSameAsReference(tree, ref);
    const std::size_t keep = wave == 2 ? 0 : 300;
    for (int i = 0; present.size() > keep; ++i) {
      const std::size_t j = gen.uniform(present.size());
      tree.erase(present[j]);
      ref.erase(present[j]);
      present[j] = present.back();
      present.pop_back();
      if (i % 97 == 0) {
        ASSERT_EQ(tree.checkInvariants(), "") << "wave " << wave << " erase " << i;
        const Resources need{static_cast<std::int64_t>(gen.uniform(70'000)), 0,
                             static_cast<std::int32_t>(gen.uniform(3))};
        ASSERT_EQ(tree.firstFit(need, std::nullopt), scanFirstFit(ref, need, std::nullopt));
      }
    }
    expectSameAsReference(tree, ref);
  }
  EXPECT_TRUE(tree.empty());
}

TEST(FitTree, ClearEmptiesAndTheTreeIsReusable) {
  FitTree tree;
  for (std::uint32_t i = 0; i < 1000; ++i) tree.insert(Key{-static_cast<std::int64_t>(i), i, i}, Resources{i, i, 0});
  ASSERT_EQ(tree.checkInvariants(), "");
  EXPECT_EQ(tree.firstFit(Resources{}, std::nullopt)->slot, 999u);
  EXPECT_EQ(tree.maxFree(), (Resources{999, 999, 0}));
  tree.clear();
  EXPECT_TRUE(tree.empty());
  EXPECT_EQ(tree.checkInvariants(), "");
  tree.insert(Key{1, 1, 1}, Resources{1, 1, 1});
  EXPECT_EQ(tree.firstFit(Resources{1, 1, 1}, std::nullopt)->slot, 1u);
}

}  // namespace
}  // namespace kasm::sched::detail
