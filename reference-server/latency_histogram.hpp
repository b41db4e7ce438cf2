#pragma once

// A Prometheus histogram of request durations, lock-free (atomic buckets), one per route class.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace kasm::server {

class LatencyHistogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1.0,  2.5,   10.0};

  void observe(std::chrono::nanoseconds elapsed) {
    const double seconds = std::chrono::duration<double>(elapsed).count();
    std::size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<std::uint64_t>(elapsed.count()), std::memory_order_relaxed);
  }

  // The _bucket (cumulative), _sum and _count lines for `name{route="<route>"}`.
  std::string render(const std::string& name, const std::string& route) const {
    std::string out;
    std::uint64_t cumulative = 0;
    char le[32];
    for (std::size_t i = 0; i < kBounds.size(); ++i) {
      cumulative += buckets_[i].load(std::memory_order_relaxed);
      std::snprintf(le, sizeof le, "%g", kBounds[i]);
      out += name + "_bucket{route=\"" + route + "\",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
    }
    cumulative += buckets_[kBounds.size()].load(std::memory_order_relaxed);
    out += name + "_bucket{route=\"" + route + "\",le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
    char sum[64];
    std::snprintf(sum, sizeof sum, "%.6f", static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9);
    out += name + "_sum{route=\"" + route + "\"} " + sum + "\n";
    out += name + "_count{route=\"" + route + "\"} " + std::to_string(cumulative) + "\n";
    return out;
  }

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace kasm::server
