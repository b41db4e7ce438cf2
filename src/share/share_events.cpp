#include "kasm/share/share_events.hpp"

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace kasm {
namespace {

constexpr Duration kAvailabilityPoll{100};

// What the availability watcher thread uses; shared, so the channel may be destroyed from within
// its own availability callback (the thread then ends without touching the channel).
struct Watch {
  explicit Watch(spi::ShareDatabase& d) : db(d) {}
  spi::ShareDatabase& db;
  std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<const spi::AvailabilityCallback> callback;
  bool stop = false;

  // `last`: available() when the first callback was set, so a change that happens before the
  // thread gets going is still reported.
  void run(bool last) {
    std::unique_lock lk(mu);
    while (!cv.wait_for(lk, kAvailabilityPoll, [&] { return stop; })) {
      lk.unlock();
      const bool now = db.available();
      lk.lock();
      if (stop) return;
      if (now == last) continue;
      last = now;
      auto cb = callback;
      if (!cb || !*cb) continue;
      lk.unlock();
      try {
        (*cb)(now);
      } catch (...) {
        // A callback that throws loses its own report, not the watcher.
      }
      lk.lock();
    }
  }
};

class ShareDatabaseEvents final : public spi::EventChannel {
 public:
  explicit ShareDatabaseEvents(spi::ShareDatabase& db) : db_(db), watch_(std::make_shared<Watch>(db)) {}

  ~ShareDatabaseEvents() override {
    {
      std::lock_guard lk(watch_->mu);
      watch_->stop = true;
    }
    watch_->cv.notify_all();
    if (!thread_.joinable()) return;
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();  // Destroyed from its own availability callback; the thread ends after it.
    } else {
      thread_.join();
    }
  }

  std::string_view backendName() const override { return db_.backendName(); }
  std::size_t maxEventBytes() const override { return kShareEventMaxBytes; }
  bool available() const override { return db_.available(); }

  Result<void> publish(std::string_view event) override {
    if (event.size() > kShareEventMaxBytes) {
      return invalidArgument(std::string(db_.backendName()) + " events: an event of " + std::to_string(event.size()) +
                             " bytes is over the limit of " + std::to_string(kShareEventMaxBytes));
    }
    return db_.publishEvent(event);
  }

  Result<std::unique_ptr<spi::Subscription>> subscribe(spi::EventCallback callback) override {
    return db_.subscribeEvents(std::move(callback));
  }

  void onAvailability(spi::AvailabilityCallback callback) override {
    const bool wanted = static_cast<bool>(callback);
    std::lock_guard lk(watch_->mu);
    watch_->callback = std::make_shared<const spi::AvailabilityCallback>(std::move(callback));
    if (wanted && !thread_.joinable() && !watch_->stop) {
      thread_ = std::thread([w = watch_, up = db_.available()] { w->run(up); });
    }
  }

 private:
  spi::ShareDatabase& db_;
  std::shared_ptr<Watch> watch_;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<spi::EventChannel> shareDatabaseEvents(spi::ShareDatabase& db) {
  return std::make_unique<ShareDatabaseEvents>(db);
}

}  // namespace kasm
