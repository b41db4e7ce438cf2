#pragma once

// Events between servers on PostgreSQL's LISTEN/NOTIFY (component kasm::postgres), for installations
// that share one PostgreSQL store and run no Redis. Every server LISTENs on the same channel of the
// same database; publish() is `SELECT pg_notify(channel, event)`. PostgreSQL delivers a notification
// to every listening session, the publisher's own server included, in the order of the commits of
// the publishing session: one publishing connection per channel keeps this process's order.
//
// Two connections per channel, each with its own application_name in pg_stat_activity:
//   <application_name>          listens; read by a thread of its own, reconnected with backoff
//   <application_name>-publish  publishes, one call at a time; reconnected by the next publish()
// Callbacks run on a delivery thread of the channel's own, never on the one reading the connection,
// so a slow callback delays other callbacks but not the reading. Destroying the channel stops the
// listener at once, or after the connection attempt under way (connect_timeout at most).
// Limits of NOTIFY: a payload must be shorter than 8,000 bytes and is text in the database's
// encoding, so events with a NUL byte are refused (InvalidArgument) and, in a UTF-8 database, so are
// invalid UTF-8 sequences (InvalidArgument, from the server).

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"
#include "kasm/spi/event_channel.hpp"

namespace kasm {

struct PostgresEventOptions {
  // libpq connection URL or key=value string, the same one openPostgresStore takes (TLS through
  // sslmode, sslrootcert... in it). Parameters below are added to it unless it sets them itself.
  std::string url;
  // The NOTIFY channel, the same on every server of an installation: [a-z_][a-z0-9_]{0,62}.
  std::string channel = "kasm_events";
  // Names the listening connection (and, with "-publish", the publishing one) in pg_stat_activity.
  std::string application_name = "kasm-events";
  // libpq's connect_timeout: whole seconds, and libpq waits at least 2.
  std::chrono::seconds connect_timeout{2};
  // How long a peer may stay silent (no TCP acknowledgement, no keepalive answer) before its
  // connection counts as lost: tcp_user_timeout and keepalives.
  Duration dead_peer_timeout{5000};
  // The listener's waits between reconnection attempts: the first, doubling up to the second.
  Duration first_backoff{100};
  Duration max_backoff{5000};
  // After the publisher failed to connect, publish() answers Unavailable at once for this long
  // instead of trying again, so callers do not queue behind connection attempts during an outage.
  Duration publish_retry_after{1000};
};

// The largest event a PostgreSQL channel publishes: NOTIFY payloads stop below 8,000 bytes.
inline constexpr std::size_t kPostgresMaxEventBytes = 7999;

// Starts the listener and waits for its first connection attempt (about connect_timeout at most).
// The channel opens even when PostgreSQL cannot be reached: available() is false and publish()
// answers Unavailable until it can; the listener keeps trying. Availability changes after this
// returns are reported through onAvailability(). InvalidArgument for an empty URL, a channel name
// that is not a plain lower-case identifier, or non-positive timeouts.
Result<std::unique_ptr<spi::EventChannel>> openPostgresEventChannel(PostgresEventOptions options);

}  // namespace kasm
