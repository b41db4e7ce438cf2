// Files in and out of containers (the engine's archive endpoints) and volume removal.

#include "backends/docker/docker_runtime_impl.hpp"

namespace kasm::docker::detail {

Result<void> DockerRuntime::putArchive(const std::string& id, const std::string& path, std::string_view tar) {
  const std::string what = "copy into " + path + " of container " + id;
  HttpRequest request;
  request.method = "PUT";
  request.target = api("/containers/" + urlEncode(id) + "/archive?path=" + urlEncode(path));
  request.body = std::string(tar);
  request.headers.emplace_back("Content-Type: application/x-tar");
  request.timeout = std::chrono::minutes(10);
  KASM_ASSIGN_OR_RETURN(auto response, http_->send(request));
  switch (response.status) {
    case 200: return okResult();
    case 404: return notFound(what + ": " + engineMessage(response));
    case 403: return permissionDenied(what + ": " + engineMessage(response));  // A read-only file system.
    case 400: return invalidArgument(what + ": " + engineMessage(response));
    default: return engineError(response, what);
  }
}

Result<std::string> DockerRuntime::getArchive(const std::string& id, const std::string& path, std::size_t max_bytes) {
  const std::string what = "copy " + path + " out of container " + id;
  HttpRequest request;
  request.target = api("/containers/" + urlEncode(id) + "/archive?path=" + urlEncode(path));
  request.timeout = std::chrono::minutes(10);
  std::string body;
  bool over = false;
  request.on_data = [&](std::string_view chunk) {
    if (body.size() + chunk.size() > max_bytes) {
      over = true;
      return false;
    }
    body.append(chunk);
    return true;
  };
  auto response = http_->send(request);
  if (over) return resourceExhausted(what + ": larger than " + std::to_string(max_bytes) + " bytes");
  if (!response.ok()) return response.error().withContext(what);
  response->body = std::move(body);
  switch (response->status) {
    case 200: return std::move(response->body);
    case 404: return notFound(what + ": " + engineMessage(*response));
    case 400: return invalidArgument(what + ": " + engineMessage(*response));
    default: return engineError(*response, what);
  }
}

Result<void> DockerRuntime::removeVolume(const std::string& name) {
  const std::string what = "remove volume " + name;
  KASM_ASSIGN_OR_RETURN(auto response, call("DELETE", "/volumes/" + urlEncode(name)));
  switch (response.status) {
    case 204:
    case 200: return okResult();
    case 404: return notFound(what + ": " + engineMessage(response));
    case 409: return failedPrecondition(what + ": " + engineMessage(response));
    default: return engineError(response, what);
  }
}

}  // namespace kasm::docker::detail
