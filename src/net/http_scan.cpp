// Strict HTTP/1.x head scanner for the proxy's fast path (see http_scan.hpp).

#include "net/http_scan.hpp"

#include <cstring>
#include <vector>

#include "kasm/net/http_server.hpp"

namespace {

// Heads kept per I/O thread: enough for the requests in flight on one thread at once.
constexpr std::size_t kHeadCacheSize = 32;

std::vector<std::unique_ptr<kasm::net::detail::MessageHead>>& headCache() {
  thread_local std::vector<std::unique_ptr<kasm::net::detail::MessageHead>> cache;
  return cache;
}

}  // namespace

namespace kasm::net::detail {

std::unique_ptr<MessageHead> takeMessageHead() {
  auto& cache = headCache();
  if (cache.empty()) return std::make_unique<MessageHead>();
  auto head = std::move(cache.back());
  cache.pop_back();
  return head;
}

void giveMessageHead(std::unique_ptr<MessageHead>& head) {
  if (!head) return;
  auto& cache = headCache();
  if (cache.size() < kHeadCacheSize) cache.push_back(std::move(head));
  head.reset();
}

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

// The line starting at `pos`, which must end in CRLF; `pos` moves past it. kSimple when there is
// one, kComplex for a bare LF (a CR inside a line is caught by the callers' character checks).
ScanResult nextLine(std::string_view b, std::size_t& pos, std::string_view& line) {
  if (pos >= b.size()) return ScanResult::kIncomplete;  // Also: memchr must not see a null pointer.
  const char* start = b.data() + pos;
  const void* nl = std::memchr(start, '\n', b.size() - pos);
  if (!nl) return ScanResult::kIncomplete;
  const char* end = static_cast<const char*>(nl);
  if (end == start || end[-1] != '\r') return ScanResult::kComplex;
  line = std::string_view(start, static_cast<std::size_t>(end - 1 - start));
  pos = static_cast<std::size_t>(end + 1 - b.data());
  return ScanResult::kSimple;
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

// A comma-separated list of tokens (optional whitespace around items, empty items allowed), as
// Beast requires of the fields it interprets.
bool isTokenList(std::string_view v) {
  bool in_token = false, after_token = false;
  for (char c : v) {
    if (kTchar[static_cast<unsigned char>(c)]) {
      if (after_token) return false;  // "a b": two tokens without a comma.
      in_token = true;
    } else if (c == ' ' || c == '\t') {
      if (in_token) after_token = true;
      in_token = false;
    } else if (c == ',') {
      in_token = after_token = false;
    } else {
      return false;
    }
  }
  return true;
}

// Fields whose value Beast parses and refuses when malformed: the scanner must not call a head
// plain when Beast would refuse it.
bool wellFormedSpecialField(std::string_view name, std::string_view value) {
  if (name.size() == 10 && equalsIgnoreCase(name, "Connection")) return isTokenList(value);
  if (name.size() == 17 && equalsIgnoreCase(name, "Transfer-Encoding")) return isTokenList(value);
  if (name.size() == 14 && equalsIgnoreCase(name, "Content-Length")) {
    std::size_t n = 0;
    return parseLength(value, n);
  }
  return true;
}

// The fields from `pos` through the blank line, in one pass.
ScanResult scanFields(std::string_view b, std::size_t pos, MessageHead& head) {
  head.field_count = 0;
  for (;;) {
    std::string_view line;
    if (auto r = nextLine(b, pos, line); r != ScanResult::kSimple) return r;
    if (line.empty()) {
      head.head_bytes = pos;
      return ScanResult::kSimple;
    }
    // A line starting with whitespace (obs-fold) has no valid name: not plain.
    const auto colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return ScanResult::kComplex;
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!kTchar[static_cast<unsigned char>(c)]) return ScanResult::kComplex;
    }
    std::string_view value = line.substr(colon + 1);
    for (char c : value) {
      if (!isValueChar(static_cast<unsigned char>(c))) return ScanResult::kComplex;
    }
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (!wellFormedSpecialField(name, value)) return ScanResult::kComplex;
    if (head.field_count == MessageHead::kMaxFields) return ScanResult::kComplex;
    head.fields[head.field_count++] = {name, value};
  }
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
  std::size_t pos = 0;
  std::string_view line;
  if (auto r = nextLine(bytes, pos, line); r != ScanResult::kSimple) return r;
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
  head.status = 0;
  head.reason = {};
  return scanFields(bytes, pos, head);
}

ScanResult scanResponseHead(std::string_view bytes, MessageHead& head) {
  std::size_t pos = 0;
  std::string_view line;
  if (auto r = nextLine(bytes, pos, line); r != ScanResult::kSimple) return r;
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
  head.method = {};
  head.target = {};
  return scanFields(bytes, pos, head);
}

}  // namespace kasm::net::detail
