#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>

namespace kasm {

// Source of randomness, injected like the clock so tie-breaks and ids are reproducible in tests.
// Implementations are thread-safe.
class Random {
 public:
  virtual ~Random() = default;
  virtual std::uint64_t next() = 0;
  // A value in [0, bound) for bound > 0.
  std::uint64_t uniform(std::uint64_t bound);
};

// A seeded 64-bit Mersenne twister behind a mutex. Seed 0 means "seed from std::random_device".
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(std::uint64_t seed = 0);
  std::uint64_t next() override;

 private:
  std::mutex mu_;
  std::mt19937_64 engine_;
};

}  // namespace kasm
