#pragma once

// Internal to kasm::net: a strict, allocation-free scanner for HTTP/1.x message heads, used by the
// proxy's fast path. It recognises only the plain, well-formed case (CRLF line ends, token field
// names, no obs-fold, at most kMaxFields fields) and says "complex" for anything else, which then
// goes to Beast's parser: the fast path never accepts what Beast would refuse, it only skips
// Beast's per-field allocations for the common case.

#include <array>
#include <cstddef>
#include <memory>
#include <string_view>

namespace kasm::net::detail {

struct HeadField {
  std::string_view name;
  std::string_view value;  // Without surrounding whitespace.
};

struct MessageHead {
  static constexpr std::size_t kMaxFields = 64;
  // Request line, or status line for responses.
  std::string_view method;
  std::string_view target;
  int status = 0;
  std::string_view reason;
  int version = 0;  // 10 or 11.
  std::array<HeadField, kMaxFields> fields;
  std::size_t field_count = 0;
  std::size_t head_bytes = 0;  // Through the blank line.

  // The first field of that name (case-insensitive), or nullptr.
  const HeadField* find(std::string_view name) const;
};

// A MessageHead (2 KiB of field slots) for a message being handled, and back when the connection
// goes idle: a keep-alive connection waiting for its next request holds none, and a busy one
// costs no allocation (a per-thread cache).
std::unique_ptr<MessageHead> takeMessageHead();
void giveMessageHead(std::unique_ptr<MessageHead>& head);

enum class ScanResult { kIncomplete, kSimple, kComplex };

ScanResult scanRequestHead(std::string_view bytes, MessageHead& head);
ScanResult scanResponseHead(std::string_view bytes, MessageHead& head);

// True when the comma-separated list `value` holds `token` (case-insensitive).
bool listHasToken(std::string_view value, std::string_view token);
// Content-Length: a plain decimal (no sign, no spaces inside, no overflow).
bool parseLength(std::string_view value, std::size_t& out);

}  // namespace kasm::net::detail
