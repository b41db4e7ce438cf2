#include "image_puller.hpp"

#include <chrono>
#include <future>

#include "kasm/agent/image_sync.hpp"

namespace kasm::server {

struct ImagePuller::Shared {
  std::shared_ptr<spi::ContainerRuntime> runtime;
  SystemClock clock;
  std::unique_ptr<agent::ImageSync> sync;
  Log log;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> desired;
  bool changed = false;
  bool stopping = false;
  std::promise<void> done;
};

ImagePuller::ImagePuller(std::shared_ptr<spi::ContainerRuntime> runtime, Log log, Duration period)
    : shared_(std::make_shared<Shared>()) {
  shared_->runtime = std::move(runtime);
  shared_->log = std::move(log);
  auto s = shared_;  // The thread owns what it uses: it may outlive this object (stop()).
  s->sync = std::make_unique<agent::ImageSync>(
      *s->runtime, s->clock, agent::ImageSyncOptions{}, [log = s->log](const agent::ImageSyncEvent& e) {
        if (e.kind == agent::ImageSyncEvent::Kind::kPulled) log("image_pulled", e.reference);
        if (e.kind == agent::ImageSyncEvent::Kind::kFailed) {
          log("image_pull_failed", e.reference + ": " + (e.error ? e.error->message() : std::string("unknown")));
        }
      });
  thread_ = std::thread([s, period] {
    std::unique_lock lock(s->mu);
    while (!s->stopping) {
      if (s->changed) {
        s->changed = false;
        std::vector<agent::DesiredImage> images;
        for (const auto& i : s->desired) images.push_back({i, std::nullopt});
        s->sync->setDesired(std::move(images));
      }
      lock.unlock();
      // Pull failures are in the events; a host that cannot list images is tried at the next pass.
      (void)s->sync->sync();
      lock.lock();
      s->cv.wait_for(lock, period, [&] { return s->stopping || s->changed; });
    }
    s->done.set_value();
  });
}

ImagePuller::~ImagePuller() {
  stop();
}

void ImagePuller::setDesired(std::vector<std::string> images) {
  std::lock_guard lock(shared_->mu);
  if (images == shared_->desired) return;
  shared_->desired = std::move(images);
  shared_->changed = true;
  shared_->cv.notify_all();
}

void ImagePuller::stop(Duration grace) {
  if (!thread_.joinable()) return;
  auto done = shared_->done.get_future();
  {
    std::lock_guard lock(shared_->mu);
    shared_->stopping = true;
    shared_->cv.notify_all();
  }
  if (done.wait_for(grace) == std::future_status::ready) {
    thread_.join();
  } else {
    thread_.detach();  // Still pulling: it ends after that pull, touching only `shared_`.
  }
}

}  // namespace kasm::server
