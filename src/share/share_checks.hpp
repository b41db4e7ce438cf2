#pragma once

// Argument checks every share database makes the same way, so both pass the same conformance tests.

#include <string>

#include "kasm/spi/share_database.hpp"

namespace kasm::share {

inline Result<void> checkSession(const SessionId& session) {
  if (session.empty()) return invalidArgument("share database: the session id is empty");
  return {};
}

inline Result<void> checkAppend(const SessionId& session, const spi::ChatMessage& message,
                                const spi::ShareDatabaseLimits& limits) {
  KASM_RETURN_IF_ERROR(checkSession(session));
  if (message.body.size() > limits.max_body_bytes) {
    return invalidArgument("chat message body: " + std::to_string(message.body.size()) + " bytes, the limit is " +
                           std::to_string(limits.max_body_bytes));
  }
  return {};
}

inline Result<void> checkMember(const SessionId& session, const spi::ChatMember& member, Duration ttl) {
  KASM_RETURN_IF_ERROR(checkSession(session));
  if (member.member_id.empty()) return invalidArgument("chat member: member_id is empty");
  if (ttl.count() <= 0) return invalidArgument("chat member: the ttl must be positive");
  return {};
}

}  // namespace kasm::share
