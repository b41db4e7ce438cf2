#include "sched/fit_tree.hpp"

#include <algorithm>

namespace kasm::sched::detail {
namespace {

template <class C>
C maxOf(const C& a, const C& b) {
  return {std::max(a.memory_bytes, b.memory_bytes), std::max(a.millicores, b.millicores), std::max(a.gpus, b.gpus)};
}

}  // namespace

std::int32_t FitTree::alloc(const Key& key, const Resources& free) {
  // xorshift64: tree shape only, never a placement decision.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  Node n{key, Cap::of(free), Cap::of(free), static_cast<std::uint32_t>(rng_ >> 32), -1, -1};
  if (!free_list_.empty()) {
    const std::int32_t i = free_list_.back();
    free_list_.pop_back();
    nodes_[static_cast<std::size_t>(i)] = n;
    return i;
  }
  nodes_.push_back(n);
  return static_cast<std::int32_t>(nodes_.size() - 1);
}

void FitTree::update(std::int32_t n) {
  Node& x = nodes_[static_cast<std::size_t>(n)];
  x.max = x.free;
  if (x.left >= 0) x.max = maxOf(x.max, nodes_[static_cast<std::size_t>(x.left)].max);
  if (x.right >= 0) x.max = maxOf(x.max, nodes_[static_cast<std::size_t>(x.right)].max);
}

std::int32_t FitTree::merge(std::int32_t a, std::int32_t b) {
  if (a < 0) return b;
  if (b < 0) return a;
  if (nodes_[static_cast<std::size_t>(a)].prio > nodes_[static_cast<std::size_t>(b)].prio) {
    nodes_[static_cast<std::size_t>(a)].right = merge(nodes_[static_cast<std::size_t>(a)].right, b);
    update(a);
    return a;
  }
  nodes_[static_cast<std::size_t>(b)].left = merge(a, nodes_[static_cast<std::size_t>(b)].left);
  update(b);
  return b;
}

void FitTree::split(std::int32_t t, const Key& key, std::int32_t& l, std::int32_t& r) {
  if (t < 0) {
    l = r = -1;
    return;
  }
  Node& n = nodes_[static_cast<std::size_t>(t)];
  if (n.key < key) {
    split(n.right, key, nodes_[static_cast<std::size_t>(t)].right, r);
    l = t;
  } else {
    split(n.left, key, l, nodes_[static_cast<std::size_t>(t)].left);
    r = t;
  }
  update(t);
}

// Standard treap insertion: descend until the new node's priority belongs, then split only the
// subtree found there (expected O(1) in size), so an insert costs about one root-to-leaf path.
std::int32_t FitTree::insertRec(std::int32_t t, std::int32_t n) {
  if (t < 0) return n;
  Node& x = nodes_[static_cast<std::size_t>(n)];
  if (x.prio > nodes_[static_cast<std::size_t>(t)].prio) {
    std::int32_t l, r;
    split(t, x.key, l, r);
    nodes_[static_cast<std::size_t>(n)].left = l;
    nodes_[static_cast<std::size_t>(n)].right = r;
    update(n);
    return n;
  }
  if (x.key < nodes_[static_cast<std::size_t>(t)].key) {
    const std::int32_t c = insertRec(nodes_[static_cast<std::size_t>(t)].left, n);
    nodes_[static_cast<std::size_t>(t)].left = c;
  } else {
    const std::int32_t c = insertRec(nodes_[static_cast<std::size_t>(t)].right, n);
    nodes_[static_cast<std::size_t>(t)].right = c;
  }
  update(t);
  return t;
}

void FitTree::insert(const Key& key, const Resources& free) {
  const std::int32_t n = alloc(key, free);
  root_ = insertRec(root_, n);
  ++size_;
}

std::int32_t FitTree::eraseRec(std::int32_t t, const Key& key) {
  if (t < 0) return -1;
  Node& n = nodes_[static_cast<std::size_t>(t)];
  if (n.key == key) {
    const std::int32_t m = merge(n.left, n.right);
    free_list_.push_back(t);
    --size_;
    return m;
  }
  if (key < n.key) {
    const std::int32_t c = eraseRec(n.left, key);
    nodes_[static_cast<std::size_t>(t)].left = c;
  } else {
    const std::int32_t c = eraseRec(n.right, key);
    nodes_[static_cast<std::size_t>(t)].right = c;
  }
  update(t);
  return t;
}

void FitTree::erase(const Key& key) {
  root_ = eraseRec(root_, key);
}

std::optional<Key> FitTree::find(std::int32_t t, const Resources& need, const std::optional<Key>& bound) const {
  if (t < 0) return std::nullopt;
  const Node& n = nodes_[static_cast<std::size_t>(t)];
  if (!n.max.fits(need)) return std::nullopt;  // Nothing below can fit.
  if (auto l = find(n.left, need, bound)) return l;
  if (bound && !(n.key < *bound)) return std::nullopt;  // This key and everything right of it lose.
  if (n.free.fits(need)) return n.key;
  return find(n.right, need, bound);
}

std::optional<Key> FitTree::firstFit(const Resources& need, const std::optional<Key>& bound) const {
  return find(root_, need, bound);
}

void FitTree::clear() {
  nodes_.clear();
  free_list_.clear();
  root_ = -1;
  size_ = 0;
}

void FitTree::collectRec(std::int32_t t, std::vector<Key>& out) const {
  if (t < 0) return;
  collectRec(nodes_[static_cast<std::size_t>(t)].left, out);
  out.push_back(nodes_[static_cast<std::size_t>(t)].key);
  collectRec(nodes_[static_cast<std::size_t>(t)].right, out);
}

void FitTree::collect(std::vector<Key>& out) const {
  collectRec(root_, out);
}

}  // namespace kasm::sched::detail
