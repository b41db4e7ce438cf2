#include "sched/fit_tree.hpp"

#include <algorithm>
#include <array>

namespace kasm::sched::detail {
namespace {

// Deep enough for any tree: with at least kMinFill children per inner node, 32 levels hold more
// keys than a 32-bit slot can name.
constexpr int kMaxDepth = 32;

}  // namespace

FitTree::Cap FitTree::maxOf(const Node& n) {
  Cap m{};
  for (int i = 0; i < n.count; ++i) m = maxOf(m, n.cap[i]);
  return m;
}

int FitTree::childFor(const Node& n, const Key& key) {
  int i = 1;
  while (i < n.count && !(key < n.key[i])) ++i;
  return i - 1;
}

std::int32_t FitTree::alloc(bool leaf) {
  std::int32_t i;
  if (!free_nodes_.empty()) {
    i = free_nodes_.back();
    free_nodes_.pop_back();
  } else {
    i = static_cast<std::int32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  at(i).count = 0;
  at(i).leaf = leaf;
  return i;
}

void FitTree::release(std::int32_t n) {
  at(n).count = 0;
  free_nodes_.push_back(n);
}

void FitTree::splitChild(std::int32_t parent, int i) {
  const bool leaf = at(at(parent).child[i]).leaf;
  const std::int32_t right = alloc(leaf);  // May move nodes_: take references after.
  Node& p = at(parent);
  Node& l = at(p.child[i]);
  Node& r = at(right);
  constexpr int kHalf = kFanout / 2;
  std::copy(l.key + kHalf, l.key + kFanout, r.key);
  std::copy(l.cap + kHalf, l.cap + kFanout, r.cap);
  if (!leaf) std::copy(l.child + kHalf, l.child + kFanout, r.child);
  r.count = kFanout - kHalf;
  l.count = kHalf;
  // A leaf's first key is its own; an inner node's key[0] is unused, so its old separator moves up.
  const Key separator = r.key[0];
  std::copy_backward(p.key + i + 1, p.key + p.count, p.key + p.count + 1);
  std::copy_backward(p.cap + i + 1, p.cap + p.count, p.cap + p.count + 1);
  std::copy_backward(p.child + i + 1, p.child + p.count, p.child + p.count + 1);
  p.key[i + 1] = separator;
  p.child[i + 1] = right;
  p.cap[i] = maxOf(l);
  p.cap[i + 1] = maxOf(r);
  ++p.count;
}

void FitTree::refillChild(std::int32_t parent, int i) {
  Node& p = at(parent);
  const int li = i + 1 < p.count ? i : i - 1;  // The pair (li, li + 1) holds child i.
  const int ri = li + 1;
  Node& l = at(p.child[li]);
  Node& r = at(p.child[ri]);
  const int total = l.count + r.count;
  if (total <= kFanout) {
    // Merge the right node into the left one and drop it from the parent.
    const int base = l.count;
    std::copy(r.key, r.key + r.count, l.key + base);
    std::copy(r.cap, r.cap + r.count, l.cap + base);
    if (!l.leaf) {
      std::copy(r.child, r.child + r.count, l.child + base);
      l.key[base] = p.key[ri];  // The right node's unused key[0] becomes a real separator.
    }
    l.count = total;
    release(p.child[ri]);
    std::copy(p.key + ri + 1, p.key + p.count, p.key + ri);
    std::copy(p.cap + ri + 1, p.cap + p.count, p.cap + ri);
    std::copy(p.child + ri + 1, p.child + p.count, p.child + ri);
    --p.count;
    p.cap[li] = maxOf(l);
    return;
  }
  const int want_left = total / 2;
  if (l.count < want_left) {
    // Move the first k entries of the right node to the end of the left one.
    const int k = want_left - l.count;
    std::copy(r.key, r.key + k, l.key + l.count);
    std::copy(r.cap, r.cap + k, l.cap + l.count);
    Key separator = r.key[k];
    if (!l.leaf) {
      std::copy(r.child, r.child + k, l.child + l.count);
      l.key[l.count] = p.key[ri];
    }
    std::copy(r.key + k, r.key + r.count, r.key);
    std::copy(r.cap + k, r.cap + r.count, r.cap);
    if (!r.leaf) std::copy(r.child + k, r.child + r.count, r.child);
    l.count += k;
    r.count -= k;
    p.key[ri] = separator;
  } else {
    // Move the last k entries of the left node to the front of the right one.
    const int k = l.count - want_left;
    std::copy_backward(r.key, r.key + r.count, r.key + r.count + k);
    std::copy_backward(r.cap, r.cap + r.count, r.cap + r.count + k);
    if (!r.leaf) {
      std::copy_backward(r.child, r.child + r.count, r.child + r.count + k);
      r.key[k] = p.key[ri];
      std::copy(l.child + want_left, l.child + l.count, r.child);
    }
    std::copy(l.key + want_left, l.key + l.count, r.key);
    std::copy(l.cap + want_left, l.cap + l.count, r.cap);
    p.key[ri] = l.key[want_left];
    l.count = want_left;
    r.count += k;
  }
  p.cap[li] = maxOf(l);
  p.cap[ri] = maxOf(r);
}

void FitTree::refreshLeftmost() {
  std::int32_t n = root_;
  while (n >= 0 && !at(n).leaf) n = at(n).child[0];
  leftmost_ = n;
}

void FitTree::refreshRootMax() {
  root_max_ = root_ >= 0 ? maxOf(at(root_)) : Cap{};
}

void FitTree::insert(const Key& key, const Resources& free) {
  const Cap cap = Cap::of(free);
  bool reshaped = false;
  if (root_ < 0) {
    root_ = alloc(true);
    reshaped = true;
  } else if (at(root_).count == kFanout) {
    const std::int32_t old_root = root_;
    root_ = alloc(false);
    Node& r = at(root_);
    r.count = 1;
    r.child[0] = old_root;
    r.cap[0] = root_max_;
    splitChild(root_, 0);
    reshaped = true;
  }
  // Split full nodes on the way down, so the parent of any split has room.
  std::int32_t n = root_;
  while (!at(n).leaf) {
    int i = childFor(at(n), key);
    if (at(at(n).child[i]).count == kFanout) {
      splitChild(n, i);
      reshaped = true;
      if (!(key < at(n).key[i + 1])) ++i;
    }
    Node& x = at(n);
    x.cap[i] = maxOf(x.cap[i], cap);
    n = x.child[i];
  }
  Node& leaf = at(n);
  const int pos = static_cast<int>(std::upper_bound(leaf.key, leaf.key + leaf.count, key) - leaf.key);
  std::copy_backward(leaf.key + pos, leaf.key + leaf.count, leaf.key + leaf.count + 1);
  std::copy_backward(leaf.cap + pos, leaf.cap + leaf.count, leaf.cap + leaf.count + 1);
  leaf.key[pos] = key;
  leaf.cap[pos] = cap;
  ++leaf.count;
  ++size_;
  root_max_ = maxOf(root_max_, cap);
  if (reshaped) refreshLeftmost();
}

void FitTree::erase(const Key& key) {
  if (root_ < 0) return;
  std::array<Step, kMaxDepth> path;
  int depth = 0;
  bool reshaped = false;
  std::int32_t n = root_;
  // Refill thin children on the way down, so removing one entry never leaves a node under-full.
  while (!at(n).leaf) {
    int i = childFor(at(n), key);
    if (at(at(n).child[i]).count <= kMinFill) {
      refillChild(n, i);
      reshaped = true;
      i = childFor(at(n), key);
    }
    path[static_cast<std::size_t>(depth++)] = {n, i};
    n = at(n).child[i];
  }
  Node& leaf = at(n);
  Key* end = leaf.key + leaf.count;
  Key* it = std::lower_bound(leaf.key, end, key);
  if (it != end && *it == key) {
    const int pos = static_cast<int>(it - leaf.key);
    const Cap removed = leaf.cap[pos];
    std::copy(leaf.key + pos + 1, leaf.key + leaf.count, leaf.key + pos);
    std::copy(leaf.cap + pos + 1, leaf.cap + leaf.count, leaf.cap + pos);
    --leaf.count;
    --size_;
    propagateChange(path.data(), depth, n, removed, Cap{});
  }
  // Shrink the tree from the top: an inner root with one child, or an empty leaf root.
  while (root_ >= 0 && !at(root_).leaf && at(root_).count == 1) {
    const std::int32_t old = root_;
    root_ = at(old).child[0];
    release(old);
    reshaped = true;
  }
  if (root_ >= 0 && at(root_).leaf && at(root_).count == 0) {
    release(root_);
    root_ = -1;
    reshaped = true;
  }
  refreshRootMax();
  if (reshaped) refreshLeftmost();
}

void FitTree::rekey(const Key& from, const Key& to, const Resources& free) {
  std::array<Step, kMaxDepth> path;
  int depth = 0;
  // The leaf holding `from` covers keys in [lo, hi); `to` stays in it when it falls in that range.
  const Key* lo = nullptr;
  const Key* hi = nullptr;
  std::int32_t n = root_;
  while (n >= 0 && !at(n).leaf) {
    const Node& x = at(n);
    const int i = childFor(x, from);
    if (i > 0) lo = &x.key[i];
    if (i + 1 < x.count) hi = &x.key[i + 1];
    path[static_cast<std::size_t>(depth++)] = {n, i};
    n = x.child[i];
  }
  if (n < 0) {
    insert(to, free);
    return;
  }
  Node& leaf = at(n);
  Key* end = leaf.key + leaf.count;
  Key* it = std::lower_bound(leaf.key, end, from);
  if (it == end || !(*it == from)) {
    insert(to, free);
    return;
  }
  int pos = static_cast<int>(it - leaf.key);
  const Cap before = leaf.cap[pos];
  const Cap after = Cap::of(free);
  const bool stays = !(lo && to < *lo) && !(hi && !(to < *hi));
  if (stays) {
    // Slide the entries between the old and the new position by one, then write the entry there.
    while (pos + 1 < leaf.count && leaf.key[pos + 1] < to) {
      leaf.key[pos] = leaf.key[pos + 1];
      leaf.cap[pos] = leaf.cap[pos + 1];
      ++pos;
    }
    while (pos > 0 && to < leaf.key[pos - 1]) {
      leaf.key[pos] = leaf.key[pos - 1];
      leaf.cap[pos] = leaf.cap[pos - 1];
      --pos;
    }
    leaf.key[pos] = to;
    leaf.cap[pos] = after;
  } else if (leaf.count > kMinFill) {
    // The leaf can spare the entry without rebalancing: remove it here instead of descending again.
    std::copy(leaf.key + pos + 1, leaf.key + leaf.count, leaf.key + pos);
    std::copy(leaf.cap + pos + 1, leaf.cap + leaf.count, leaf.cap + pos);
    --leaf.count;
    --size_;
  } else {
    erase(from);
    insert(to, free);
    return;
  }
  if (stays) {
    propagateChange(path.data(), depth, n, before, after);
  } else {
    propagateChange(path.data(), depth, n, before, Cap{});
    insert(to, free);
  }
}

FitTree::Cap FitTree::maxAfterChange(const Cap& max, const Cap& before, const Cap& after, const Node& n) {
  // Only a component where the old value was the maximum and went down needs the node rescanned.
  const bool lost = (before.memory_bytes == max.memory_bytes && after.memory_bytes < before.memory_bytes) ||
                    (before.millicores == max.millicores && after.millicores < before.millicores) ||
                    (before.gpus == max.gpus && after.gpus < before.gpus);
  return lost ? maxOf(n) : maxOf(max, after);
}

void FitTree::propagateChange(const Step* path, int depth, std::int32_t node, Cap before, Cap after) {
  for (int d = depth - 1; d >= 0; --d) {
    Node& p = at(path[d].node);
    Cap& slot = p.cap[path[d].index];
    const Cap old = slot;
    slot = maxAfterChange(old, before, after, at(node));
    if (slot == old) return;  // Nothing above changes either (root_max_ included).
    before = old;
    after = slot;
    node = path[d].node;
  }
  root_max_ = maxAfterChange(root_max_, before, after, at(node));
}

std::optional<Key> FitTree::find(std::int32_t n, const Resources& need, const Key* bound) const {
  const Node& x = at(n);
  if (x.leaf) {
    for (int i = 0; i < x.count; ++i) {
      if (!x.cap[i].fits(need)) continue;
      if (bound && !(x.key[i] < *bound)) return std::nullopt;
      return x.key[i];
    }
    return std::nullopt;
  }
  for (int i = 0; i < x.count; ++i) {
    if (i > 0 && bound && !(x.key[i] < *bound)) return std::nullopt;  // This child and the rest lose.
    if (!x.cap[i].fits(need)) continue;                               // Nothing in this subtree can fit.
    if (auto k = find(x.child[i], need, bound)) return k;
  }
  return std::nullopt;
}

std::optional<Key> FitTree::firstFit(const Resources& need, const std::optional<Key>& bound) const {
  if (root_ < 0) return std::nullopt;
  // Usually the best agent fits: then the answer is the first entry of the first leaf. (Scanning
  // the rest of that leaf before descending was tried: under bin packing the first leaf holds the
  // fullest agents, so it rarely found anything and cost more than it saved.)
  const Node& first = at(leftmost_);
  if (bound && !(first.key[0] < *bound)) return std::nullopt;
  if (first.cap[0].fits(need)) return first.key[0];
  if (!root_max_.fits(need)) return std::nullopt;
  return find(root_, need, bound ? &*bound : nullptr);
}

void FitTree::clear() {
  nodes_.clear();
  free_nodes_.clear();
  root_ = -1;
  leftmost_ = -1;
  root_max_ = {};
  size_ = 0;
}

void FitTree::collectRec(std::int32_t n, std::vector<Key>& out) const {
  const Node& x = at(n);
  if (x.leaf) {
    out.insert(out.end(), x.key, x.key + x.count);
    return;
  }
  for (int i = 0; i < x.count; ++i) collectRec(x.child[i], out);
}

void FitTree::collect(std::vector<Key>& out) const {
  if (root_ >= 0) collectRec(root_, out);
}

std::string FitTree::checkRec(std::int32_t n, int depth, int& leaf_depth, const Key* lo, const Key* hi, Cap& max,
                              std::size_t& count) const {
  const Node& x = at(n);
  const std::string where = "node " + std::to_string(n) + " at depth " + std::to_string(depth) + ": ";
  if (x.count < 1 || x.count > kFanout) return where + "bad count " + std::to_string(x.count);
  if (n != root_ && x.count < kMinFill) return where + "under-full (" + std::to_string(x.count) + ")";
  if (n == root_ && !x.leaf && x.count < 2) return where + "inner root with one child";
  max = {};
  if (x.leaf) {
    if (leaf_depth < 0) leaf_depth = depth;
    if (leaf_depth != depth) return where + "leaves at different depths";
    for (int i = 0; i < x.count; ++i) {
      if (i > 0 && !(x.key[i - 1] < x.key[i])) return where + "keys out of order";
      if (lo && x.key[i] < *lo) return where + "key below its separator";
      if (hi && !(x.key[i] < *hi)) return where + "key at or above the next separator";
      max = maxOf(max, x.cap[i]);
    }
    count += static_cast<std::size_t>(x.count);
    return {};
  }
  for (int i = 0; i < x.count; ++i) {
    if (i > 1 && !(x.key[i - 1] < x.key[i])) return where + "separators out of order";
    const Key* child_lo = i > 0 ? &x.key[i] : lo;
    const Key* child_hi = i + 1 < x.count ? &x.key[i + 1] : hi;
    if (i > 0 && ((lo && x.key[i] < *lo) || (hi && !(x.key[i] < *hi)))) return where + "separator out of range";
    Cap child_max;
    std::string bad = checkRec(x.child[i], depth + 1, leaf_depth, child_lo, child_hi, child_max, count);
    if (!bad.empty()) return bad;
    if (!(child_max == x.cap[i])) return where + "stale maximum for child " + std::to_string(i);
    max = maxOf(max, child_max);
  }
  return {};
}

std::string FitTree::checkInvariants() const {
  if (root_ < 0) {
    if (size_ != 0) return "empty tree with size " + std::to_string(size_);
    return {};
  }
  int leaf_depth = -1;
  Cap max;
  std::size_t count = 0;
  std::string bad = checkRec(root_, 0, leaf_depth, nullptr, nullptr, max, count);
  if (!bad.empty()) return bad;
  if (count != size_) return "size " + std::to_string(size_) + " but " + std::to_string(count) + " keys";
  if (!(max == root_max_)) return "stale root maximum";
  std::int32_t first = root_;
  while (!at(first).leaf) first = at(first).child[0];
  if (first != leftmost_) return "stale leftmost leaf";
  return {};
}

}  // namespace kasm::sched::detail
