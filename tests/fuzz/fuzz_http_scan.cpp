// Fuzzes the proxy's request-head scanner (src/net/http_scan.hpp) against its fallback, Beast's
// parser, plus the small decoders the HTTP layer applies to what clients send (Content-Length,
// token lists, percent escapes of paths and query strings).
//
// The scanner promises that its fast path never takes what Beast would refuse: so whenever it says
// kSimple for a head the proxy's fast path would serve (no body, no upgrade: proxyFastEligible in
// src/net/proxy_fast.cpp, mirrored below), Beast must parse the same bytes to the same method,
// target, version and fields, and end the head at the same byte. The same holds for response heads
// whose framing the proxy reads itself (none, or one Content-Length parseLength accepts).

#include <algorithm>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_check.hpp"
#include "kasm/net/http_server.hpp"
#include "net/http_scan.hpp"

namespace {

namespace http = boost::beast::http;
using namespace kasm::net::detail;

// An invariant broke: say which, then abort so that libFuzzer keeps the input.
std::string_view sv(auto s) {
  return {s.data(), s.size()};
}

// proxyFastEligible (src/net/proxy_fast.cpp), which lives in a translation unit full of Asio.
bool fastEligible(const MessageHead& head) {
  if (head.method == "CONNECT") return false;
  for (std::size_t i = 0; i < head.field_count; ++i) {
    const auto& f = head.fields[i];
    if (kasm::net::equalsIgnoreCase(f.name, "Transfer-Encoding") || kasm::net::equalsIgnoreCase(f.name, "Upgrade"))
      return false;
    if (kasm::net::equalsIgnoreCase(f.name, "Content-Length") && f.value != "0") return false;
  }
  return true;
}

bool plainResponseFraming(const MessageHead& head) {
  int lengths = 0;
  for (std::size_t i = 0; i < head.field_count; ++i) {
    const auto& f = head.fields[i];
    if (kasm::net::equalsIgnoreCase(f.name, "Transfer-Encoding")) return false;
    if (kasm::net::equalsIgnoreCase(f.name, "Content-Length")) {
      std::size_t n = 0;
      if (++lengths > 1 || !parseLength(f.value, n)) return false;
    }
  }
  return true;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

template <bool isRequest>
void compareWithBeast(std::string_view bytes, const MessageHead& head) {
  http::parser<isRequest, http::empty_body> parser;
  parser.eager(false);
  parser.header_limit(std::numeric_limits<std::uint32_t>::max());
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  boost::beast::error_code ec;
  const std::size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  FUZZ_CHECK(!ec && parser.is_header_done());
  FUZZ_CHECK(used == head.head_bytes);
  const auto& msg = parser.get();
  FUZZ_CHECK(static_cast<int>(msg.version()) == head.version);
  if constexpr (isRequest) {
    FUZZ_CHECK(sv(msg.method_string()) == head.method);
    FUZZ_CHECK(sv(msg.target()) == head.target);
  } else {
    FUZZ_CHECK(static_cast<int>(msg.result_int()) == head.status);
    // An empty reason reads back as the standard one from Beast.
    FUZZ_CHECK(head.reason.empty() || sv(msg.reason()) == head.reason);
  }
  // Beast files a repeated field after the last one of its name, so compare per name, in order.
  std::vector<std::pair<std::string, std::string_view>> theirs, ours;
  for (const auto& f : msg) theirs.emplace_back(lowered(sv(f.name_string())), sv(f.value()));
  for (std::size_t i = 0; i < head.field_count; ++i)
    ours.emplace_back(lowered(head.fields[i].name), head.fields[i].value);
  auto byName = [](const auto& a, const auto& b) { return a.first < b.first; };
  std::stable_sort(theirs.begin(), theirs.end(), byName);
  std::stable_sort(ours.begin(), ours.end(), byName);
  FUZZ_CHECK(theirs == ours);
}

}  // namespace

// http_types.cpp's BlockingPool answers through Responder, defined with the server (Asio) in
// http_server.cpp; nothing here runs a pool, so this is never called.
void kasm::net::Responder::operator()(HttpResponse) const {
  std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  MessageHead head;
  const ScanResult request = scanRequestHead(bytes, head);
  if (request == ScanResult::kSimple) {
    FUZZ_CHECK(head.head_bytes >= 4 && head.head_bytes <= size && head.field_count <= MessageHead::kMaxFields);
    FUZZ_CHECK(bytes.substr(head.head_bytes - 4, 4) == "\r\n\r\n");
    FUZZ_CHECK(head.version == 10 || head.version == 11);
    for (std::size_t i = 0; i < head.field_count; ++i) FUZZ_CHECK(head.find(head.fields[i].name) != nullptr);
    if (fastEligible(head)) compareWithBeast<true>(bytes, head);
  }

  MessageHead response;
  if (scanResponseHead(bytes, response) == ScanResult::kSimple) {
    FUZZ_CHECK(response.status >= 100 && response.status <= 999);
    if (plainResponseFraming(response)) compareWithBeast<false>(bytes, response);
  }

  // The value decoders, on the same bytes.
  std::size_t length = 0;
  if (parseLength(bytes, length)) FUZZ_CHECK(std::to_string(length) == bytes || bytes.starts_with('0'));
  const auto comma = bytes.find(',');
  if (comma != std::string_view::npos) (void)listHasToken(bytes.substr(comma + 1), bytes.substr(0, comma));
  for (bool plus : {false, true}) {
    auto decoded = kasm::net::percentDecode(bytes, plus);
    if (decoded.ok()) FUZZ_CHECK(decoded.value().size() <= size);
  }
  return 0;
}
