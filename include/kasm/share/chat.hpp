#pragma once

// The chat of a shared session, with Kasm's message shapes, over a ShareDatabase (in memory, or
// Redis so that every server of an installation serves one chat). A transport (kasm-server: a
// WebSocket the session proxy serves at <prefix><session>/kasm/chat) connects each viewer and feeds
// their text messages in; the service answers through the viewer's send function.
//
// From a viewer:
//   "ping"                         -> "pong"
//   {"members": true}              -> {"members": [{"user_id", "username", "access"}, ...]}
//   {"message": "hi", ...}         -> appended and broadcast to everyone in the chat, on every
//                                     server, as {"body": {...}} (the author is the authenticated
//                                     viewer: a "username" in the message is ignored)
// To a viewer:
//   {"history": [body, ...]} on joining (the newest messages, oldest first), again after the share
//   database comes back; {"body": {"id", "kind": "message"|"system", "user_id", "username",
//   "message", "timestamp"}} per message, system ones when people join and leave;
//   {"status": "unavailable", "reason"} when the share database is lost, {"status": "available"}
//   when it is back; {"error": "..."} for a message the service refuses.
//
// Losing the share database loses chat only: viewers stay connected to the desktop.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/spi/share_database.hpp"

namespace kasm::share {

struct ChatOptions {
  std::size_t history_on_join = 100;                 // Messages replayed to a viewer who joins.
  Duration presence_ttl = std::chrono::seconds(30);  // Refreshed every third of it.
  std::size_t max_message_bytes = 4096;              // Longer chat lines are refused.
  std::size_t max_queue = 10000;                     // Share database calls waiting at most; beyond: refused.
};

// One viewer's connection to a session's chat. Destroying it (or leave()) takes them out.
class ChatConnection {
 public:
  virtual ~ChatConnection() = default;
  // A text message from the viewer. Never blocks.
  virtual void receive(std::string_view text) = 0;
  // The viewer left (their socket closed). Idempotent.
  virtual void leave() = 0;
};

// Thread-safe. Owns one worker thread for share database calls, so callers on event loops never
// block; messages to viewers go out through their send functions, which must not block either.
class ChatService {
 public:
  ChatService(spi::ShareDatabase& db, const Clock& clock, ChatOptions options = {});
  ~ChatService();
  ChatService(const ChatService&) = delete;
  ChatService& operator=(const ChatService&) = delete;

  // Connects a viewer to the chat of `session`. `send` delivers one text message to them.
  std::shared_ptr<ChatConnection> connect(const SessionId& session, spi::ChatMember member,
                                          std::function<void(std::string)> send);

  // `user_id`'s access changed ("rw" or "r"): the member list shows it from now on.
  void setAccess(const SessionId& session, std::string_view user_id, std::string access);

  // Forgets a session that ended: its history and presence (local viewers are cut by the proxy).
  void endSession(const SessionId& session);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace kasm::share
