// Strict HTTP/1.x head scanner for the proxy's fast path (see http_scan.hpp).

#include "net/http_scan.hpp"

#include "kasm/net/http_server.hpp"

namespace kasm::net::detail {

namespace {

// RFC 9110 5.6.2 tchar.
constexpr std::array<bool, 256> makeTchar() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr auto kTchar = makeTchar();

// Field value bytes: VCHAR, SP, HTAB and obs-text; no other control characters.
inline bool isValueChar(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

// Finds the end of the head ("\r\n\r\n"); returns npos when it is not there yet.
std::size_t headEnd(std::string_view b) {
  auto pos = b.find("\r\n\r\n");
  return pos == std::string_view::npos ? pos : pos + 4;
}

bool parseVersion(std::string_view v, int& version) {
  if (v == "HTTP/1.1") {
    version = 11;
    return true;
  }
  if (v == "HTTP/1.0") {
    version = 10;
    return true;
  }
  return false;
}

// Fields between `p` and the blank line; false for anything not plain.
bool scanFields(std::string_view lines, MessageHead& head) {
  head.field_count = 0;
  while (!lines.empty()) {
    const auto eol = lines.find("\r\n");
    if (eol == std::string_view::npos) return false;
    std::string_view line = lines.substr(0, eol);
    lines.remove_prefix(eol + 2);
    // A bare LF or CR inside a line, or obs-fold (a line starting with whitespace): not plain.
    if (line.find_first_of("\r\n") != std::string_view::npos) return false;
    const auto colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return false;
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!kTchar[static_cast<unsigned char>(c)]) return false;
    }
    std::string_view value = line.substr(colon + 1);
    for (char c : value) {
      if (!isValueChar(static_cast<unsigned char>(c))) return false;
    }
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (head.field_count == MessageHead::kMaxFields) return false;
    head.fields[head.field_count++] = {name, value};
  }
  return true;
}

}  // namespace

bool listHasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    auto comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (equalsIgnoreCase(item, token)) return true;
  }
  return false;
}

bool parseLength(std::string_view value, std::size_t& out) {
  if (value.empty() || value.size() > 18) return false;
  std::size_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  out = n;
  return true;
}

const HeadField* MessageHead::find(std::string_view name) const {
  for (std::size_t i = 0; i < field_count; ++i) {
    if (equalsIgnoreCase(fields[i].name, name)) return &fields[i];
  }
  return nullptr;
}

ScanResult scanRequestHead(std::string_view bytes, MessageHead& head) {
  const auto end = headEnd(bytes);
  if (end == std::string_view::npos) return ScanResult::kIncomplete;
  std::string_view h = bytes.substr(0, end - 2);  // Through the last field's CRLF.
  const auto eol = h.find("\r\n");
  std::string_view line = h.substr(0, eol);
  // method SP target SP version, each non-empty, single spaces.
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return ScanResult::kComplex;
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return ScanResult::kComplex;
  head.method = line.substr(0, sp1);
  head.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  for (char c : head.method) {
    if (!kTchar[static_cast<unsigned char>(c)]) return ScanResult::kComplex;
  }
  for (char c : head.target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return ScanResult::kComplex;
  }
  if (!parseVersion(line.substr(sp2 + 1), head.version)) return ScanResult::kComplex;
  if (!scanFields(h.substr(eol + 2), head)) return ScanResult::kComplex;
  head.status = 0;
  head.reason = {};
  head.head_bytes = end;
  return ScanResult::kSimple;
}

ScanResult scanResponseHead(std::string_view bytes, MessageHead& head) {
  const auto end = headEnd(bytes);
  if (end == std::string_view::npos) return ScanResult::kIncomplete;
  std::string_view h = bytes.substr(0, end - 2);
  const auto eol = h.find("\r\n");
  std::string_view line = h.substr(0, eol);
  // version SP 3DIGIT SP reason
  if (line.size() < 13 || line[8] != ' ' || line[12] != ' ') return ScanResult::kComplex;
  if (!parseVersion(line.substr(0, 8), head.version)) return ScanResult::kComplex;
  int status = 0;
  for (int i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return ScanResult::kComplex;
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100) return ScanResult::kComplex;
  head.status = status;
  head.reason = line.substr(13);
  for (char c : head.reason) {
    if (!isValueChar(static_cast<unsigned char>(c))) return ScanResult::kComplex;
  }
  if (!scanFields(h.substr(eol + 2), head)) return ScanResult::kComplex;
  head.method = {};
  head.target = {};
  head.head_bytes = end;
  return ScanResult::kSimple;
}

}  // namespace kasm::net::detail
