#pragma once

// The share database on Redis (component kasm::redis), what the servers of one installation use to
// share chat, presence and events. Per session (hash-tagged by the session id, so a cluster keeps a
// session's keys on one node):
//   <prefix>chat:{<session>}:log        stream of messages (XADD MAXLEN <history_messages>)
//   <prefix>chat:{<session>}:members    sorted set member_id -> expiry (Unix ms)
//   <prefix>chat:{<session>}:member-data hash member_id -> member JSON
//   <prefix>chat:{<session>}            pub/sub channel of new messages
//   <prefix>events                      pub/sub channel of control events
// Keys expire after `idle_expiry` without an append or touch, besides dropSession().

#include <cstddef>
#include <memory>
#include <string>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"
#include "kasm/spi/share_database.hpp"

namespace kasm {

struct RedisShareDatabaseOptions {
  // redis://[[user]:password@]host[:port][/db], or rediss:// for TLS.
  std::string url;
  Duration connect_timeout{1000};
  Duration command_timeout{2000};
  spi::ShareDatabaseLimits limits;
  // rediss://: the CA bundle that signed the server's certificate (empty: the system's CAs).
  std::string tls_ca_file;
  // rediss://: skip certificate verification. For tests only.
  bool tls_insecure = false;
  // Command connections kept open at most (the subscriber has its own).
  std::size_t pool_size = 4;
  // Prepended to every key and channel; installations sharing one Redis (and tests) differ here.
  std::string key_prefix = "kasm:";
  // A session's keys go after this long without an append or a touch.
  Duration idle_expiry = std::chrono::hours(24);
};

// Connects (AUTH with the URL's password, SELECT its db) and starts the subscriber thread.
// InvalidArgument for a bad URL or options, Unauthenticated when Redis refuses the password,
// Unavailable when Redis cannot be reached within the connect timeout. Once open, losing Redis makes
// calls return Unavailable until it is back; the subscriber reconnects by itself. `clock` (which
// must outlive the database) scores presence expiry, so all servers should agree on the time.
Result<std::unique_ptr<spi::ShareDatabase>> openRedisShareDatabase(const RedisShareDatabaseOptions& options,
                                                                   const Clock& clock);

}  // namespace kasm
