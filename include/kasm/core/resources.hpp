#pragma once

#include <cstdint>
#include <string>

#include "kasm/core/result.hpp"

namespace kasm {

// A bundle of schedulable resources: CPU in millicores (1000 = one core), memory in bytes and a GPU
// count. Plain value type; arithmetic is component-wise.
struct Resources {
  std::int64_t millicores = 0;
  std::int64_t memory_bytes = 0;
  std::int32_t gpus = 0;

  static constexpr std::int64_t kMiB = 1024 * 1024;
  static constexpr std::int64_t kGiB = 1024 * kMiB;

  // Builds from the units people type: cores may be fractional (0.5 = 500 millicores).
  static Resources fromCores(double cores, std::int64_t memory_bytes, std::int32_t gpus = 0);

  // True when every component of `need` is <= the matching component of *this.
  constexpr bool fits(const Resources& need) const noexcept {
    return need.millicores <= millicores && need.memory_bytes <= memory_bytes && need.gpus <= gpus;
  }
  constexpr bool isZero() const noexcept { return millicores == 0 && memory_bytes == 0 && gpus == 0; }
  constexpr bool anyNegative() const noexcept { return millicores < 0 || memory_bytes < 0 || gpus < 0; }

  // Component-wise max(0, x): what is left never goes below zero in reports.
  constexpr Resources clampedAtZero() const noexcept {
    return {millicores < 0 ? 0 : millicores, memory_bytes < 0 ? 0 : memory_bytes, gpus < 0 ? 0 : gpus};
  }

  // Checks the bundle as a request: no negatives, and below sane ceilings (1M cores, 1 PiB, 1024 GPUs).
  // `field` names the value in the error.
  Result<void> validate(std::string_view field) const;

  constexpr Resources& operator+=(const Resources& o) noexcept {
    millicores += o.millicores;
    memory_bytes += o.memory_bytes;
    gpus += o.gpus;
    return *this;
  }
  constexpr Resources& operator-=(const Resources& o) noexcept {
    millicores -= o.millicores;
    memory_bytes -= o.memory_bytes;
    gpus -= o.gpus;
    return *this;
  }
  friend constexpr Resources operator+(Resources a, const Resources& b) noexcept { return a += b; }
  friend constexpr Resources operator-(Resources a, const Resources& b) noexcept { return a -= b; }
  friend constexpr Resources operator*(Resources a, std::int64_t n) noexcept {
    return {a.millicores * n, a.memory_bytes * n, static_cast<std::int32_t>(a.gpus * n)};
  }
  friend constexpr bool operator==(const Resources&, const Resources&) = default;

  // "2.5 cores, 4.0 GiB, 1 GPU".
  std::string toString() const;
};

// Parses a memory size such as "512MiB", "2G", "1.5GiB" or a plain byte count.
Result<std::int64_t> parseMemorySize(std::string_view text);

}  // namespace kasm
