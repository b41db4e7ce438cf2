// What crosses the proxy besides the bytes: the session path, the access token in the query or a
// cookie, and the control plane's credentials, which never reach a container; the cookies a
// container sets, which stay inside its session's path; the Origin of WebSocket upgrades.

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

namespace {

std::string_view trimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(part) for each ';'-separated part of a cookie string, trimmed.
template <class F>
void forEachCookiePart(std::string_view v, F f) {
  while (!v.empty()) {
    const auto semi = v.find(';');
    const std::string_view part = trimSpaces(v.substr(0, semi));
    v = semi == std::string_view::npos ? std::string_view{} : v.substr(semi + 1);
    if (!part.empty()) f(part);
  }
}

std::string_view cookieName(std::string_view cookie) {
  const auto eq = cookie.find('=');
  // A cookie without '=' has an empty name (RFC 6265bis 5.6).
  return eq == std::string_view::npos ? std::string_view{} : trimSpaces(cookie.substr(0, eq));
}

// "host:port" without the port when it is the scheme's default, for comparing origins.
std::string_view withoutDefaultPort(std::string_view authority, bool https) {
  const std::string_view port = https ? ":443" : ":80";
  return authority.ends_with(port) ? authority.substr(0, authority.size() - port.size()) : authority;
}

}  // namespace

bool isControlCookie(const ProxyOptions& options, std::string_view name) {
  if (name == options.token_cookie) return true;
  for (const auto& c : options.strip_cookies) {
    if (name == c) return true;
  }
  return false;
}

bool isCredentialField(const ProxyOptions& options, std::string_view name) {
  if (equalsIgnoreCase(name, "Authorization")) return true;
  for (const auto& h : options.strip_headers) {
    if (equalsIgnoreCase(name, h)) return true;
  }
  return false;
}

bool appendContainerCookies(std::string& out, std::string_view value, const ProxyOptions& options) {
  const std::size_t start = out.size();
  forEachCookiePart(value, [&](std::string_view cookie) {
    if (isControlCookie(options, cookieName(cookie))) return;
    if (out.size() > start) out.append("; ");
    out.append(cookie);
  });
  return out.size() > start;
}

bool appendConfinedSetCookie(std::string& out, std::string_view value, const SessionPath& path,
                             const ProxyOptions& options) {
  const auto semi = value.find(';');
  const std::string_view pair = trimSpaces(value.substr(0, semi));
  // A nameless cookie is sent back as its bare value, which could read as "kasm_auth=...".
  const std::string_view name = cookieName(pair);
  if (name.empty() || isControlCookie(options, name)) return false;
  out.append(pair);
  bool has_path = false;
  forEachCookiePart(semi == std::string_view::npos ? std::string_view{} : value.substr(semi + 1),
                    [&](std::string_view attr) {
                      const auto eq = attr.find('=');
                      const std::string_view name = trimSpaces(attr.substr(0, eq));
                      // Domain would widen the cookie to other hosts; the browser's default (this
                      // host only) is what a session may have.
                      if (equalsIgnoreCase(name, "Domain")) return;
                      if (equalsIgnoreCase(name, "Path")) {
                        // The upstream's path is relative to its root, which is the session's path.
                        std::string_view p = eq == std::string_view::npos ? "" : trimSpaces(attr.substr(eq + 1));
                        p = p.starts_with('/') ? p.substr(1) : std::string_view{};
                        out.append("; Path=").append(path.prefix).append(path.session).append("/").append(p);
                        has_path = true;
                        return;
                      }
                      out.append("; ").append(attr);
                    });
  if (!has_path) out.append("; Path=").append(path.prefix).append(path.session).append("/");
  return true;
}

bool originAllowed(const ProxyOptions& options, std::string_view origin, std::string_view host) {
  origin = trimSpaces(origin);
  for (const auto& allowed : options.allowed_origins) {
    if (equalsIgnoreCase(origin, allowed)) return true;
  }
  bool https = false;
  if (origin.size() > 8 && equalsIgnoreCase(origin.substr(0, 8), "https://")) {
    https = true;
    origin.remove_prefix(8);
  } else if (origin.size() > 7 && equalsIgnoreCase(origin.substr(0, 7), "http://")) {
    origin.remove_prefix(7);
  } else {
    return false;  // "null" (an opaque origin), or not an origin at all.
  }
  host = trimSpaces(host);
  if (host.empty() || origin.find('/') != std::string_view::npos) return false;
  return equalsIgnoreCase(withoutDefaultPort(origin, https), withoutDefaultPort(host, https));
}

}  // namespace kasm::net::detail
