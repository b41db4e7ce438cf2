#include "share/subscriber_hub.hpp"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

namespace kasm::share {
namespace {

// The topic of the events; chat topics are session ids, which never start with '#'.
constexpr const char* kEventsTopic = "#events";
// `running` while the availability callback runs (subscription ids start at 1).
constexpr std::uint64_t kAvailabilityRunning = ~std::uint64_t{0};

struct Subscriber {
  std::string topic;
  spi::ChatCallback chat;
  spi::EventCallback event;
};

struct Delivery {
  std::uint64_t subscriber = 0;  // 0: the availability callback.
  std::shared_ptr<const spi::ChatMessage> chat;
  std::shared_ptr<const std::string> event;
  bool available = false;
};

}  // namespace

struct SubscriberHub::Core {
  std::mutex mu;
  std::condition_variable work_cv;  // The queue has items, or stop.
  std::condition_variable idle_cv;  // `running` changed.
  std::unordered_map<std::uint64_t, std::shared_ptr<const Subscriber>> subscribers;
  std::map<std::string, std::set<std::uint64_t>> by_topic;
  std::deque<Delivery> queue;
  std::shared_ptr<const spi::AvailabilityCallback> availability;
  std::uint64_t next_id = 1;
  std::uint64_t running = 0;  // The subscriber whose callback runs now, or 0.
  std::thread::id thread_id;
  bool stopped = false;

  std::uint64_t add(std::shared_ptr<const Subscriber> s) {
    std::lock_guard lk(mu);
    const auto id = next_id++;
    by_topic[s->topic].insert(id);
    subscribers.emplace(id, std::move(s));
    return id;
  }

  // After this returns the callback of `id` is not running (unless the caller is that callback)
  // and will not run again.
  void remove(std::uint64_t id) {
    std::unique_lock lk(mu);
    auto it = subscribers.find(id);
    if (it != subscribers.end()) {
      auto topic = by_topic.find(it->second->topic);
      topic->second.erase(id);
      if (topic->second.empty()) by_topic.erase(topic);
      subscribers.erase(it);
    }
    if (std::this_thread::get_id() == thread_id) return;  // From inside a callback: nothing runs in parallel.
    idle_cv.wait(lk, [&] { return running != id; });
  }

  void enqueue(const std::string& topic, std::shared_ptr<const spi::ChatMessage> chat,
               std::shared_ptr<const std::string> event) {
    std::lock_guard lk(mu);
    if (stopped) return;
    auto it = by_topic.find(topic);
    if (it == by_topic.end()) return;
    for (auto id : it->second) queue.push_back({.subscriber = id, .chat = chat, .event = event});
    work_cv.notify_one();
  }

  void run() {
    std::unique_lock lk(mu);
    for (;;) {
      work_cv.wait(lk, [&] { return stopped || !queue.empty(); });
      if (stopped) return;
      Delivery d = std::move(queue.front());
      queue.pop_front();
      if (d.subscriber == 0) {
        auto callback = availability;
        if (!callback || !*callback) continue;
        running = kAvailabilityRunning;
        lk.unlock();
        invoke([&] { (*callback)(d.available); });
      } else {
        auto it = subscribers.find(d.subscriber);
        if (it == subscribers.end()) continue;  // Cancelled after the delivery was queued.
        auto subscriber = it->second;
        running = d.subscriber;
        lk.unlock();
        invoke([&] {
          if (d.chat && subscriber->chat) subscriber->chat(*d.chat);
          if (d.event && subscriber->event) subscriber->event(*d.event);
        });
      }
      lk.lock();
      running = 0;
      idle_cv.notify_all();
    }
  }

  template <class F>
  static void invoke(F&& f) {
    // A callback that throws loses its own delivery, not the delivery thread.
    try {
      f();
    } catch (...) {
    }
  }
};

namespace {

class HubSubscription final : public spi::Subscription {
 public:
  HubSubscription(std::weak_ptr<SubscriberHub::Core> core, std::uint64_t id) : core_(std::move(core)), id_(id) {}
  ~HubSubscription() override { cancel(); }
  void cancel() override {
    if (auto core = core_.lock()) core->remove(id_);
    core_.reset();
  }

 private:
  std::weak_ptr<SubscriberHub::Core> core_;
  std::uint64_t id_;
};

}  // namespace

SubscriberHub::SubscriberHub() : core_(std::make_shared<Core>()) {
  std::unique_lock lk(core_->mu);
  thread_ = std::thread([core = core_] { core->run(); });
  core_->thread_id = thread_.get_id();
}

SubscriberHub::~SubscriberHub() {
  {
    std::lock_guard lk(core_->mu);
    core_->stopped = true;
    core_->queue.clear();
  }
  core_->work_cv.notify_all();
  if (thread_.get_id() == std::this_thread::get_id()) {
    thread_.detach();  // Destroyed from one of its own callbacks; the thread ends after it returns.
  } else {
    thread_.join();
  }
}

std::unique_ptr<spi::Subscription> SubscriberHub::addChat(const std::string& session, spi::ChatCallback callback) {
  auto id = core_->add(std::make_shared<const Subscriber>(Subscriber{.topic = session, .chat = std::move(callback)}));
  return std::make_unique<HubSubscription>(core_, id);
}

std::unique_ptr<spi::Subscription> SubscriberHub::addEvents(spi::EventCallback callback) {
  auto id =
      core_->add(std::make_shared<const Subscriber>(Subscriber{.topic = kEventsTopic, .event = std::move(callback)}));
  return std::make_unique<HubSubscription>(core_, id);
}

void SubscriberHub::deliverChat(const std::string& session, spi::ChatMessage message) {
  core_->enqueue(session, std::make_shared<const spi::ChatMessage>(std::move(message)), nullptr);
}

void SubscriberHub::deliverEvent(std::string event) {
  core_->enqueue(kEventsTopic, nullptr, std::make_shared<const std::string>(std::move(event)));
}

void SubscriberHub::deliverAvailability(bool available) {
  std::lock_guard lk(core_->mu);
  if (core_->stopped) return;
  core_->queue.push_back({.subscriber = 0, .available = available});
  core_->work_cv.notify_one();
}

void SubscriberHub::setAvailabilityCallback(spi::AvailabilityCallback callback) {
  std::lock_guard lk(core_->mu);
  core_->availability = std::make_shared<const spi::AvailabilityCallback>(std::move(callback));
}

}  // namespace kasm::share
