#pragma once

// HTTP POST through libcurl for the AWS query APIs. Private to kasm::aws; curl types stay in the .cpp.
//
// Only the URL given is contacted: redirects are not followed, proxies from the environment are not
// used, and only http and https are allowed. Responses are bounded in size.

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"

namespace kasm::aws::detail {

struct HttpPost {
  std::string url;
  std::vector<std::string> headers;  // "Name: value" lines, sent as given.
  std::string body;
};

struct HttpReply {
  long status = 0;
  std::string body;
};

// Thread-safe: calls are serialised over one curl handle, so a keep-alive connection is reused.
class HttpClient {
 public:
  HttpClient(Duration timeout, std::size_t max_response_bytes);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // The reply whatever its status. Unavailable for a transport failure (cannot connect, reset,
  // timed out, a response over the size bound); the message says which and names the URL.
  Result<HttpReply> post(const HttpPost& request);

 private:
  Duration timeout_;
  std::size_t max_response_bytes_;
  std::mutex mu_;
  void* curl_ = nullptr;
};

}  // namespace kasm::aws::detail
