#pragma once

// Pure translations between kasm types and the Docker Engine API's JSON: the create body and the
// run-config merge, inspect/list/info answers, pull progress lines, error bodies. No I/O here, so
// all of it is unit-tested without an engine.

#include <boost/json.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/docker/http_transport.hpp"
#include "kasm/core/result.hpp"
#include "kasm/spi/container_runtime.hpp"

namespace kasm::docker::detail {

namespace json = boost::json;

// Label the runtime adds so that inspect() knows which published port is the session's.
inline constexpr const char* kSessionPortLabel = "kasm.session_port";

// ---- errors -------------------------------------------------------------------------------------

// The engine's {"message": ...} text, or the raw body when it is not JSON.
std::string engineMessage(const HttpResponse& response);
// Maps an engine error status to an Error: 400 InvalidArgument, 401 Unauthenticated,
// 403 PermissionDenied, 404 NotFound, 409 AlreadyExists, 503 Unavailable, other Internal.
// `what` says which call failed ("create container kasm-1").
Error engineError(const HttpResponse& response, std::string_view what);
// Parses an engine answer; Internal when the engine sent something that is not JSON.
Result<json::value> parseEngineJson(std::string_view text, std::string_view what);

// ---- create body and run-config merge -----------------------------------------------------------

// True for the names of HostConfig fields (rule 2 of the merge, see docker_runtime.hpp).
bool isHostConfigKey(std::string_view key);
// Rule 3: objects merge recursively, arrays and scalars replace, null deletes.
void mergeJsonObjects(json::object& base, const json::object& override_object);
// Rules 1-3 applied to a create body. InvalidArgument names run_config_json.
Result<void> mergeRunConfig(json::object& body, std::string_view run_config_json);
// The whole create body for a spec, merge and rule 5 included.
Result<json::object> buildCreateBody(const spi::ContainerSpec& spec);
// String-in, string-out form of mergeRunConfig for tests and tools.
Result<std::string> mergeRunConfigText(std::string_view body_json, std::string_view run_config_json);

// ---- answers -----------------------------------------------------------------------------------

std::optional<spi::ContainerStatus> containerStatusFromName(std::string_view name);
// GET /containers/{id}/json.
spi::ContainerInfo containerFromInspect(const json::object& inspect);
// One entry of GET /containers/json.
spi::ContainerInfo containerFromListEntry(const json::object& entry);
// GET /images/json; "<none>:<none>" tags are dropped.
std::vector<spi::ImageInfo> imagesFromList(const json::array& list);
// GET /info (cores, memory, OS) and the engine version.
spi::HostResources hostFromInfo(const json::object& info);
// GET /containers/{id}/stats?stream=false.
spi::ContainerStats statsFromJson(const json::object& stats);

// ---- image pulls -------------------------------------------------------------------------------

// One line of the POST /images/create stream.
struct PullEvent {
  enum class Kind { kProgress, kError, kIgnored };
  Kind kind = Kind::kIgnored;
  spi::PullProgress progress;
  std::string error;  // For kError: the engine's words.
};
PullEvent parsePullLine(std::string_view line);

// Splits the pull stream into lines across arbitrary chunk boundaries.
class PullStreamParser {
 public:
  // Calls on_event for every complete line in the data seen so far.
  template <class F>
  void feed(std::string_view chunk, F&& on_event) {
    pending_.append(chunk);
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      on_event(parsePullLine(std::string_view(pending_).substr(start, nl - start)));
    }
    pending_.erase(0, start);
  }
  // The last line when the stream did not end with a newline.
  template <class F>
  void finish(F&& on_event) {
    if (!pending_.empty()) on_event(parsePullLine(pending_));
    pending_.clear();
  }

 private:
  std::string pending_;
};

// Maps the error text of a failed pull to a code: NotFound for an unknown repository, tag or
// manifest, Unauthenticated for refused credentials, Unavailable for an unreachable registry.
Error pullError(std::string_view reference, std::string_view message);

// "127.0.0.1:5000/a/b:1" -> {"127.0.0.1:5000/a/b", "1"}; no tag -> "latest"; a digest stays in the
// first part with an empty tag.
std::pair<std::string, std::string> splitImageReference(std::string_view reference);

// ---- small encodings -----------------------------------------------------------------------------

std::string urlEncode(std::string_view text);
std::string base64UrlEncode(std::string_view bytes);
// The X-Registry-Auth header value for credentials.
std::string registryAuthValue(const spi::RegistryCredentials& credentials);
// Compares dotted API versions numerically: <0, 0, >0.
int compareApiVersions(std::string_view a, std::string_view b);
// Splits a Docker multiplexed stream (8-byte frame headers) into plain text; data that does not
// look multiplexed (a TTY stream) is returned as it is. At most `cap` bytes are kept.
// The same, a piece at a time, for a stream that does not end (a live exec): hands each payload
// piece to `out` with its stream number (1 stdout, 2 stderr) as soon as it arrives.
class StreamDemux {
 public:
  void feed(std::string_view data, const std::function<void(int stream, std::string_view payload)>& out);

 private:
  char header_[8] = {};
  std::size_t header_have_ = 0;
  std::size_t payload_left_ = 0;
  int stream_ = 0;
};

std::string demultiplexStream(std::string_view raw, std::size_t cap);

}  // namespace kasm::docker::detail
