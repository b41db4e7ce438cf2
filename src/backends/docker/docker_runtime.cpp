// Connection, version negotiation, host resources and the request plumbing of DockerRuntime.

#include <cstdlib>

#include "backends/docker/docker_runtime_impl.hpp"

namespace kasm::docker {

DockerOptions DockerOptions::fromEnvironment() {
  DockerOptions options;
  if (const char* host = std::getenv("DOCKER_HOST"); host && *host) options.endpoint = host;
  const char* verify = std::getenv("DOCKER_TLS_VERIFY");
  if (verify && *verify && std::string(verify) != "0") {
    std::string dir;
    if (const char* p = std::getenv("DOCKER_CERT_PATH"); p && *p) {
      dir = p;
    } else if (const char* home = std::getenv("HOME")) {
      dir = std::string(home) + "/.docker";
    }
    DockerTlsOptions tls;
    tls.ca_file = dir + "/ca.pem";
    tls.cert_file = dir + "/cert.pem";
    tls.key_file = dir + "/key.pem";
    options.tls = tls;
  }
  return options;
}

Result<std::unique_ptr<spi::ContainerRuntime>> openDockerRuntime(const DockerOptions& options) {
  KASM_ASSIGN_OR_RETURN(auto http, detail::HttpTransport::create(options));
  // /version is served unversioned by every engine, so it is how the version is learnt.
  detail::HttpRequest request;
  request.target = "/version";
  request.timeout = options.connect_timeout + std::chrono::seconds(5);
  KASM_ASSIGN_OR_RETURN(auto response, http->send(request));
  if (response.status != 200) return detail::engineError(response, "docker version").withContext(options.endpoint);
  KASM_ASSIGN_OR_RETURN(auto version, detail::parseEngineJson(response.body, "docker version"));
  if (!version.is_object()) return internalError("docker version: the answer is not a JSON object");
  const auto* api = version.as_object().if_contains("ApiVersion");
  if (!api || !api->is_string()) return internalError("docker version: the answer has no ApiVersion");
  std::string engine_max(api->as_string());
  std::string ours = options.max_api_version.empty() ? kMaxApiVersion : options.max_api_version;
  std::string chosen = detail::compareApiVersions(engine_max, ours) < 0 ? engine_max : ours;
  if (detail::compareApiVersions(chosen, kMinApiVersion) < 0) {
    return failedPrecondition("docker engine at " + options.endpoint + " speaks API " + engine_max +
                              "; kasm needs at least " + kMinApiVersion + " (Docker 19.03)");
  }
  return std::unique_ptr<spi::ContainerRuntime>(new detail::DockerRuntime(std::move(http), std::move(chosen)));
}

std::string negotiatedApiVersion(const spi::ContainerRuntime& runtime) {
  if (const auto* docker = dynamic_cast<const detail::DockerRuntime*>(&runtime)) return docker->apiVersion();
  return {};
}

namespace detail {

Result<HttpResponse> DockerRuntime::call(std::string method, std::string path, std::string body, Duration timeout) {
  HttpRequest request;
  request.method = std::move(method);
  request.target = api(path);
  request.body = std::move(body);
  request.timeout = timeout;
  return http_->send(request);
}

Result<json::value> DockerRuntime::callJson(std::string method, std::string path, std::string body,
                                            std::string_view what) {
  KASM_ASSIGN_OR_RETURN(auto response, call(std::move(method), std::move(path), std::move(body)));
  if (response.status < 200 || response.status >= 300) return engineError(response, what);
  return parseEngineJson(response.body, what);
}

Result<void> DockerRuntime::callAction(std::string path, std::string_view what, Duration timeout) {
  KASM_ASSIGN_OR_RETURN(auto response, call("POST", std::move(path), {}, timeout));
  if ((response.status >= 200 && response.status < 300) || response.status == 304) return okResult();
  if (response.status == 409) {
    // "is not running", "is already paused", ...: the container is in the wrong state.
    return failedPrecondition(std::string(what) + ": " + engineMessage(response));
  }
  return engineError(response, what);
}

Result<spi::HostResources> DockerRuntime::hostResources() {
  KASM_ASSIGN_OR_RETURN(auto info, callJson("GET", "/info", {}, "docker info"));
  if (!info.is_object()) return internalError("docker info: the answer is not a JSON object");
  spi::HostResources host = hostFromInfo(info.as_object());
  std::lock_guard lock(host_mu_);
  host_ = host;
  return host;
}

Result<spi::HostResources> DockerRuntime::cachedHost() {
  {
    std::lock_guard lock(host_mu_);
    if (host_) return *host_;
  }
  return hostResources();
}

}  // namespace detail
}  // namespace kasm::docker
