#pragma once

// An ordered set of agents (by placement key, best first) that also answers "the best agent whose
// free resources fit this request" without walking past agents that cannot fit: a treap whose nodes
// carry the component-wise maximum of free CPU, memory and GPUs in their subtree, so whole subtrees
// that cannot fit are skipped. Private to the scheduler.

#include <algorithm>
#include <climits>
#include <cstdint>
#include <optional>
#include <vector>

#include "kasm/core/resources.hpp"

namespace kasm::sched::detail {

struct Key {
  std::int64_t neg_score;
  std::uint32_t salt;
  std::uint32_t slot;
  friend bool operator<(const Key& a, const Key& b) {
    if (a.neg_score != b.neg_score) return a.neg_score < b.neg_score;
    if (a.salt != b.salt) return a.salt < b.salt;
    return a.slot < b.slot;
  }
  friend bool operator==(const Key&, const Key&) = default;
};

class FitTree {
 public:
  void insert(const Key& key, const Resources& free);
  void erase(const Key& key);
  bool empty() const { return root_ < 0; }
  std::size_t size() const { return size_; }
  // Component-wise maximum of the free resources of all members (zero when empty).
  Resources maxFree() const {
    if (root_ < 0) return Resources{};
    const Cap& m = nodes_[static_cast<std::size_t>(root_)].max;
    return Resources{m.millicores, m.memory_bytes, m.gpus};
  }
  // The smallest key whose free resources fit `need`, considering only keys < `bound` when given.
  std::optional<Key> firstFit(const Resources& need, const std::optional<Key>& bound) const;
  void clear();
  // Keys in order (for re-keying).
  void collect(std::vector<Key>& out) const;

 private:
  // Free resources in 16 bytes (millicores fit 32 bits: Resources::validate caps them at 10^9), so
  // a node is one 64-byte cache line.
  struct Cap {
    std::int64_t memory_bytes = 0;
    std::int32_t millicores = 0;
    std::int32_t gpus = 0;
    static Cap of(const Resources& r) {
      return {r.memory_bytes, static_cast<std::int32_t>(std::min<std::int64_t>(r.millicores, INT32_MAX)), r.gpus};
    }
    bool fits(const Resources& need) const {
      return need.millicores <= millicores && need.memory_bytes <= memory_bytes && need.gpus <= gpus;
    }
  };
  struct alignas(64) Node {
    Key key;
    Cap free;
    Cap max;  // Component-wise max of `free` over the subtree.
    std::uint32_t prio;
    std::int32_t left = -1;
    std::int32_t right = -1;
  };

  std::int32_t alloc(const Key& key, const Resources& free);
  void update(std::int32_t n);
  std::int32_t merge(std::int32_t a, std::int32_t b);
  void split(std::int32_t t, const Key& key, std::int32_t& l, std::int32_t& r);  // l: < key, r: >= key.
  std::int32_t eraseRec(std::int32_t t, const Key& key);
  std::int32_t insertRec(std::int32_t t, std::int32_t n);
  std::optional<Key> find(std::int32_t t, const Resources& need, const std::optional<Key>& bound) const;
  void collectRec(std::int32_t t, std::vector<Key>& out) const;

  std::vector<Node> nodes_;
  std::vector<std::int32_t> free_list_;
  std::int32_t root_ = -1;
  std::size_t size_ = 0;
  std::uint64_t rng_ = 0x9e3779b97f4a7c15ull;
};

}  // namespace kasm::sched::detail
