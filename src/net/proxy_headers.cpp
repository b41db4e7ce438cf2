// What crosses the proxy besides the bytes: the session path, the access token in the query or a
// cookie.

#include "net/proxy_impl.hpp"

namespace kasm::net::detail {

bool isSafeRest(std::string_view rest) {
  std::size_t pos = 0;
  while (pos <= rest.size()) {
    auto next = rest.find('/', pos);
    std::string_view seg = rest.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos);
    if (seg.find('\\') != std::string_view::npos) return false;
    if (seg.find('%') == std::string_view::npos) {
      if (seg == "." || seg == "..") return false;
    } else {
      auto decoded = percentDecode(seg);
      if (!decoded.ok()) return false;
      if (*decoded == "." || *decoded == "..") return false;
      if (decoded->find_first_of(std::string_view("/\\\0", 3)) != std::string::npos) return false;
    }
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return true;
}

TokenSplit splitQueryToken(std::string_view query) {
  TokenSplit out;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = part.find('=');
    if (part.substr(0, eq) == "token") {
      if (!out.from_query && eq != std::string_view::npos) {
        const std::string_view raw = part.substr(eq + 1);
        if (raw.find_first_of("%+") == std::string_view::npos) {  // Nothing to decode (the usual token).
          out.token.assign(raw);
          out.from_query = true;
          continue;
        }
        auto decoded = percentDecode(raw, true);
        if (decoded.ok()) {
          out.token = std::move(*decoded);
          out.from_query = true;
        }
      }
      continue;
    }
    if (!out.query.empty()) out.query.push_back('&');
    out.query.append(part);
  }
  return out;
}

bool splitCookie(std::string_view v, std::string_view name, std::string& token, std::string* kept) {
  bool found = false;
  while (!v.empty()) {
    auto semi = v.find(';');
    std::string_view c = v.substr(0, semi);
    v = semi == std::string_view::npos ? std::string_view{} : v.substr(semi + 1);
    while (!c.empty() && c.front() == ' ') c.remove_prefix(1);
    if (c.empty()) continue;
    auto eq = c.find('=');
    if (eq != std::string_view::npos && c.substr(0, eq) == name) {
      found = true;
      if (token.empty()) token = std::string(c.substr(eq + 1));
      continue;
    }
    if (!kept) continue;
    if (!kept->empty()) kept->append("; ");
    kept->append(c);
  }
  return found;
}

}  // namespace kasm::net::detail
