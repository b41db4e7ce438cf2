#pragma once

// A share database's events (publishEvent/subscribeEvents) presented as an spi::EventChannel:
// "memory" within one process (MemoryShareDatabase), "redis" between the servers that share one
// Redis (RedisShareDatabase). Installations without Redis use kasm/store/postgres_events.hpp.

#include <cstddef>
#include <memory>

#include "kasm/spi/event_channel.hpp"
#include "kasm/spi/share_database.hpp"

namespace kasm {

// The largest event the adapter publishes: neither backend needs a limit, but servers should not
// send each other megabytes through a channel meant for short notices.
inline constexpr std::size_t kShareEventMaxBytes = 64 * 1024;

// `db` must outlive the channel (subscriptions are the database's own and may outlive the channel).
// Events, subscriptions and their threading are the database's: callbacks run on its delivery
// thread. Availability is the database's available(); since the database has a single availability
// callback, which ChatService already takes, the channel does not replace it: it looks at
// available() every 100 ms (only while an availability callback is set) and reports changes from a
// thread of its own.
std::unique_ptr<spi::EventChannel> shareDatabaseEvents(spi::ShareDatabase& db);

}  // namespace kasm
