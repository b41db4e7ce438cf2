#pragma once

// HTTP/1.1 to the Docker engine through libcurl: unix socket, plain TCP or TLS. Private to
// kasm::docker; curl types stay in the .cpp.

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"
#include "kasm/docker/docker_runtime.hpp"

namespace kasm::docker::detail {

struct HttpRequest {
  std::string method = "GET";
  std::string target;                // Path and query, e.g. "/v1.41/containers/json?all=1".
  std::string body;                  // Sent as application/json when non-empty (or when POST).
  std::vector<std::string> headers;  // Extra "Name: value" lines.
  Duration timeout{0};               // 0 = the transport's default; negative = no limit.
  // When set, body bytes are handed over as they arrive instead of being collected; returning
  // false stops the transfer (the send then fails with Aborted).
  std::function<bool(std::string_view)> on_data;
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string content_type;
};

// Thread-safe: each send() uses its own curl handle; idle handles are pooled so that keep-alive
// connections are reused across calls.
class HttpTransport {
 public:
  // InvalidArgument for an endpoint that is neither unix://, tcp:// nor http(s)://.
  static Result<std::unique_ptr<HttpTransport>> create(const DockerOptions& options);
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Returns the response whatever its status; errors only for transport failures:
  // Unavailable (cannot connect, connection dropped), DeadlineExceeded (timeout), Aborted.
  Result<HttpResponse> send(const HttpRequest& request);

  const std::string& endpoint() const { return options_.endpoint; }

 private:
  explicit HttpTransport(DockerOptions options) : options_(std::move(options)) {}
  void* acquireHandle();
  void releaseHandle(void* handle);

  DockerOptions options_;
  std::string base_url_;   // "http://docker" for unix sockets, "https://host:port" for TLS.
  std::string unix_path_;  // Socket path; empty for TCP.
  std::mutex mu_;
  std::vector<void*> idle_;
};

}  // namespace kasm::docker::detail
