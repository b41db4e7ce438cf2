#include "kasm/core/resources.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace kasm {

Resources Resources::fromCores(double cores, std::int64_t memory_bytes, std::int32_t gpus) {
  return {static_cast<std::int64_t>(std::llround(cores * 1000.0)), memory_bytes, gpus};
}

Result<void> Resources::validate(std::string_view field) const {
  // The fast path allocates nothing: this runs on every placement.
  if (millicores >= 0 && memory_bytes >= 0 && gpus >= 0 && millicores <= 1'000'000'000 &&
      memory_bytes <= (std::int64_t{1} << 50) && gpus <= 1024) {
    return {};
  }
  const std::string f(field);
  if (millicores < 0) return invalidArgument(f + ".millicores must not be negative, got " + std::to_string(millicores));
  if (memory_bytes < 0)
    return invalidArgument(f + ".memory_bytes must not be negative, got " + std::to_string(memory_bytes));
  if (gpus < 0) return invalidArgument(f + ".gpus must not be negative, got " + std::to_string(gpus));
  if (millicores > 1'000'000'000) return invalidArgument(f + ".millicores is absurdly large (over 1,000,000 cores)");
  if (memory_bytes > (std::int64_t{1} << 50))
    return invalidArgument(f + ".memory_bytes is absurdly large (over 1 PiB)");
  return invalidArgument(f + ".gpus is absurdly large (over 1024)");
}

std::string Resources::toString() const {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%.3g cores, %.3g GiB, %d GPU%s", millicores / 1000.0,
                static_cast<double>(memory_bytes) / static_cast<double>(kGiB), gpus, gpus == 1 ? "" : "s");
  return buf;
}

Result<std::int64_t> parseMemorySize(std::string_view text) {
  auto bad = [&] {
    return invalidArgument("memory size '" + std::string(text.substr(0, 40)) +
                           "' is not a size like 512MiB, 2G or 1073741824");
  };
  std::size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  if (i == 0) return bad();
  double number = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, number);
  if (ec != std::errc() || ptr != text.data() + i || number < 0) return bad();
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  double mult = 1;
  if (unit.empty() || unit == "B" || unit == "b")
    mult = 1;
  else if (unit == "K" || unit == "KB" || unit == "KiB" || unit == "k")
    mult = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MiB" || unit == "m")
    mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GiB" || unit == "g")
    mult = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "TB" || unit == "TiB" || unit == "t")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else
    return bad();
  const double bytes = number * mult;
  if (bytes > 9.0e18) return bad();
  return static_cast<std::int64_t>(std::llround(bytes));
}

}  // namespace kasm
