#pragma once

// The local half of every share database: the subscribers registered in this process and the one
// delivery thread that calls them. The backends only decide what arrives (memory: its own appends;
// Redis: what the subscriber connection reads) and hand it to deliverChat()/deliverEvent().

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "kasm/spi/share_database.hpp"

namespace kasm::share {

class SubscriberHub {
 public:
  SubscriberHub();
  // Stops the delivery thread; deliveries still queued are dropped. Subscriptions that outlive the
  // hub become inert (cancel() does nothing).
  ~SubscriberHub();
  SubscriberHub(const SubscriberHub&) = delete;
  SubscriberHub& operator=(const SubscriberHub&) = delete;

  // Registers a subscriber of `session`'s chat, or of the events.
  std::unique_ptr<spi::Subscription> addChat(const std::string& session, spi::ChatCallback callback);
  std::unique_ptr<spi::Subscription> addEvents(spi::EventCallback callback);

  // Queue a delivery to every subscriber registered now; they are called in queue order, one at a
  // time, on the delivery thread. Never blocks on a callback.
  void deliverChat(const std::string& session, spi::ChatMessage message);
  void deliverEvent(std::string event);
  void deliverAvailability(bool available);
  void setAvailabilityCallback(spi::AvailabilityCallback callback);

  // Whether the calling thread is the delivery thread (a callback is calling us).
  bool onDeliveryThread() const noexcept { return std::this_thread::get_id() == thread_.get_id(); }

  struct Core;

 private:
  std::shared_ptr<Core> core_;
  std::thread thread_;
};

}  // namespace kasm::share
