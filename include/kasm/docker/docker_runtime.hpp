#pragma once

// kasm::docker: the ContainerRuntime SPI over the Docker Engine API (link kasm::docker).
//
// The client speaks HTTP to the engine through libcurl: over the unix socket by default, or over
// TCP with optional TLS (client certificate) for a remote engine. It never runs the docker CLI.
// At open it asks the engine for GET /version and uses min(engine API version, kMaxApiVersion);
// an engine older than kMinApiVersion is refused.
//
// How ContainerSpec becomes the create body (POST /containers/create):
//   Image, Cmd (when non-empty), Env ("K=V"), Labels, ExposedPorts + HostConfig.PortBindings
//   (the port on spec.publish_host with an engine-chosen host port, read back from inspect),
//   HostConfig.Binds ("source:target[:ro]"), HostConfig.NetworkMode (when non-empty),
//   HostConfig.Memory, HostConfig.NanoCpus (cpu_allocation quotas: 1 core = 1e9),
//   HostConfig.CpuShares (shares: 1 core = 1024; inherit: no CPU limit),
//   HostConfig.DeviceRequests (gpus > 0: [{Count: gpus, Capabilities: [["gpu"]]}]).
//
// The workspace run_config_json is then merged into that body by these rules:
//   1. It must be a JSON object (else InvalidArgument); empty text means no override.
//   2. A top-level key that names a HostConfig field (ShmSize, CapAdd, Privileged, Devices, Dns,
//      ExtraHosts, SecurityOpt, Ulimits, ...) is merged into HostConfig, as if written there.
//   3. Objects merge recursively, key by key; an array or a scalar in the override replaces the
//      value in the body; a null in the override deletes the key.
//   4. Keys use the Engine API spelling (e.g. "Hostname", "HostConfig": {"ShmSize": ...}).
//   5. What kasm needs to find its container again wins over the override: Image, the kasm.*
//      labels and the published session port binding are re-applied after the merge.
//   6. Env merges by variable name: the override's variables are added to those kasm sets, and a
//      variable kasm sets (KASM_VNC_PASSWORD, ...) keeps kasm's value.

#include <memory>
#include <optional>
#include <string>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"
#include "kasm/spi/container_runtime.hpp"

namespace kasm::docker {

inline constexpr const char* kMinApiVersion = "1.40";  // DeviceRequests appeared in 1.40.
inline constexpr const char* kMaxApiVersion = "1.43";

struct DockerTlsOptions {
  std::string ca_file;    // PEM bundle that signed the engine's certificate; empty = system store.
  std::string cert_file;  // Client certificate (PEM), for engines started with --tlsverify.
  std::string key_file;   // Client key (PEM).
  bool verify_peer = true;
};

struct DockerOptions {
  // "unix:///var/run/docker.sock", "tcp://host:2375" (plain), or "tcp://host:2376" with tls set
  // (also spelled "https://host:2376").
  std::string endpoint = "unix:///var/run/docker.sock";
  std::optional<DockerTlsOptions> tls;
  Duration connect_timeout = std::chrono::seconds(5);
  // Budget for one ordinary API call; pulls and stops have their own (see the SPI).
  Duration request_timeout = std::chrono::seconds(120);
  // Upper bound of the API version to use; empty = kMaxApiVersion.
  std::string max_api_version;

  // Options from DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, like the docker CLI reads.
  static DockerOptions fromEnvironment();
};

// Connects to the engine and negotiates the API version. Unavailable when the engine does not
// answer; FailedPrecondition when it is too old; InvalidArgument for a malformed endpoint.
// The returned runtime is thread-safe (calls from many threads run concurrently).
Result<std::unique_ptr<spi::ContainerRuntime>> openDockerRuntime(const DockerOptions& options);

// The API version a runtime from openDockerRuntime negotiated, e.g. "1.41"; empty for any other
// ContainerRuntime.
std::string negotiatedApiVersion(const spi::ContainerRuntime& runtime);

}  // namespace kasm::docker
