#include "kasm/core/random.hpp"

namespace kasm {

std::uint64_t Random::uniform(std::uint64_t bound) {
  // Rejection sampling removes the modulo bias of a plain `next() % bound`.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  std::uint64_t v;
  do {
    v = next();
  } while (v >= limit);
  return v % bound;
}

SeededRandom::SeededRandom(std::uint64_t seed) {
  if (seed == 0) {
    std::random_device rd;
    seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }
  engine_.seed(seed);
}

std::uint64_t SeededRandom::next() {
  std::lock_guard lock(mu_);
  return engine_();
}

}  // namespace kasm
