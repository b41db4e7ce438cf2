#pragma once

// Internal to kasm::net: the proxy's relay buffers, held only while data flows.
//
// A proxied connection used to own a buffer_bytes buffer per direction for its whole life, so
// 5,000 idle WebSockets held 640 MiB of buffers that never carried a byte. A relay now waits for
// readability without a buffer, takes one for the burst that follows, and gives it back when the
// read would block. Buffers come from a small free list per thread (one io_context per thread, so
// no locks), and are mapped with mmap: a buffer beyond the free list is unmapped at once, so memory
// goes back to the system when the traffic stops instead of fragmenting the heap.

#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

namespace kasm::net::detail {

// This thread's free list of mapped buffers; unmaps what it holds when the thread ends. Header-only
// so that it needs no new translation unit; only src/net/*.cpp include it.
class RelayFreeList {
 public:
  // Enough for a busy thread's relays in flight at once (a keep-alive request needs one, a tunnel
  // at most two per burst), few enough that an idle thread keeps at most 1 MiB of 64 KiB buffers.
  static constexpr std::size_t kMaxCached = 16;

  static RelayFreeList& forThisThread() noexcept {
    static thread_local RelayFreeList list;
    return list;
  }
  ~RelayFreeList() {
    for (std::size_t i = 0; i < count_; ++i) ::munmap(chunks_[i].data, chunks_[i].size);
  }
  // A cached buffer of exactly `size` bytes, else a new mapping; throws std::bad_alloc.
  char* take(std::size_t size) {
    for (std::size_t i = count_; i > 0; --i) {
      if (chunks_[i - 1].size != size) continue;
      char* p = chunks_[i - 1].data;
      chunks_[i - 1] = chunks_[--count_];
      return p;
    }
    void* m = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    return static_cast<char*>(m);
  }
  void give(char* data, std::size_t size) noexcept {
    if (count_ == kMaxCached) {
      ::munmap(data, size);
      return;
    }
    chunks_[count_++] = {data, size};
  }
  std::size_t cached() const noexcept { return count_; }

 private:
  struct Chunk {
    char* data;
    std::size_t size;
  };
  Chunk chunks_[kMaxCached]{};
  std::size_t count_ = 0;
};

class RelayBuffer {
 public:
  RelayBuffer() = default;
  // Takes a buffer of `bytes` from this thread's free list (or maps one); `in_use` counts buffers
  // held (ProxyStats::buffers_in_use).
  RelayBuffer(std::size_t bytes, std::atomic<std::uint64_t>& in_use) { take(bytes, in_use); }
  ~RelayBuffer() { release(); }
  RelayBuffer(RelayBuffer&& other) noexcept { *this = static_cast<RelayBuffer&&>(other); }
  RelayBuffer& operator=(RelayBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      in_use_ = std::exchange(other.in_use_, nullptr);
    }
    return *this;
  }
  RelayBuffer(const RelayBuffer&) = delete;
  RelayBuffer& operator=(const RelayBuffer&) = delete;

  // Takes a buffer when none is held; throws std::bad_alloc when none can be mapped.
  void take(std::size_t bytes, std::atomic<std::uint64_t>& in_use) {
    if (data_) return;
    data_ = RelayFreeList::forThisThread().take(bytes);
    size_ = bytes;
    in_use_ = &in_use;
    in_use.fetch_add(1, std::memory_order_relaxed);
  }
  // Gives the buffer back to this thread's free list (or unmaps it). Must run on the thread that
  // uses it, as every relay does (its connection's I/O thread).
  void release() noexcept {
    if (!data_) return;
    RelayFreeList::forThisThread().give(data_, size_);
    in_use_->fetch_sub(1, std::memory_order_relaxed);
    data_ = nullptr;
    size_ = 0;
    in_use_ = nullptr;
  }

  bool held() const noexcept { return data_ != nullptr; }
  char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

 private:
  char* data_ = nullptr;
  std::size_t size_ = 0;
  std::atomic<std::uint64_t>* in_use_ = nullptr;
};

}  // namespace kasm::net::detail
