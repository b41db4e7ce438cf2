#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/enum_names.hpp"
#include "kasm/core/resources.hpp"
#include "kasm/core/result.hpp"
#include "kasm/model/workspace.hpp"

namespace kasm::spi {

enum class ContainerStatus { kCreated, kRunning, kPaused, kRestarting, kExited, kDead, kRemoving };

}  // namespace kasm::spi

KASM_ENUM_NAMES(kasm::spi::ContainerStatus, 7, {kasm::spi::ContainerStatus::kCreated, "created"},
                {kasm::spi::ContainerStatus::kRunning, "running"}, {kasm::spi::ContainerStatus::kPaused, "paused"},
                {kasm::spi::ContainerStatus::kRestarting, "restarting"},
                {kasm::spi::ContainerStatus::kExited, "exited"}, {kasm::spi::ContainerStatus::kDead, "dead"},
                {kasm::spi::ContainerStatus::kRemoving, "removing"});

namespace kasm::spi {

// Everything needed to create one session container.
struct ContainerSpec {
  std::string name;  // Unique container name, e.g. "kasm-<session id>".
  std::string image;
  Resources resources;  // Limits: CPU per cpu_allocation, memory, GPUs.
  CpuAllocationMethod cpu_allocation = CpuAllocationMethod::kQuotas;
  std::map<std::string, std::string> environment;
  std::map<std::string, std::string> labels;  // Always includes the kasm ownership labels.
  std::vector<std::string> command;           // Empty = the image's CMD.
  std::uint16_t port = 0;                     // Container port to publish; 0 = none.
  std::string publish_host = "127.0.0.1";     // Host address the port is published on.
  std::vector<VolumeMapping> volumes;
  std::string network;          // Empty = the engine default.
  std::string run_config_json;  // Workspace override, merged into the create body.
};

struct ContainerInfo {
  std::string id;
  std::string name;
  std::string image;
  ContainerStatus status = ContainerStatus::kCreated;
  std::map<std::string, std::string> labels;
  std::string published;  // "host:port" the published session port answers on; empty if none.
  std::int32_t exit_code = 0;
  // Limits as the engine applied them (for verification).
  std::int64_t nano_cpus = 0;
  std::int64_t cpu_shares = 0;
  std::int64_t memory_bytes = 0;
};

// A point-in-time resource usage sample of one container.
struct ContainerStats {
  double cpu_cores = 0.0;              // Cores in use, averaged since the previous engine sample.
  std::int64_t memory_used_bytes = 0;  // Without the page cache.
  std::int64_t memory_limit_bytes = 0;
};

struct ExecRequest {
  std::vector<std::string> command;  // argv; use {"sh", "-c", line} for a shell line.
  std::string user;
  std::string workdir;
  std::map<std::string, std::string> environment;
  bool privileged = false;
};

struct ExecResult {
  std::int32_t exit_code = 0;
  std::string output;  // stdout and stderr interleaved, capped at 1 MiB.
};

struct ImageInfo {
  std::string id;
  std::vector<std::string> tags;  // "repo:tag" references.
  std::int64_t size_bytes = 0;
};

// One progress report of an image pull: per layer, bytes done of total when the engine knows them.
struct PullProgress {
  std::string layer;
  std::string status;  // The engine's words: "Downloading", "Extracting", "Pull complete", ...
  std::int64_t current = 0;
  std::int64_t total = 0;
};

struct RegistryCredentials {
  std::string username;
  std::string password;
  std::string server;
};

struct HostResources {
  Resources total;  // Cores (millicores), memory bytes, GPUs of the host.
  std::string os;
  std::string engine_version;
};

enum class PrunePolicy {
  kOff,         // Never remove images.
  kDangling,    // Remove untagged images only.
  kAggressive,  // Remove every image not in the keep set and not used by a container.
};

// The standard input of a process running in a container (ContainerRuntime::execWithInput).
// Destroying it closes the input (the process sees end of file) and ends the process.
class ExecInput {
 public:
  virtual ~ExecInput() = default;
  // Writes all of `data`; DeadlineExceeded when the process stopped reading, Unavailable once it
  // ended. One thread at a time.
  virtual Result<void> write(std::string_view data) = 0;
};

// A container engine on one host (Docker Engine API in kasm::docker; a double in tests).
//
// Threading: every method may be called from any thread concurrently; calls block on I/O.
// Errors: NotFound (unknown container or image), AlreadyExists (name clash), InvalidArgument
// (bad spec or run-config JSON), ResourceExhausted (the engine refused the limits),
// Unavailable (engine down; nothing was created), DeadlineExceeded, Internal.
// A failed create leaves no container behind.
class ContainerRuntime {
 public:
  virtual ~ContainerRuntime() = default;

  virtual Result<HostResources> hostResources() = 0;

  // Creates and starts the container; returns its info with the published address.
  virtual Result<ContainerInfo> createAndStart(const ContainerSpec& spec) = 0;
  virtual Result<ContainerInfo> inspect(const std::string& id_or_name) = 0;
  // Containers whose labels include every pair of `labels`.
  virtual Result<std::vector<ContainerInfo>> list(const std::map<std::string, std::string>& labels) = 0;
  virtual Result<void> stop(const std::string& id, Duration timeout) = 0;
  virtual Result<void> start(const std::string& id) = 0;
  virtual Result<void> kill(const std::string& id) = 0;
  virtual Result<void> pause(const std::string& id) = 0;
  virtual Result<void> unpause(const std::string& id) = 0;
  // Removes the container (force kills a running one). NotFound when already gone.
  virtual Result<void> remove(const std::string& id) = 0;
  virtual Result<ExecResult> exec(const std::string& id, const ExecRequest& request) = 0;

  virtual Result<std::vector<ImageInfo>> listImages() = 0;
  virtual Result<void> pullImage(const std::string& reference, const std::optional<RegistryCredentials>& credentials,
                                 const std::function<void(const PullProgress&)>& on_progress) = 0;
  // Removes an image by reference or id. FailedPrecondition when a container (even a stopped one)
  // still uses it; NotFound when it does not exist.
  virtual Result<void> removeImage(const std::string& reference) = 0;

  // Optional capabilities. The defaults answer FailedPrecondition ("not supported") so that test
  // doubles need not implement them; the Docker backend implements all three.

  // Removes dangling (untagged) images, or every image no container uses when `dangling_only` is
  // false. Returns the ids of the removed images.
  virtual Result<std::vector<std::string>> pruneImages(bool dangling_only) {
    (void)dangling_only;
    return failedPrecondition("this container runtime cannot prune images");
  }
  // The last `tail_lines` lines of the container's stdout and stderr, interleaved (0 = all).
  virtual Result<std::string> logs(const std::string& id, int tail_lines) {
    (void)id;
    (void)tail_lines;
    return failedPrecondition("this container runtime cannot read logs");
  }
  virtual Result<ContainerStats> stats(const std::string& id) {
    (void)id;
    return failedPrecondition("this container runtime cannot report stats");
  }

  // Runs a command in the container and hands its standard output over as it comes, until the
  // process ends or `on_stdout` returns false (the process is then ended with SIGTERM; the Docker
  // backend needs `sh` in the image for that). FailedPrecondition with the process's status and
  // standard error when it ends with a failure or having written to standard error.
  virtual Result<void> execStream(const std::string& id, const ExecRequest& request,
                                  const std::function<bool(std::string_view)>& on_stdout) {
    (void)id;
    (void)request;
    (void)on_stdout;
    return failedPrecondition("this container runtime cannot stream a command's output");
  }
  // Starts a command in the container with its standard input open to the caller (its output is
  // discarded). The Docker backend needs `sh` in the image.
  virtual Result<std::unique_ptr<ExecInput>> execWithInput(const std::string& id, const ExecRequest& request) {
    (void)id;
    (void)request;
    return failedPrecondition("this container runtime cannot feed a command's input");
  }
  // Files in and out of a container, as tar archives (the Docker archive API). putArchive unpacks
  // `tar` into the directory `path` of the container, keeping the archive's owners and modes;
  // NotFound when `path` does not exist there. getArchive returns `path` (a file or a directory)
  // as a tar archive; NotFound when it does not exist, ResourceExhausted when the archive would
  // exceed `max_bytes` (nothing more is read). Both follow symbolic links in the parent
  // directories of `path`, not in its last element.
  virtual Result<void> putArchive(const std::string& id, const std::string& path, std::string_view tar) {
    (void)id;
    (void)path;
    (void)tar;
    return failedPrecondition("this container runtime cannot copy files into containers");
  }
  virtual Result<std::string> getArchive(const std::string& id, const std::string& path, std::size_t max_bytes) {
    (void)id;
    (void)path;
    (void)max_bytes;
    return failedPrecondition("this container runtime cannot copy files out of containers");
  }
  // Removes a named volume. NotFound when there is none; FailedPrecondition while a container uses it.
  virtual Result<void> removeVolume(const std::string& name) {
    (void)name;
    return failedPrecondition("this container runtime cannot remove volumes");
  }
};

}  // namespace kasm::spi
