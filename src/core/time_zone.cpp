// TZif reading (RFC 8536): the header, then version 1's 32-bit block, then (version 2 and later)
// the same block again with 64-bit times, which is the one used when present.

#include "kasm/core/time_zone.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace kasm {

namespace {

constexpr std::size_t kHeaderBytes = 44;
constexpr std::size_t kMaxTzifBytes = 1 << 20;

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
std::int64_t be64(const unsigned char* p) {
  return static_cast<std::int64_t>((std::uint64_t{be32(p)} << 32) | be32(p + 4));
}

struct Counts {
  std::uint32_t isut = 0, isstd = 0, leap = 0, time = 0, type = 0, chars = 0;
};

bool readHeader(std::string_view bytes, std::size_t at, Counts& c, char& version) {
  if (bytes.size() < at + kHeaderBytes || bytes.substr(at, 4) != "TZif") return false;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
  version = static_cast<char>(p[4]);
  c = {be32(p + 20), be32(p + 24), be32(p + 28), be32(p + 32), be32(p + 36), be32(p + 40)};
  // RFC 8536 3.1: typecnt must not be zero; isutcnt and isstdcnt are zero or typecnt.
  return c.type > 0 && c.type <= 256 && (c.isut == 0 || c.isut == c.type) && (c.isstd == 0 || c.isstd == c.type) &&
         c.time < (1u << 20) && c.chars <= 65536 && c.leap < (1u << 16);
}

std::size_t blockBytes(const Counts& c, std::size_t time_bytes) {
  return c.time * time_bytes + c.time + c.type * 6 + c.chars + c.leap * (time_bytes + 4) + c.isstd + c.isut;
}

bool validName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.front() == '/' || name.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '+' ||
           ch == '-' || ch == '/';
  });
}

}  // namespace

TimeZone TimeZone::utc() {
  return TimeZone();
}

Result<TimeZone> TimeZone::load(std::string_view name, std::string_view zoneinfo_dir) {
  if (name.empty() || name == "UTC" || name == "Etc/UTC") return utc();
  if (!validName(name))
    return invalidArgument("'" + std::string(name) + "' is not a time zone name (e.g. Europe/Paris)");
  std::ifstream in(std::string(zoneinfo_dir) + "/" + std::string(name), std::ios::binary);
  if (!in) return notFound("unknown time zone '" + std::string(name) + "'");
  std::string bytes(kMaxTzifBytes + 1, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  if (bytes.size() > kMaxTzifBytes)
    return invalidArgument("time zone file of '" + std::string(name) + "' is too large");
  return fromTzif(name, bytes);
}

Result<TimeZone> TimeZone::fromTzif(std::string_view name, std::string_view bytes) {
  const std::string bad = "'" + std::string(name) + "' is not a valid time zone file";
  Counts c;
  char version = 0;
  if (!readHeader(bytes, 0, c, version)) return invalidArgument(bad);
  std::size_t at = kHeaderBytes;
  std::size_t time_bytes = 4;
  if (version >= '2') {
    at += blockBytes(c, 4);
    if (!readHeader(bytes, at, c, version)) return invalidArgument(bad);
    at += kHeaderBytes;
    time_bytes = 8;
  }
  if (bytes.size() < at + blockBytes(c, time_bytes)) return invalidArgument(bad);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
  const auto* types_at = p + c.time * time_bytes;
  const auto* infos = types_at + c.time;
  TimeZone tz;
  tz.name_ = std::string(name);
  auto offsetOf = [&](std::uint32_t type) {
    return static_cast<int>(static_cast<std::int32_t>(be32(infos + type * 6)));
  };
  tz.initial_offset_ = offsetOf(0);
  tz.transitions_.reserve(c.time);
  tz.offsets_.reserve(c.time);
  for (std::uint32_t i = 0; i < c.time; ++i) {
    const std::int64_t when = time_bytes == 8 ? be64(p + i * 8) : static_cast<std::int32_t>(be32(p + i * 4));
    const std::uint32_t type = types_at[i];
    if (type >= c.type) return invalidArgument(bad);
    const int offset = offsetOf(type);
    if (offset < -26 * 3600 || offset > 26 * 3600) return invalidArgument(bad);
    if (!tz.transitions_.empty() && when <= tz.transitions_.back()) return invalidArgument(bad);
    tz.transitions_.push_back(when);
    tz.offsets_.push_back(offset);
  }
  if (tz.initial_offset_ < -26 * 3600 || tz.initial_offset_ > 26 * 3600) return invalidArgument(bad);
  return tz;
}

int TimeZone::offsetAt(TimePoint t) const noexcept {
  const std::int64_t s = toUnixMillis(t) / 1000 - (toUnixMillis(t) % 1000 < 0 ? 1 : 0);
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), s);
  if (it == transitions_.begin()) return initial_offset_;
  return offsets_[static_cast<std::size_t>(it - transitions_.begin()) - 1];
}

LocalTime TimeZone::local(TimePoint t) const noexcept {
  LocalTime out;
  out.utc_offset_seconds = offsetAt(t);
  const std::int64_t ms = toUnixMillis(t);
  const std::int64_t secs = (ms >= 0 ? ms / 1000 : (ms - 999) / 1000) + out.utc_offset_seconds;
  const std::int64_t day = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  out.day = day;
  out.minute_of_day = static_cast<int>((secs - day * 86400) / 60);
  // 1970-01-01 was a Thursday (4).
  out.weekday = static_cast<int>(((day % 7) + 7 + 4) % 7);
  return out;
}

}  // namespace kasm
