#pragma once

// The share database: what the servers of one installation share about shared sessions besides the
// store, namely each session's chat history, who is in its chat now (presence) and the fan-out of
// chat messages and control events between servers. Kasm keeps this in Redis; so do we
// (kasm::redis, RedisShareDatabase). The embedded default, one process without Redis, uses
// MemoryShareDatabase (kasm/share/memory_share_database.hpp). Both pass
// tests/conformance/share_database_conformance.
//
// Losing the share database loses chat, never a session: callers treat every error as "chat is
// unavailable for now" and carry on.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"
#include "kasm/spi/event_channel.hpp"

namespace kasm::spi {

// One chat line of a session.
struct ChatMessage {
  // Assigned by append(): unique within the session and increasing in the order messages were
  // appended (Redis: the stream entry id "<ms>-<seq>"). Empty before append().
  std::string id;
  std::string kind = "message";  // "message" (a person wrote it) or "system" (joins, leaves).
  std::string user_id;           // Empty for system messages.
  std::string username;
  std::string body;
  std::int64_t at_ms = 0;  // Unix milliseconds, set by the caller.

  friend bool operator==(const ChatMessage&, const ChatMessage&) = default;
};

// Someone connected to a session's chat on some server.
struct ChatMember {
  std::string member_id;  // One per connection (a user with two tabs is two members).
  std::string user_id;
  std::string username;
  std::string access;  // "owner", "rw" or "r": what the member may do on the desktop.

  friend bool operator==(const ChatMember&, const ChatMember&) = default;
};

// Called on the share database's own delivery thread, never with its locks held: a callback may
// call the share database, but must not block for long (post real work elsewhere).
using ChatCallback = std::function<void(const ChatMessage&)>;

struct ShareDatabaseLimits {
  std::size_t history_messages = 500;     // Newest messages kept per session.
  std::size_t max_body_bytes = 4 * 1024;  // append() refuses longer bodies (InvalidArgument).
};

// Threading: every method may be called from any thread concurrently.
// Errors: Unavailable when the backing service cannot be reached (the call had no effect, or for
// append() may have had none); InvalidArgument for an empty session id or an oversized body.
class ShareDatabase {
 public:
  virtual ~ShareDatabase() = default;

  // "memory", "redis".
  virtual std::string_view backendName() const = 0;

  // Stores `message` in the session's history (keeping only the newest limits().history_messages)
  // and delivers it to every subscriber of the session on every server, this one included, exactly
  // once each while they stay subscribed and the service stays up. Returns it with its id.
  virtual Result<ChatMessage> append(const SessionId& session, ChatMessage message) = 0;
  // The newest `limit` messages of the session, oldest first.
  virtual Result<std::vector<ChatMessage>> history(const SessionId& session, std::size_t limit) = 0;
  // Messages appended to the session from now on, on any server.
  virtual Result<std::unique_ptr<Subscription>> subscribe(const SessionId& session, ChatCallback callback) = 0;

  // Presence. A member is listed until removed or until `ttl` passes without another touch.
  virtual Result<void> touchMember(const SessionId& session, const ChatMember& member, Duration ttl) = 0;
  virtual Result<void> removeMember(const SessionId& session, std::string_view member_id) = 0;
  // Members present now, ordered by member_id.
  virtual Result<std::vector<ChatMember>> members(const SessionId& session) = 0;

  // Forgets the session: history and presence (when it ends). Subscribers stay subscribed.
  virtual Result<void> dropSession(const SessionId& session) = 0;

  // Control events between the servers of an installation (a share revoked, a viewer's rights
  // changed): an opaque text, usually JSON, delivered to every events subscriber on every server.
  virtual Result<void> publishEvent(std::string_view event) = 0;
  virtual Result<std::unique_ptr<Subscription>> subscribeEvents(EventCallback callback) = 0;

  // Whether the backing service is reachable now (always true in memory).
  virtual bool available() const = 0;
  // Replaces the availability callback (empty: none). Called on the delivery thread.
  virtual void onAvailability(AvailabilityCallback callback) = 0;

  virtual const ShareDatabaseLimits& limits() const = 0;
};

}  // namespace kasm::spi
