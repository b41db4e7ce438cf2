#pragma once

// Events between the servers of one installation: fire-and-forget texts (usually JSON) that every
// subscriber on every server receives, its own publisher's server included. They carry what must
// reach every server at once but is kept elsewhere: a session ended (close its viewers), a viewer's
// rights changed, a command queued in the store for an agent that polls another server. Losing one
// delays, never loses, work: whoever relies on an event also re-reads the store now and then.
//
// Implementations: the events of a share database (in this process, or Redis:
// kasm/share/share_events.hpp) and PostgreSQL's LISTEN/NOTIFY (kasm/store/postgres_events.hpp),
// for installations on PostgreSQL without Redis. All pass tests/conformance/event_channel.

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>

#include "kasm/core/result.hpp"

namespace kasm::spi {

// Ends a subscription when destroyed (or by cancel()); after either returns, its callback is not
// running and will not run again.
class Subscription {
 public:
  virtual ~Subscription() = default;
  virtual void cancel() = 0;
};

// Called on the channel's own delivery thread, never with its locks held: a callback may publish,
// but must not block for long (post real work elsewhere).
using EventCallback = std::function<void(std::string_view event)>;
// Availability changes: false when the backing service was lost (subscribers miss events until it
// returns), true when it is back and subscriptions are live again.
using AvailabilityCallback = std::function<void(bool available)>;

// Threading: every method may be called from any thread.
// Errors: InvalidArgument for an event larger than maxEventBytes(), and for text the backend cannot
// carry (PostgreSQL: a NUL byte; invalid UTF-8 in a UTF-8 database); Unavailable while the backing
// service cannot be reached (the event is lost; nothing is queued).
class EventChannel {
 public:
  virtual ~EventChannel() = default;

  // "memory", "redis", "postgresql".
  virtual std::string_view backendName() const = 0;
  // Delivers `event` to every subscriber on every server, in the order this process published.
  virtual Result<void> publish(std::string_view event) = 0;
  // Events published from now on, by any server.
  virtual Result<std::unique_ptr<Subscription>> subscribe(EventCallback callback) = 0;
  // Whether the backing service is reachable now.
  virtual bool available() const = 0;
  // Replaces the availability callback (empty: none). Called on a thread of the channel's, never
  // with its locks held.
  virtual void onAvailability(AvailabilityCallback callback) = 0;
  // The largest event publish() takes (PostgreSQL's NOTIFY payloads stop below 8,000 bytes).
  virtual std::size_t maxEventBytes() const = 0;
};

}  // namespace kasm::spi
