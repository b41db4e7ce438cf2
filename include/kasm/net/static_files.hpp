#pragma once

// Serves the files of one directory over HTTP: the web application kasm-server ships (web/dist) or
// an integrator's own single-page application. Pure C++ over HttpRequest/HttpResponse, so it mounts
// on HttpServer or on any other server that can build those two types.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/result.hpp"
#include "kasm/net/http_server.hpp"

namespace kasm::net {

struct StaticFilesOptions {
  // The directory to serve. Must exist; it is resolved to its canonical path once, at open().
  std::string root;
  // Served for "/" and for any request path ending in '/'.
  std::string index = "index.html";
  // When a path names no file, its last segment has no '.', and it is not under one of
  // `no_fallback_prefixes`, answer with the index (a single-page application's client-side route).
  bool spa_fallback = true;
  // Paths that never fall back to the index: an unknown API path must stay a 404, not an HTML page.
  std::vector<std::string> no_fallback_prefixes = {"/api/", "/desktop/"};
  // Files under this prefix have content-hashed names (Vite's "/assets/"), so browsers may cache
  // them forever. Every other file is served with "no-cache" (revalidate with the ETag).
  std::string immutable_prefix = "/assets/";
  // Larger files get 404 rather than being read into memory; the application's assets are small.
  std::size_t max_file_bytes = 64 * 1024 * 1024;
};

// The Content-Type for a file name by its extension ("app.js" -> "text/javascript; charset=utf-8");
// "application/octet-stream" for an unknown one. ASCII case is ignored.
std::string_view contentTypeFor(std::string_view file_name) noexcept;

// Answers GET and HEAD for files under a root directory.
//
// - "/" and "/dir/" serve the index file; unknown extension-less paths serve the index too (see
//   StaticFilesOptions::spa_fallback); other unknown paths get 404.
// - Refused: "." or ".." segments (also percent-encoded: "%2e%2e"), backslashes, NUL, bad escapes
//   (400); hidden files (a segment starting with '.') and symbolic links that resolve outside the
//   root (404). Methods other than GET and HEAD get 405 with an Allow header.
// - Every file answer carries an ETag (size and modification time), Cache-Control, Content-Type and
//   X-Content-Type-Options: nosniff; a matching If-None-Match gets 304 without a body. HEAD gets the
//   same status and headers as GET without a body.
//
// Threading: const and thread-safe. serve() does blocking file I/O: run it on a handler pool
// (HttpServerOptions::handler_threads or runOnPool), not on an I/O thread.
class StaticFiles {
 public:
  // InvalidArgument when the root is empty, missing or not a directory.
  static Result<StaticFiles> open(StaticFilesOptions options);

  // The response for one request. Never fails: problems become 4xx/5xx responses with a short
  // plain-text body.
  HttpResponse serve(const HttpRequest& request) const;

  // The canonical root directory.
  const std::string& root() const noexcept { return root_; }

 private:
  StaticFiles(StaticFilesOptions options, std::string root) : options_(std::move(options)), root_(std::move(root)) {}

  HttpResponse serveFile(const HttpRequest& request, const std::string& file, std::string_view url_path) const;

  StaticFilesOptions options_;
  std::string root_;
};

}  // namespace kasm::net
