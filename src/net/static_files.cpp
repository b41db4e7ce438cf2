// Static files for the web application: path checks first, then the file system, then caching
// headers. Nothing here knows about Beast; see kasm/net/static_files.hpp for the contract.

#include "kasm/net/static_files.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <utility>

namespace kasm::net {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kAllowedMethods = "GET, HEAD";

char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

HttpResponse plain(int status, std::string message) {
  HttpResponse r = HttpResponse::text(status, std::move(message) + "\n");
  r.headers.set("X-Content-Type-Options", "nosniff");
  r.headers.set("Cache-Control", "no-store");
  return r;
}

// True when `path` is `root` or lies below it. Both are canonical (no "..", no symbolic links).
bool isWithin(const std::string& root, const std::string& path) {
  if (path.compare(0, root.size(), root) != 0) return false;
  if (path.size() == root.size()) return true;
  return root.back() == '/' || path[root.size()] == '/';
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Splits "/a//b/c" into {"a", "b", "c"}.
std::vector<std::string_view> splitSegments(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// True when one of the entity tags in an If-None-Match value matches `etag` (weak comparison, as
// RFC 9110 asks for If-None-Match).
bool noneMatchHits(std::string_view header, std::string_view etag) {
  auto opaque = [](std::string_view tag) {
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (startsWith(tag, "W/")) tag.remove_prefix(2);
    return tag;
  };
  const std::string_view want = opaque(etag);
  std::size_t i = 0;
  while (i <= header.size()) {
    std::size_t j = header.find(',', i);
    if (j == std::string_view::npos) j = header.size();
    std::string_view tag = opaque(header.substr(i, j - i));
    if (tag == "*" || tag == want) return true;
    i = j + 1;
  }
  return false;
}

std::string hex(unsigned long long v) {
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%llx", v);
  return buf.data();
}

}  // namespace

std::string_view contentTypeFor(std::string_view file_name) noexcept {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"webmanifest", "application/manifest+json"},
      {"txt", "text/plain; charset=utf-8"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"avif", "image/avif"},
      {"ico", "image/x-icon"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"ttf", "font/ttf"},
      {"otf", "font/otf"},
      {"wasm", "application/wasm"},
      {"pdf", "application/pdf"},
      {"xml", "application/xml"},
  };
  const std::size_t slash = file_name.find_last_of('/');
  if (slash != std::string_view::npos) file_name.remove_prefix(slash + 1);
  const std::size_t dot = file_name.find_last_of('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  const std::string_view ext = file_name.substr(dot + 1);
  for (const auto& [known, type] : kTypes) {
    if (known.size() != ext.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < ext.size() && same; ++i) same = lower(ext[i]) == known[i];
    if (same) return type;
  }
  return "application/octet-stream";
}

Result<StaticFiles> StaticFiles::open(StaticFilesOptions options) {
  if (options.root.empty()) return invalidArgument("the static file root is empty");
  std::error_code ec;
  const fs::path canonical = fs::canonical(options.root, ec);
  if (ec) return invalidArgument("the static file root '" + options.root + "' cannot be resolved: " + ec.message());
  if (!fs::is_directory(canonical, ec)) {
    return invalidArgument("the static file root '" + options.root + "' is not a directory");
  }
  if (options.index.empty() || options.index.find('/') != std::string::npos) {
    return invalidArgument("the index must be a plain file name");
  }
  std::string root = canonical.string();
  return StaticFiles(std::move(options), std::move(root));
}

HttpResponse StaticFiles::serve(const HttpRequest& request) const {
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse r = plain(405, "only GET and HEAD are allowed here");
    r.headers.set("Allow", std::string(kAllowedMethods));
    return r;
  }
  const std::string_view raw = request.path;
  if (raw.empty() || raw.front() != '/') return plain(400, "the path must start with '/'");
  // Checked before and after decoding: a raw backslash or NUL is as suspicious as an encoded one.
  if (raw.find('\\') != std::string_view::npos || raw.find('\0') != std::string_view::npos) {
    return plain(400, "the path contains a forbidden character");
  }
  auto decoded = percentDecode(raw);
  if (!decoded.ok()) return plain(400, "the path has a bad percent escape");
  const std::string& path = *decoded;
  if (path.find('\\') != std::string::npos || path.find('\0') != std::string::npos) {
    return plain(400, "the path contains a forbidden character");
  }

  const std::vector<std::string_view> segments = splitSegments(path);
  std::string relative;
  for (std::string_view segment : segments) {
    if (segment == "." || segment == "..") return plain(400, "the path must not contain '.' or '..' segments");
    // Hidden files (.git, .env, ...) are never part of a built application.
    if (segment.front() == '.') return plain(404, "not found");
    if (!relative.empty()) relative += '/';
    relative += segment;
  }

  fs::path candidate = fs::path(root_) / relative;
  if (relative.empty() || path.back() == '/') candidate /= options_.index;
  std::error_code ec;
  fs::file_status status = fs::status(candidate, ec);  // Follows symbolic links; checked below.
  if (!ec && fs::is_directory(status)) {
    candidate /= options_.index;
    status = fs::status(candidate, ec);
  }
  if (!ec && fs::is_regular_file(status)) {
    const fs::path resolved = fs::canonical(candidate, ec);
    if (ec || !isWithin(root_, resolved.string())) return plain(404, "not found");
    return serveFile(request, resolved.string(), path);
  }

  // A client-side route ("/admin/agents") gets the application; a missing asset ("/x.js") does not.
  const bool excluded = [&] {
    for (const std::string& prefix : options_.no_fallback_prefixes) {
      if (startsWith(path, prefix)) return true;
      std::string_view bare = prefix;
      if (!bare.empty() && bare.back() == '/') bare.remove_suffix(1);
      if (path == bare) return true;
    }
    return false;
  }();
  const bool has_extension = !segments.empty() && segments.back().find('.') != std::string_view::npos;
  if (options_.spa_fallback && !excluded && !has_extension) {
    const fs::path index = fs::canonical(fs::path(root_) / options_.index, ec);
    if (!ec && isWithin(root_, index.string()) && fs::is_regular_file(index, ec)) {
      return serveFile(request, index.string(), "/" + options_.index);
    }
  }
  return plain(404, "not found");
}

HttpResponse StaticFiles::serveFile(const HttpRequest& request, const std::string& file,
                                    std::string_view url_path) const {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) return plain(404, "not found");
  if (size > options_.max_file_bytes) return plain(404, "not found");
  const auto modified = fs::last_write_time(file, ec);
  if (ec) return plain(404, "not found");
  const auto ticks = static_cast<unsigned long long>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(modified.time_since_epoch()).count());
  const std::string etag = "\"" + hex(size) + "-" + hex(ticks) + "\"";

  HttpResponse r;
  r.headers.set("ETag", etag);
  r.headers.set("Cache-Control", startsWith(url_path, options_.immutable_prefix) && !options_.immutable_prefix.empty()
                                     ? "public, max-age=31536000, immutable"
                                     : "no-cache");
  r.headers.set("X-Content-Type-Options", "nosniff");
  if (auto inm = request.headers.find("if-none-match"); inm && noneMatchHits(*inm, etag)) {
    r.status = 304;
    return r;
  }
  r.status = 200;
  r.headers.set("Content-Type", std::string(contentTypeFor(file)));
  if (request.method == "HEAD") {
    // The size the GET would send; HttpServer keeps a HEAD answer's Content-Length.
    r.headers.set("Content-Length", std::to_string(size));
    return r;
  }

  std::ifstream in(file, std::ios::binary);
  if (!in) return plain(404, "not found");
  std::string body;
  body.resize(static_cast<std::size_t>(size));
  in.read(body.data(), static_cast<std::streamsize>(body.size()));
  // The file may have shrunk since it was measured; serve what was there.
  body.resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) return plain(500, "the file could not be read");
  r.body = std::move(body);
  return r;
}

}  // namespace kasm::net
