#pragma once

// A time zone from the system's tz database (TZif files under /usr/share/zoneinfo), for schedules
// that a person writes in local time. GCC 12's library has no std::chrono::zoned_time, and
// localtime_r reads the process-wide TZ: this reads one zone's transitions into an immutable value
// that any thread may use.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"

namespace kasm {

// A moment as a wall clock in some zone shows it.
struct LocalTime {
  int weekday = 0;        // 0 = Sunday ... 6 = Saturday.
  int minute_of_day = 0;  // 0 ... 1439.
  std::int64_t day = 0;   // Days since 1970-01-01 in that zone (consecutive local dates differ by 1).
  int utc_offset_seconds = 0;
};

class TimeZone {
 public:
  // "UTC" (also "Etc/UTC", "") needs no file. Other names are looked up under `zoneinfo_dir`:
  // letters, digits, '_', '+', '-' and '/' only, no "..", no leading '/' (a name never escapes the
  // directory). NotFound for an unknown zone, InvalidArgument for a malformed name or file.
  static Result<TimeZone> load(std::string_view name, std::string_view zoneinfo_dir = "/usr/share/zoneinfo");
  // From the bytes of a TZif file (versions 1 to 4); `name` is kept for messages.
  static Result<TimeZone> fromTzif(std::string_view name, std::string_view bytes);
  static TimeZone utc();

  const std::string& name() const noexcept { return name_; }
  // Seconds east of UTC at `t` (after the file's last transition, its last offset).
  int offsetAt(TimePoint t) const noexcept;
  LocalTime local(TimePoint t) const noexcept;

 private:
  std::string name_ = "UTC";
  std::vector<std::int64_t> transitions_;  // Unix seconds, ascending.
  std::vector<int> offsets_;               // Offset in force from transitions_[i] on.
  int initial_offset_ = 0;                 // Before the first transition.
};

}  // namespace kasm
