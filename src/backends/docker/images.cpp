// Image pull (streamed progress), list, remove and prune of DockerRuntime.

#include "backends/docker/docker_runtime_impl.hpp"

namespace kasm::docker::detail {

Result<std::vector<spi::ImageInfo>> DockerRuntime::listImages() {
  KASM_ASSIGN_OR_RETURN(auto v, callJson("GET", "/images/json", {}, "list images"));
  if (!v.is_array()) return internalError("list images: not a JSON array");
  return imagesFromList(v.as_array());
}

Result<void> DockerRuntime::pullImage(const std::string& reference,
                                      const std::optional<spi::RegistryCredentials>& credentials,
                                      const std::function<void(const spi::PullProgress&)>& on_progress) {
  if (reference.empty()) return invalidArgument("pull: image reference is empty");
  auto [name, tag] = splitImageReference(reference);
  HttpRequest request;
  request.method = "POST";
  request.target = api("/images/create?fromImage=" + urlEncode(name));
  if (!tag.empty()) request.target += "&tag=" + urlEncode(tag);
  if (credentials) request.headers.push_back("X-Registry-Auth: " + registryAuthValue(*credentials));
  // A pull of a large image legitimately takes many minutes; the engine gives up on a dead
  // registry itself, and a dropped engine connection ends the transfer with Unavailable.
  request.timeout = Duration(-1);

  PullStreamParser parser;
  std::optional<std::string> failure;
  auto onEvent = [&](const PullEvent& event) {
    if (event.kind == PullEvent::Kind::kError) {
      if (!failure) failure = event.error;
    } else if (event.kind == PullEvent::Kind::kProgress && on_progress) {
      on_progress(event.progress);
    }
  };
  request.on_data = [&](std::string_view chunk) {
    parser.feed(chunk, onEvent);
    return true;
  };
  auto response = http_->send(request);
  if (!response.ok()) {
    return Error(response.error().code(), "pull " + reference + ": " + response.error().message());
  }
  if (response->status != 200) {
    // The engine answers before streaming when the registry cannot be reached or the name is bad.
    if (response->status == 400) return invalidArgument("pull " + reference + ": " + engineMessage(*response));
    return pullError(reference, engineMessage(*response));
  }
  parser.finish(onEvent);
  if (failure) return pullError(reference, *failure);
  return okResult();
}

Result<void> DockerRuntime::removeImage(const std::string& reference) {
  if (reference.empty()) return invalidArgument("remove image: reference is empty");
  // Image names contain '/' and ':' which the engine's route takes literally.
  KASM_ASSIGN_OR_RETURN(auto response, call("DELETE", "/images/" + reference));
  if (response.status == 200) return okResult();
  if (response.status == 409) return failedPrecondition("remove image " + reference + ": " + engineMessage(response));
  return engineError(response, "remove image " + reference);
}

Result<std::vector<std::string>> DockerRuntime::pruneImages(bool dangling_only) {
  json::object filters{{"dangling", json::array{dangling_only ? "true" : "false"}}};
  KASM_ASSIGN_OR_RETURN(
      auto v, callJson("POST", "/images/prune?filters=" + urlEncode(json::serialize(filters)), {}, "prune images"));
  std::vector<std::string> removed;
  if (!v.is_object()) return removed;
  const json::value* deleted = v.as_object().if_contains("ImagesDeleted");
  if (!deleted || !deleted->is_array()) return removed;
  for (const auto& entry : deleted->as_array()) {
    if (!entry.is_object()) continue;
    if (const json::value* id = entry.as_object().if_contains("Deleted"); id && id->is_string()) {
      removed.emplace_back(id->as_string());
    }
  }
  return removed;
}

}  // namespace kasm::docker::detail
