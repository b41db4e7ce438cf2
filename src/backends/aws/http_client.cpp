#include "backends/aws/http_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>

namespace kasm::aws::detail {
namespace {

// curl_global_init is not thread-safe; every client goes through here first.
void initCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Sink {
  std::string* body = nullptr;
  std::size_t limit = 0;
  bool too_large = false;
};

size_t onBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (sink->body->size() + n > sink->limit) {
    sink->too_large = true;
    return 0;  // Makes curl stop with CURLE_WRITE_ERROR.
  }
  sink->body->append(data, n);
  return n;
}

struct HeaderList {
  curl_slist* list = nullptr;
  ~HeaderList() { curl_slist_free_all(list); }
  bool add(const std::string& line) {
    curl_slist* next = curl_slist_append(list, line.c_str());
    if (!next) return false;
    list = next;
    return true;
  }
};

}  // namespace

HttpClient::HttpClient(Duration timeout, std::size_t max_response_bytes)
    : timeout_(timeout), max_response_bytes_(max_response_bytes) {
  initCurlOnce();
}

HttpClient::~HttpClient() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<HttpReply> HttpClient::post(const HttpPost& request) {
  std::lock_guard lock(mu_);
  if (!curl_) curl_ = curl_easy_init();
  CURL* curl = static_cast<CURL*>(curl_);
  if (!curl) return unavailable("aws: cannot make an HTTP handle (libcurl)");
  curl_easy_reset(curl);

  HeaderList headers;
  for (const auto& h : request.headers)
    if (!headers.add(h)) return unavailable("aws: out of memory building HTTP headers");
  // No "Expect: 100-continue" round trip for the small bodies sent here.
  if (!headers.add("Expect:")) return unavailable("aws: out of memory building HTTP headers");

  HttpReply reply;
  Sink sink{&reply.body, max_response_bytes_, false};
  char error_detail[CURL_ERROR_SIZE] = {0};
  const long timeout_ms = static_cast<long>(std::max<Duration::rep>(1, timeout_.count()));
  const long connect_ms = std::min<long>(timeout_ms, 10'000);

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &onBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_detail);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  // Only the configured endpoint: no redirects, no proxy from http_proxy and friends, http(s) only.
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif

  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  if (sink.too_large) {
    return unavailable("aws: the answer of " + request.url + " is larger than " + std::to_string(max_response_bytes_) +
                       " bytes; refused");
  }
  if (rc != CURLE_OK) {
    std::string msg = "aws: " + request.url + ": " + curl_easy_strerror(rc);
    if (error_detail[0]) msg += std::string(" (") + error_detail + ")";
    return unavailable(msg);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

}  // namespace kasm::aws::detail
