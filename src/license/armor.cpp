#include "license/armor.hpp"

#include <openssl/evp.h>

#include <array>
#include <chrono>
#include <cstdio>

namespace kasm::license::detail {
namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::size_t kLineLength = 64;

constexpr std::array<int, 256> makeDecodeTable() {
  std::array<int, 256> t{};
  for (auto& v : t) v = -1;
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int>(i);
  return t;
}
constexpr std::array<int, 256> kDecode = makeDecodeTable();

std::string_view trimPasteWhitespace(std::string_view s) {
  // Only what copy and paste adds; other whitespace (vertical tab, form feed) is damage.
  constexpr std::string_view kWs = " \t\r\n";
  const auto first = s.find_first_not_of(kWs);
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(kWs);
  return s.substr(first, last - first + 1);
}

std::string shown(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 60)) {
    if (c < 0x20 || c >= 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 60) out += "...";
  return out;
}

int digits(std::string_view s, std::size_t pos, std::size_t n) {
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

std::string base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8) | static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t v =
        (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return invalidArgument("its base64 is " + std::to_string(text.size()) +
                           " characters long, not a multiple of 4 (a character is missing or extra)");
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && last && j >= 2) {
        v[j] = 0;
        ++pad;
        continue;
      }
      if (pad > 0 || (v[j] = kDecode[static_cast<unsigned char>(c)]) < 0) {
        return invalidArgument("character " + std::to_string(i + j + 1) + " ('" + shown(std::string_view(&c, 1)) +
                               "') is not valid base64 there");
      }
    }
    // Unused low bits must be zero, or two texts would decode to the same bytes.
    if ((pad == 2 && (v[1] & 0x0F) != 0) || (pad == 1 && (v[2] & 0x03) != 0)) {
      return invalidArgument("its base64 is not canonical (non-zero bits before the padding)");
    }
    const std::uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>((n >> 16) & 0xFF);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(n & 0xFF);
  }
  return out;
}

std::string armor(std::string_view label, std::string_view bytes) {
  const std::string b64 = base64Encode(bytes);
  std::string out = "-----BEGIN " + std::string(label) + "-----\n";
  for (std::size_t i = 0; i < b64.size(); i += kLineLength) {
    out.append(b64, i, kLineLength);
    out += '\n';
  }
  out += "-----END " + std::string(label) + "-----\n";
  return out;
}

Result<std::string> dearmor(std::string_view text, std::string_view label, std::string_view what) {
  const std::string begin = "-----BEGIN " + std::string(label) + "-----";
  const std::string end = "-----END " + std::string(label) + "-----";
  text = trimPasteWhitespace(text);
  if (text.empty()) {
    return invalidArgument("the " + std::string(what) + " is empty: paste the whole text from " + begin + " to " + end);
  }
  std::vector<std::string_view> lines;
  for (std::size_t pos = 0;;) {
    const auto nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    if (line.ends_with('\r')) line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  if (lines.front() != begin) {
    constexpr std::string_view kBegin = "-----BEGIN ";
    if (lines.front().starts_with(kBegin) && lines.front().ends_with("-----") &&
        lines.front().size() > kBegin.size() + 5) {
      const auto other = lines.front().substr(kBegin.size(), lines.front().size() - kBegin.size() - 5);
      return invalidArgument("this is a '" + shown(other) + "' block, not a " + std::string(what) + ": a " +
                             std::string(what) + " starts with the line " + begin);
    }
    return invalidArgument("this is not a " + std::string(what) + ": it must start with the line " + begin +
                           " (it starts with '" + shown(lines.front()) + "')");
  }
  if (lines.size() < 2 || lines.back() != end) {
    return invalidArgument("the " + std::string(what) + " is incomplete or damaged: its last line must be " + end +
                           " (was it cut off when copying?)");
  }
  if (lines.size() < 3)
    return invalidArgument("the " + std::string(what) + " has nothing between its first and last line");
  std::string b64;
  for (std::size_t i = 1; i + 1 < lines.size(); ++i) {
    const bool last = i + 2 == lines.size();
    const auto n = lines[i].size();
    if ((!last && n != kLineLength) || (last && (n == 0 || n > kLineLength))) {
      return invalidArgument("the " + std::string(what) + " is damaged: line " + std::to_string(i + 1) + " has " +
                             std::to_string(n) + " characters where " +
                             (last ? std::string("1 to 64") : std::string("64")) + " are expected");
    }
    b64 += lines[i];
  }
  auto bytes = base64Decode(b64);
  if (!bytes.ok()) return invalidArgument("the " + std::string(what) + " is damaged: " + bytes.error().message());
  return std::move(bytes).value();
}

std::string writeFields(const Fields& fields) {
  std::string out;
  for (const auto& [k, v] : fields) out += k + ": " + v + "\n";
  return out;
}

Result<Fields> readFields(std::string_view payload, const std::vector<std::string_view>& keys, std::string_view what) {
  const std::string prefix = "the " + std::string(what) + " content is not valid: ";
  if (!payload.ends_with('\n')) return invalidArgument(prefix + "it does not end with a line break");
  Fields out;
  std::size_t pos = 0;
  for (const auto key : keys) {
    if (pos >= payload.size()) return invalidArgument(prefix + "the field '" + std::string(key) + "' is missing");
    const auto nl = payload.find('\n', pos);
    const std::string_view line = payload.substr(pos, nl - pos);
    pos = nl + 1;
    const auto colon = line.find(": ");
    if (colon == std::string_view::npos || line.substr(0, colon) != key) {
      return invalidArgument(prefix + "expected the field '" + std::string(key) + "', found '" + shown(line) + "'");
    }
    const auto value = line.substr(colon + 2);
    for (unsigned char c : value) {
      if (c < 0x20 || c == 0x7F)
        return invalidArgument(prefix + "the field '" + std::string(key) + "' has a control character");
    }
    out.emplace_back(std::string(key), std::string(value));
  }
  if (pos != payload.size()) return invalidArgument(prefix + "it has unexpected text after its last field");
  return out;
}

TimePoint truncateToSeconds(TimePoint t) {
  return std::chrono::floor<std::chrono::seconds>(t);
}

std::string formatTime(TimePoint t) {
  using namespace std::chrono;
  const auto secs = floor<seconds>(t);
  const auto day = floor<days>(secs);
  const year_month_day ymd(day);
  const hh_mm_ss hms(secs - day);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

Result<TimePoint> parseTime(std::string_view s, std::string_view field) {
  using namespace std::chrono;
  const auto bad = [&] {
    return invalidArgument(std::string(field) + ": '" + shown(s) + "' is not a time of the form 2025-01-31T12:00:00Z");
  };
  if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z') {
    return bad();
  }
  const int y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
  const int h = digits(s, 11, 2), mi = digits(s, 14, 2), se = digits(s, 17, 2);
  if (y < 1970 || mo < 1 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59) return bad();
  const year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return bad();
  const auto t = sys_days(ymd) + hours(h) + minutes(mi) + seconds(se);
  return time_point_cast<Duration>(t);
}

std::string sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xF];
  }
  return out;
}

}  // namespace kasm::license::detail
