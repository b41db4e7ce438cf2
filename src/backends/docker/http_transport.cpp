#include "backends/docker/http_transport.hpp"

#include <curl/curl.h>
#include <poll.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

namespace kasm::docker::detail {
namespace {

// curl_global_init is not thread-safe; every transport goes through here first.
void initCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Sink {
  CURL* curl = nullptr;
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  bool stopped_by_reader = false;
};

size_t onBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (sink->request->on_data) {
    // Only successful answers stream; an error status is collected so it can be reported.
    long status = 0;
    curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 300) {
      sink->response->body.append(data, n);
      return n;
    }
    if (!sink->request->on_data(std::string_view(data, n))) {
      sink->stopped_by_reader = true;
      return 0;
    }
    return n;
  }
  sink->response->body.append(data, n);
  return n;
}

Error curlError(CURLcode code, const char* detail, const std::string& endpoint) {
  std::string msg = "docker engine at " + endpoint + ": " + curl_easy_strerror(code);
  if (detail && *detail) msg += std::string(" (") + detail + ")";
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT: return deadlineExceeded(msg);
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE: return unavailable(msg);
    default: return unavailable(msg);
  }
}

}  // namespace

Result<std::unique_ptr<HttpTransport>> HttpTransport::create(const DockerOptions& options) {
  initCurlOnce();
  std::unique_ptr<HttpTransport> t(new HttpTransport(options));
  const std::string& ep = options.endpoint;
  auto startsWith = [&](std::string_view p) { return ep.rfind(p, 0) == 0; };
  if (startsWith("unix://")) {
    t->unix_path_ = ep.substr(7);
    if (t->unix_path_.empty() || t->unix_path_[0] != '/') {
      return invalidArgument("docker endpoint '" + ep + "': a unix socket needs an absolute path");
    }
    // The host name is ignored on a unix socket but must be a valid one.
    t->base_url_ = "http://docker";
  } else if (startsWith("tcp://") || startsWith("http://") || startsWith("https://")) {
    std::string rest = ep.substr(ep.find("://") + 3);
    if (rest.empty()) return invalidArgument("docker endpoint '" + ep + "' has no host");
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    const bool tls = options.tls.has_value() || startsWith("https://");
    t->base_url_ = std::string(tls ? "https://" : "http://") + rest;
  } else {
    return invalidArgument("docker endpoint '" + ep + "' must start with unix://, tcp://, http:// or https://");
  }
  return t;
}

HttpTransport::~HttpTransport() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* HttpTransport::acquireHandle() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void HttpTransport::releaseHandle(void* handle) {
  // Bounded pool: beyond a few idle connections, close rather than hoard sockets.
  std::lock_guard lock(mu_);
  if (idle_.size() < 16) {
    idle_.push_back(handle);
  } else {
    curl_easy_cleanup(static_cast<CURL*>(handle));
  }
}

void HttpTransport::applyEndpoint(void* handle) const {
  CURL* curl = static_cast<CURL*>(handle);
  if (!unix_path_.empty()) curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, unix_path_.c_str());
  if (options_.tls) {
    const auto& tls = *options_.tls;
    if (!tls.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, tls.ca_file.c_str());
    if (!tls.cert_file.empty()) curl_easy_setopt(curl, CURLOPT_SSLCERT, tls.cert_file.c_str());
    if (!tls.key_file.empty()) curl_easy_setopt(curl, CURLOPT_SSLKEY, tls.key_file.c_str());
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, tls.verify_peer ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, tls.verify_peer ? 2L : 0L);
    // Resumed sessions fail against TLS terminators that verify client certificates without a
    // session id context (socat: "session id context uninitialized"). Connections are pooled,
    // so full handshakes are rare anyway.
    curl_easy_setopt(curl, CURLOPT_SSL_SESSIONID_CACHE, 0L);
  }
}

Result<HttpResponse> HttpTransport::send(const HttpRequest& request) {
  CURL* curl = static_cast<CURL*>(acquireHandle());
  if (!curl) return internalError("curl_easy_init failed");
  curl_easy_reset(curl);

  HttpResponse response;
  Sink sink{curl, &request, &response};
  char error_buffer[CURL_ERROR_SIZE] = {0};
  const std::string url = base_url_ + request.target;

  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &onBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
  Duration timeout = request.timeout.count() == 0 ? options_.request_timeout : request.timeout;
  if (timeout.count() > 0) curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  applyEndpoint(curl);

  if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  const bool has_body = !request.body.empty() || request.method == "POST";
  if (has_body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }

  struct curl_slist* headers = nullptr;
  bool typed = false;
  for (const auto& h : request.headers) typed = typed || h.rfind("Content-Type:", 0) == 0;
  if (has_body && !typed) headers = curl_slist_append(headers, "Content-Type: application/json");
  // curl adds "Expect: 100-continue" for larger bodies; the engine does not need the round trip.
  headers = curl_slist_append(headers, "Expect:");
  for (const auto& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

  CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);

  if (rc != CURLE_OK) {
    // A handle that failed mid-transfer may hold a broken connection; do not pool it.
    curl_easy_cleanup(curl);
    if (sink.stopped_by_reader) return aborted("transfer stopped by the reader");
    return curlError(rc, error_buffer, options_.endpoint);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  char* content_type = nullptr;
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &content_type);
  if (content_type) response.content_type = content_type;
  releaseHandle(curl);
  return response;
}

// ---- raw connections ---------------------------------------------------------------------------

namespace {

// Waits until the connection's socket can be read (or written); false on timeout.
bool waitSocket(CURL* curl, bool for_write, Duration wait) {
  curl_socket_t fd = CURL_SOCKET_BAD;
  if (curl_easy_getinfo(curl, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK || fd == CURL_SOCKET_BAD) return false;
  pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
  return ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(wait.count(), 0))) > 0;
}

}  // namespace

RawConnection::~RawConnection() {
  if (handle_) curl_easy_cleanup(static_cast<CURL*>(handle_));
}

Result<void> RawConnection::write(std::string_view data, Duration timeout) {
  CURL* curl = static_cast<CURL*>(handle_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!data.empty()) {
    size_t sent = 0;
    const CURLcode rc = curl_easy_send(curl, data.data(), data.size(), &sent);
    if (rc == CURLE_AGAIN) {
      const auto left = std::chrono::duration_cast<Duration>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !waitSocket(curl, true, left)) return deadlineExceeded("docker: the input stalled");
      continue;
    }
    if (rc != CURLE_OK) return unavailable(std::string("docker: sending input failed: ") + curl_easy_strerror(rc));
    data.remove_prefix(sent);
  }
  return {};
}

Result<std::size_t> RawConnection::readSome(char* out, std::size_t size, Duration wait) {
  if (!pending_.empty()) {
    const std::size_t n = std::min(size, pending_.size());
    std::copy_n(pending_.data(), n, out);
    pending_.erase(0, n);
    return n;
  }
  CURL* curl = static_cast<CURL*>(handle_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    size_t got = 0;
    const CURLcode rc = curl_easy_recv(curl, out, size, &got);
    if (rc == CURLE_OK) {
      if (got == 0) return unavailable("docker: the connection closed");
      return got;
    }
    if (rc != CURLE_AGAIN) return unavailable(std::string("docker: reading failed: ") + curl_easy_strerror(rc));
    if (attempt == 0 && !waitSocket(curl, false, wait)) return std::size_t{0};
  }
  return std::size_t{0};
}

Result<std::unique_ptr<RawConnection>> HttpTransport::upgrade(const std::string& target, const std::string& body) {
  CURL* curl = curl_easy_init();
  if (!curl) return internalError("curl_easy_init failed");
  std::unique_ptr<RawConnection> raw(new RawConnection(curl));
  char error_buffer[CURL_ERROR_SIZE] = {0};
  const std::string url = base_url_ + target;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
  applyEndpoint(curl);
  if (CURLcode rc = curl_easy_perform(curl); rc != CURLE_OK) return curlError(rc, error_buffer, options_.endpoint);
  // The request by hand: the engine answers 101 and the connection carries the process's streams.
  const std::string request = "POST " + target +
                              " HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
                              "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  KASM_RETURN_IF_ERROR(raw->write(request, options_.request_timeout));
  std::string head;
  const auto deadline = std::chrono::steady_clock::now() + options_.request_timeout;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos) {
    if (head.size() > 64 * 1024 || std::chrono::steady_clock::now() > deadline) {
      return unavailable("docker: no answer to the upgrade");
    }
    KASM_ASSIGN_OR_RETURN(std::size_t n, raw->readSome(buf, sizeof buf, std::chrono::milliseconds(200)));
    head.append(buf, n);
  }
  const std::size_t end = head.find("\r\n\r\n") + 4;
  if (head.rfind("HTTP/1.1 101", 0) != 0 && head.rfind("HTTP/1.0 101", 0) != 0) {
    const std::string status = head.substr(0, head.find("\r\n"));
    const std::string detail = head.substr(end, 300);
    if (status.find(" 409 ") != std::string::npos) return failedPrecondition("docker: " + status + " " + detail);
    if (status.find(" 404 ") != std::string::npos) return notFound("docker: " + status + " " + detail);
    return unavailable("docker: the upgrade was refused: " + status + " " + detail);
  }
  raw->pending_ = head.substr(end);
  return raw;
}

}  // namespace kasm::docker::detail
