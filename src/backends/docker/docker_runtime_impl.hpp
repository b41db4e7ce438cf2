#pragma once

// The Docker Engine API implementation of spi::ContainerRuntime. Methods are split over
// docker_runtime.cpp (connection, host, shared plumbing), containers.cpp and images.cpp.

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backends/docker/http_transport.hpp"
#include "backends/docker/json_mapping.hpp"
#include "kasm/docker/docker_runtime.hpp"

namespace kasm::docker::detail {

class DockerRuntime final : public spi::ContainerRuntime {
 public:
  DockerRuntime(std::unique_ptr<HttpTransport> http, std::string api_version)
      : http_(std::move(http)), api_version_(std::move(api_version)) {}

  const std::string& apiVersion() const { return api_version_; }

  Result<spi::HostResources> hostResources() override;

  Result<spi::ContainerInfo> createAndStart(const spi::ContainerSpec& spec) override;
  Result<spi::ContainerInfo> inspect(const std::string& id_or_name) override;
  Result<std::vector<spi::ContainerInfo>> list(const std::map<std::string, std::string>& labels) override;
  Result<void> stop(const std::string& id, Duration timeout) override;
  Result<void> start(const std::string& id) override;
  Result<void> kill(const std::string& id) override;
  Result<void> pause(const std::string& id) override;
  Result<void> unpause(const std::string& id) override;
  Result<void> remove(const std::string& id) override;
  Result<spi::ExecResult> exec(const std::string& id, const spi::ExecRequest& request) override;
  Result<void> execStream(const std::string& id, const spi::ExecRequest& request,
                          const std::function<bool(std::string_view)>& on_stdout) override;
  Result<std::unique_ptr<spi::ExecInput>> execWithInput(const std::string& id,
                                                        const spi::ExecRequest& request) override;
  Result<std::string> logs(const std::string& id, int tail_lines) override;
  Result<spi::ContainerStats> stats(const std::string& id) override;
  Result<void> putArchive(const std::string& id, const std::string& path, std::string_view tar) override;
  Result<std::string> getArchive(const std::string& id, const std::string& path, std::size_t max_bytes) override;
  Result<void> removeVolume(const std::string& name) override;

  Result<std::vector<spi::ImageInfo>> listImages() override;
  Result<void> pullImage(const std::string& reference, const std::optional<spi::RegistryCredentials>& credentials,
                         const std::function<void(const spi::PullProgress&)>& on_progress) override;
  Result<void> removeImage(const std::string& reference) override;
  Result<std::vector<std::string>> pruneImages(bool dangling_only) override;

 private:
  // Creates an exec instance; returns its id.
  Result<std::string> createExec(const std::string& id, const spi::ExecRequest& request, const std::string& what,
                                 bool attach_stdin = false);
  // "/v1.41" + path.
  std::string api(std::string_view path) const { return "/v" + api_version_ + std::string(path); }
  Result<HttpResponse> call(std::string method, std::string path, std::string body = {},
                            Duration timeout = Duration(0));
  // A call whose answer must be 2xx JSON; other statuses become engineError(what).
  Result<json::value> callJson(std::string method, std::string path, std::string body, std::string_view what);
  // A call answered with no body: 2xx (and 304 "already in that state") is success.
  Result<void> callAction(std::string path, std::string_view what, Duration timeout = Duration(0));
  // Cached host totals, used to refuse limits the host can never meet.
  Result<spi::HostResources> cachedHost();
  Result<void> checkLimits(const json::object& body);
  bool isRunning(const std::string& id);

  std::unique_ptr<HttpTransport> http_;
  std::string api_version_;
  std::mutex host_mu_;
  std::optional<spi::HostResources> host_;
};

}  // namespace kasm::docker::detail
