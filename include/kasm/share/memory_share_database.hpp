#pragma once

// The share database of one process without Redis: chat history, presence and fan-out in memory.
// What the embedded default (a single server) uses, and the double the tests use.

#include <memory>

#include "kasm/core/clock.hpp"
#include "kasm/spi/share_database.hpp"

namespace kasm {

// Thread-safe; callbacks run on its own delivery thread, never with its locks held. Message ids are
// "<ms>-<seq>" as in Redis streams (ms from the clock), increasing across all sessions. Presence
// expiry follows `clock` (a ManualClock in tests). available() is always true.
class MemoryShareDatabase final : public spi::ShareDatabase {
 public:
  // `clock` must outlive the database.
  explicit MemoryShareDatabase(const Clock& clock, spi::ShareDatabaseLimits limits = {});
  ~MemoryShareDatabase() override;
  MemoryShareDatabase(const MemoryShareDatabase&) = delete;
  MemoryShareDatabase& operator=(const MemoryShareDatabase&) = delete;

  std::string_view backendName() const override { return "memory"; }
  Result<spi::ChatMessage> append(const SessionId& session, spi::ChatMessage message) override;
  Result<std::vector<spi::ChatMessage>> history(const SessionId& session, std::size_t limit) override;
  Result<std::unique_ptr<spi::Subscription>> subscribe(const SessionId& session, spi::ChatCallback callback) override;
  Result<void> touchMember(const SessionId& session, const spi::ChatMember& member, Duration ttl) override;
  Result<void> removeMember(const SessionId& session, std::string_view member_id) override;
  Result<std::vector<spi::ChatMember>> members(const SessionId& session) override;
  Result<void> dropSession(const SessionId& session) override;
  Result<void> publishEvent(std::string_view event) override;
  Result<std::unique_ptr<spi::Subscription>> subscribeEvents(spi::EventCallback callback) override;
  bool available() const override { return true; }
  void onAvailability(spi::AvailabilityCallback callback) override;
  const spi::ShareDatabaseLimits& limits() const override { return limits_; }

 private:
  struct State;
  const Clock& clock_;
  spi::ShareDatabaseLimits limits_;
  std::unique_ptr<State> state_;
};

}  // namespace kasm
