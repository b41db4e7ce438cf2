#pragma once

// An ordered set of agents (by placement key, best first) that also answers "the best agent whose
// free resources fit this request" without walking past agents that cannot fit. Private to the
// scheduler.
//
// A B+tree of fan-out 16 over a flat vector of nodes: leaves hold up to 16 (key, free) entries in key
// order, inner nodes up to 16 children with a separator key and the component-wise maximum of free
// CPU, memory and GPUs of each child's subtree, so whole subtrees that cannot fit are skipped. A pool
// of 10,000 agents is three levels deep, and a level costs a few adjacent cache lines instead of one
// miss per binary-tree level. Deletion rebalances top-down (merge or redistribute before descending)
// so every node but the root stays at least kMinFill full.

#include <algorithm>
#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kasm/core/resources.hpp"

namespace kasm::sched::detail {

struct Key {
  std::int64_t neg_score;
  std::uint32_t salt;
  std::uint32_t slot;
  // Lexicographic (neg_score, salt, slot), computed without branches to mispredict in node scans:
  // the score with its sign bit flipped orders as an unsigned word, salt and slot form the second.
  friend bool operator<(const Key& a, const Key& b) {
    constexpr std::uint64_t kSign = std::uint64_t{1} << 63;
    const std::uint64_t ah = static_cast<std::uint64_t>(a.neg_score) ^ kSign;
    const std::uint64_t bh = static_cast<std::uint64_t>(b.neg_score) ^ kSign;
    const std::uint64_t al = (std::uint64_t{a.salt} << 32) | a.slot;
    const std::uint64_t bl = (std::uint64_t{b.salt} << 32) | b.slot;
    return (ah < bh) | ((ah == bh) & (al < bl));
  }
  friend bool operator==(const Key&, const Key&) = default;
};

class FitTree {
 public:
  static constexpr int kFanout = 16;
  // Nodes other than the root never hold fewer entries than this.
  static constexpr int kMinFill = 5;

  // Adds `key` (not present yet) with its free resources.
  void insert(const Key& key, const Resources& free);
  // Removes `key`; a key that is not present is ignored.
  void erase(const Key& key);
  // Replaces `from` (present) by `to` with new free resources: what a reservation or release does to
  // an agent. Done inside the leaf, without rebalancing, when `to` belongs to the same leaf.
  void rekey(const Key& from, const Key& to, const Resources& free);

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  // Component-wise maximum of the free resources of all members (zero when empty).
  Resources maxFree() const { return Resources{root_max_.millicores, root_max_.memory_bytes, root_max_.gpus}; }
  // The smallest key whose free resources fit `need`, considering only keys < `bound` when given.
  std::optional<Key> firstFit(const Resources& need, const std::optional<Key>& bound) const;
  void clear();
  // Keys in order.
  void collect(std::vector<Key>& out) const;
  // Empty when the structure is sound (order, separators, fill, maxima, size); otherwise what is
  // wrong. For tests.
  std::string checkInvariants() const;

 private:
  // Free resources in 16 bytes (millicores fit 32 bits: Resources::validate caps them at 10^9), so
  // four fit in a cache line.
  struct Cap {
    std::int64_t memory_bytes = 0;
    std::int32_t millicores = 0;
    std::int32_t gpus = 0;
    static Cap of(const Resources& r) {
      return {r.memory_bytes, static_cast<std::int32_t>(std::clamp<std::int64_t>(r.millicores, 0, INT32_MAX)), r.gpus};
    }
    bool fits(const Resources& need) const {
      return need.millicores <= millicores && need.memory_bytes <= memory_bytes && need.gpus <= gpus;
    }
    friend bool operator==(const Cap&, const Cap&) = default;
  };
  // One level of a root-to-leaf path: the node and the child taken.
  struct Step {
    std::int32_t node;
    int index;
  };
  struct alignas(64) Node {
    std::int32_t count = 0;
    bool leaf = true;
    // Leaf: each entry's free resources. Inner: the component-wise maximum over child i's subtree.
    Cap cap[kFanout];
    // Leaf: each entry's key, ascending. Inner: key[0] is unused; key[i] (i > 0) is <= every key in
    // child i and > every key in child i - 1.
    Key key[kFanout];
    std::int32_t child[kFanout];  // Inner nodes only.
  };

  static Cap maxOf(const Cap& a, const Cap& b) {
    return {std::max(a.memory_bytes, b.memory_bytes), std::max(a.millicores, b.millicores), std::max(a.gpus, b.gpus)};
  }
  static Cap maxOf(const Node& n);
  // Index of the child whose key range holds `key`.
  static int childFor(const Node& n, const Key& key);

  Node& at(std::int32_t i) { return nodes_[static_cast<std::size_t>(i)]; }
  const Node& at(std::int32_t i) const { return nodes_[static_cast<std::size_t>(i)]; }
  std::int32_t alloc(bool leaf);
  void release(std::int32_t n);
  // Splits the full child `i` of `parent` in two halves.
  void splitChild(std::int32_t parent, int i);
  // Gives child `i` of `parent` (at most kMinFill entries) entries from a sibling, merging the two
  // when they fit in one node. Returns nothing: the caller looks up the child again.
  void refillChild(std::int32_t parent, int i);
  // The maximum over `n` after one of its entries changed from `before` to `after` (zero: removed),
  // given the maximum before: a rescan only when the entry held the maximum and went down.
  static Cap maxAfterChange(const Cap& max, const Cap& before, const Cap& after, const Node& n);
  // Carries a change of one entry of `node` (the last node of `path`, which runs from the root) up
  // through the maxima of its ancestors, stopping where nothing changes.
  void propagateChange(const Step* path, int depth, std::int32_t node, Cap before, Cap after);
  void refreshLeftmost();
  void refreshRootMax();
  std::optional<Key> find(std::int32_t n, const Resources& need, const Key* bound) const;
  void collectRec(std::int32_t n, std::vector<Key>& out) const;
  std::string checkRec(std::int32_t n, int depth, int& leaf_depth, const Key* lo, const Key* hi, Cap& max,
                       std::size_t& count) const;

  std::vector<Node> nodes_;
  std::vector<std::int32_t> free_nodes_;
  std::int32_t root_ = -1;
  std::int32_t leftmost_ = -1;  // The first leaf: the best key is its first entry.
  Cap root_max_;
  std::size_t size_ = 0;
};

}  // namespace kasm::sched::detail
