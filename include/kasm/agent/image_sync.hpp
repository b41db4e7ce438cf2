#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"
#include "kasm/spi/container_runtime.hpp"

namespace kasm::agent {

// An image the manager wants on this agent (an enabled workspace's image).
struct DesiredImage {
  std::string reference;  // "repo:tag"; without a tag ":latest" is meant.
  std::optional<spi::RegistryCredentials> credentials;
};

enum class ImageState { kMissing, kPulling, kPresent, kFailed };

struct ImageStatus {
  std::string reference;
  ImageState state = ImageState::kMissing;
  int failed_attempts = 0;  // Consecutive failures; 0 after a success.
  std::optional<Error> last_error;
  std::optional<TimePoint> next_attempt;  // While failing: no pull before this instant.
  std::int64_t bytes_done = 0;            // Sum over layers of the last progress seen.
  std::int64_t bytes_total = 0;
};

struct ImageSyncOptions {
  int max_concurrent_pulls = 2;
  // After the n-th consecutive failure the image waits initial_backoff * 2^(n-1), at most max_backoff.
  Duration initial_backoff = std::chrono::seconds(5);
  Duration max_backoff = std::chrono::minutes(10);
  spi::PrunePolicy prune = spi::PrunePolicy::kOff;
  // Aggressive pruning only removes tags starting with one of these prefixes (e.g. the registry the
  // workspaces come from); empty = every tag on the host that no desired image names.
  std::vector<std::string> prune_prefixes;
};

struct ImageSyncEvent {
  enum class Kind { kProgress, kPulled, kFailed, kRemoved };
  Kind kind = Kind::kProgress;
  std::string reference;
  spi::PullProgress progress;  // kProgress.
  std::optional<Error> error;  // kFailed.
};

// What one sync() pass did.
struct SyncReport {
  std::vector<std::string> pulled;
  std::vector<std::pair<std::string, Error>> failed;
  std::vector<std::string> deferred;  // Failing images whose backoff has not elapsed yet.
  std::vector<std::string> removed;   // Tags or image ids pruned.
};

// Keeps the images on a host equal to a desired set: pulls what is missing with bounded
// concurrency, backs off failing pulls (time from the injected Clock, so a pass never sleeps),
// re-pulls rolling tags on request, and prunes by policy.
//
// Threading: all methods are thread-safe; sync() passes are serialised. The event callback runs
// on the pulling threads, concurrently; it must not call back into this ImageSync.
class ImageSync {
 public:
  ImageSync(spi::ContainerRuntime& runtime, Clock& clock, ImageSyncOptions options = {},
            std::function<void(const ImageSyncEvent&)> on_event = {});

  // Replaces the desired set. Images that leave it are forgotten (and pruned by kAggressive).
  void setDesired(std::vector<DesiredImage> images);
  // The next sync() pulls `reference` even when it is present (a rolling tag such as ":latest"),
  // and ignores its backoff.
  void requestRepull(const std::string& reference);

  // One pass: lists the host's images, pulls the missing ones whose backoff allows it, then
  // prunes. Fails only when the runtime cannot list images (Unavailable and so on); pull failures
  // are reported in the SyncReport and in status().
  Result<SyncReport> sync();

  // Per desired image, in reference order.
  std::vector<ImageStatus> status() const;
  // The references of desired images known to be present after the last pass.
  std::vector<std::string> presentImages() const;

  // "name" -> "name:latest"; references with a tag or a digest are returned unchanged.
  static std::string normalizeReference(const std::string& reference);

 private:
  struct Entry {
    DesiredImage desired;
    ImageStatus status;
    bool repull = false;
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> layers;  // layer -> (done, total)
  };
  void pullOne(const std::string& reference, SyncReport& report, std::mutex& report_mu);
  Duration backoffAfter(int failures) const;
  Result<std::vector<std::string>> prune(const std::set<std::string>& keep);
  void emit(const ImageSyncEvent& event) const;

  spi::ContainerRuntime& runtime_;
  Clock& clock_;
  ImageSyncOptions options_;
  std::function<void(const ImageSyncEvent&)> on_event_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;  // By normalized reference.
  std::mutex sync_mu_;
};

}  // namespace kasm::agent
