#include "kasm/agent/image_sync.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

namespace kasm::agent {
namespace {

bool startsWithAny(const std::string& s, const std::vector<std::string>& prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& p) { return s.rfind(p, 0) == 0; });
}

}  // namespace

ImageSync::ImageSync(spi::ContainerRuntime& runtime, Clock& clock, ImageSyncOptions options,
                     std::function<void(const ImageSyncEvent&)> on_event)
    : runtime_(runtime), clock_(clock), options_(std::move(options)), on_event_(std::move(on_event)) {
  if (options_.max_concurrent_pulls < 1) options_.max_concurrent_pulls = 1;
}

std::string ImageSync::normalizeReference(const std::string& reference) {
  if (reference.find('@') != std::string::npos) return reference;
  const auto slash = reference.rfind('/');
  const auto colon = reference.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) return reference;
  return reference + ":latest";
}

void ImageSync::setDesired(std::vector<DesiredImage> images) {
  std::lock_guard lock(mu_);
  std::map<std::string, Entry> next;
  for (auto& image : images) {
    std::string key = normalizeReference(image.reference);
    auto it = entries_.find(key);
    Entry entry = it != entries_.end() ? std::move(it->second) : Entry{};
    entry.desired = std::move(image);
    entry.desired.reference = key;
    entry.status.reference = key;
    next.insert_or_assign(key, std::move(entry));
  }
  entries_ = std::move(next);
}

void ImageSync::requestRepull(const std::string& reference) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(normalizeReference(reference));
  if (it == entries_.end()) return;
  it->second.repull = true;
  it->second.status.next_attempt.reset();
}

Duration ImageSync::backoffAfter(int failures) const {
  Duration d = options_.initial_backoff;
  for (int i = 1; i < failures && d < options_.max_backoff; ++i) d *= 2;
  return std::min(d, options_.max_backoff);
}

void ImageSync::emit(const ImageSyncEvent& event) const {
  if (on_event_) on_event_(event);
}

Result<SyncReport> ImageSync::sync() {
  std::lock_guard pass(sync_mu_);
  KASM_ASSIGN_OR_RETURN(auto images, runtime_.listImages());
  std::set<std::string> present;
  for (const auto& image : images) {
    for (const auto& tag : image.tags) present.insert(normalizeReference(tag));
  }

  SyncReport report;
  std::vector<std::string> to_pull;
  std::set<std::string> keep;
  {
    std::lock_guard lock(mu_);
    const TimePoint now = clock_.now();
    for (auto& [key, entry] : entries_) {
      keep.insert(key);
      const bool here = present.count(key) > 0;
      if (here && !entry.repull) {
        entry.status.state = ImageState::kPresent;
        continue;
      }
      if (entry.status.next_attempt && *entry.status.next_attempt > now) {
        report.deferred.push_back(key);
        continue;
      }
      entry.status.state = ImageState::kPulling;
      entry.layers.clear();
      to_pull.push_back(key);
    }
  }

  // Bounded concurrency: a few workers take references from a shared cursor.
  std::mutex report_mu;
  std::atomic<std::size_t> cursor{0};
  auto worker = [&] {
    for (std::size_t i; (i = cursor.fetch_add(1)) < to_pull.size();) pullOne(to_pull[i], report, report_mu);
  };
  const std::size_t workers = std::min<std::size_t>(options_.max_concurrent_pulls, to_pull.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers; ++i) threads.emplace_back(worker);
  if (workers > 0) worker();
  for (auto& t : threads) t.join();

  if (options_.prune != spi::PrunePolicy::kOff) {
    KASM_ASSIGN_OR_RETURN(auto removed, prune(keep));
    for (auto& r : removed) {
      emit({ImageSyncEvent::Kind::kRemoved, r, {}, std::nullopt});
      report.removed.push_back(std::move(r));
    }
  }
  std::sort(report.pulled.begin(), report.pulled.end());
  return report;
}

void ImageSync::pullOne(const std::string& reference, SyncReport& report, std::mutex& report_mu) {
  std::optional<spi::RegistryCredentials> credentials;
  {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(reference); it != entries_.end()) credentials = it->second.desired.credentials;
  }
  auto onProgress = [&](const spi::PullProgress& p) {
    {
      std::lock_guard lock(mu_);
      if (auto it = entries_.find(reference); it != entries_.end() && !p.layer.empty() && p.total > 0) {
        auto& entry = it->second;
        entry.layers[p.layer] = {p.current, p.total};
        entry.status.bytes_done = entry.status.bytes_total = 0;
        for (const auto& [layer, done_total] : entry.layers) {
          entry.status.bytes_done += done_total.first;
          entry.status.bytes_total += done_total.second;
        }
      }
    }
    emit({ImageSyncEvent::Kind::kProgress, reference, p, std::nullopt});
  };
  auto pulled = runtime_.pullImage(reference, credentials, onProgress);

  // State is updated under the lock; events go out after it is released.
  if (pulled.ok()) {
    {
      std::lock_guard lock(mu_);
      if (auto it = entries_.find(reference); it != entries_.end()) {
        auto& s = it->second.status;
        s.state = ImageState::kPresent;
        s.failed_attempts = 0;
        s.last_error.reset();
        s.next_attempt.reset();
        it->second.repull = false;
      }
    }
    {
      std::lock_guard r(report_mu);
      report.pulled.push_back(reference);
    }
    emit({ImageSyncEvent::Kind::kPulled, reference, {}, std::nullopt});
    return;
  }
  Error error = pulled.error();
  {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(reference); it != entries_.end()) {
      auto& s = it->second.status;
      s.state = ImageState::kFailed;
      s.failed_attempts += 1;
      s.last_error = error;
      s.next_attempt = clock_.now() + backoffAfter(s.failed_attempts);
      it->second.repull = false;
    }
  }
  {
    std::lock_guard r(report_mu);
    report.failed.emplace_back(reference, error);
  }
  emit({ImageSyncEvent::Kind::kFailed, reference, {}, error});
}

Result<std::vector<std::string>> ImageSync::prune(const std::set<std::string>& keep) {
  std::vector<std::string> removed;
  // Dangling images first; a runtime without prune support gets the same from list + remove.
  auto dangling = runtime_.pruneImages(true);
  if (dangling.ok()) {
    removed = std::move(*dangling);
  } else if (dangling.error().code() == ErrorCode::kFailedPrecondition) {
    KASM_ASSIGN_OR_RETURN(auto images, runtime_.listImages());
    for (const auto& image : images) {
      if (image.tags.empty() && runtime_.removeImage(image.id).ok()) removed.push_back(image.id);
    }
  } else {
    return std::move(dangling).error();
  }
  if (options_.prune != spi::PrunePolicy::kAggressive) return removed;

  KASM_ASSIGN_OR_RETURN(auto images, runtime_.listImages());
  for (const auto& image : images) {
    for (const auto& tag : image.tags) {
      const std::string key = normalizeReference(tag);
      if (keep.count(key)) continue;
      if (!options_.prune_prefixes.empty() && !startsWithAny(tag, options_.prune_prefixes)) continue;
      // Removing by tag untags; the image itself goes with its last tag. An image a container
      // still uses answers FailedPrecondition and stays, which is what the policy wants.
      if (runtime_.removeImage(tag).ok()) removed.push_back(tag);
    }
  }
  return removed;
}

std::vector<ImageStatus> ImageSync::status() const {
  std::lock_guard lock(mu_);
  std::vector<ImageStatus> out;
  for (const auto& [key, entry] : entries_) out.push_back(entry.status);
  return out;
}

std::vector<std::string> ImageSync::presentImages() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [key, entry] : entries_) {
    if (entry.status.state == ImageState::kPresent) out.push_back(key);
  }
  return out;
}

}  // namespace kasm::agent
