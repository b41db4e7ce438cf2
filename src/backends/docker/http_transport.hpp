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

// A connection the engine switched to raw bytes (an exec with its input attached): what is written
// goes to the process's standard input, what is read is its multiplexed output. One thread at a time.
class RawConnection {
 public:
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  // Writes everything within `timeout` (DeadlineExceeded when the process stops reading).
  Result<void> write(std::string_view data, Duration timeout);
  // Up to `size` bytes, waiting up to `wait` for some: 0 when none came; Unavailable once closed.
  Result<std::size_t> readSome(char* out, std::size_t size, Duration wait);

 private:
  friend class HttpTransport;
  explicit RawConnection(void* handle) : handle_(handle) {}
  void* handle_;
  std::string pending_;  // Bytes that came with the 101's head.
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

  // POSTs `body` to `target` asking for "Upgrade: tcp" and returns the connection once the engine
  // answered 101; the engine's error otherwise (NotFound, FailedPrecondition, Unavailable).
  Result<std::unique_ptr<RawConnection>> upgrade(const std::string& target, const std::string& body);

  const std::string& endpoint() const { return options_.endpoint; }

 private:
  explicit HttpTransport(DockerOptions options) : options_(std::move(options)) {}
  // The endpoint's socket path or TLS settings on a curl handle.
  void applyEndpoint(void* handle) const;
  void* acquireHandle();
  void releaseHandle(void* handle);

  DockerOptions options_;
  std::string base_url_;   // "http://docker" for unix sockets, "https://host:port" for TLS.
  std::string unix_path_;  // Socket path; empty for TCP.
  std::mutex mu_;
  std::vector<void*> idle_;
};

}  // namespace kasm::docker::detail
