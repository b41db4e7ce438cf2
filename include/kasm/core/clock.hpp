#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace kasm {

// Wall-clock instants with millisecond resolution; what the store persists and the API shows.
using Duration = std::chrono::milliseconds;
using TimePoint = std::chrono::time_point<std::chrono::system_clock, Duration>;

// Milliseconds since the Unix epoch, the persisted form of a TimePoint.
inline std::int64_t toUnixMillis(TimePoint t) {
  return t.time_since_epoch().count();
}
inline TimePoint fromUnixMillis(std::int64_t ms) {
  return TimePoint(Duration(ms));
}

// Source of the current time. Everything that reads time takes a Clock& so tests can control it.
// Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

// The real clock.
class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now()); }
};

// A clock that only moves when told to; for tests. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = fromUnixMillis(1'700'000'000'000)) : now_(toUnixMillis(start)) {}
  TimePoint now() const override { return fromUnixMillis(now_.load()); }
  void advance(Duration d) { now_.fetch_add(d.count()); }
  void set(TimePoint t) { now_.store(toUnixMillis(t)); }

 private:
  std::atomic<std::int64_t> now_;
};

}  // namespace kasm
