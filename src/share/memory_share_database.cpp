#include "kasm/share/memory_share_database.hpp"

#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>

#include "share/share_checks.hpp"
#include "share/subscriber_hub.hpp"

namespace kasm {

namespace {

struct Presence {
  spi::ChatMember member;
  TimePoint expires;
};

struct SessionChat {
  std::deque<spi::ChatMessage> log;
  std::map<std::string, Presence, std::less<>> members;  // By member_id: the order members() lists.
};

}  // namespace

struct MemoryShareDatabase::State {
  std::mutex mu;
  std::unordered_map<std::string, SessionChat> sessions;
  std::int64_t last_ms = 0;
  std::uint64_t seq = 0;
  // Last member: destroyed first, so the delivery thread stops before the rest goes away.
  share::SubscriberHub hub;
};

MemoryShareDatabase::MemoryShareDatabase(const Clock& clock, spi::ShareDatabaseLimits limits)
    : clock_(clock), limits_(limits), state_(std::make_unique<State>()) {}

MemoryShareDatabase::~MemoryShareDatabase() = default;

Result<spi::ChatMessage> MemoryShareDatabase::append(const SessionId& session, spi::ChatMessage message) {
  KASM_RETURN_IF_ERROR(share::checkAppend(session, message, limits_));
  std::lock_guard lk(state_->mu);
  // "<ms>-<seq>" like a Redis stream: the clock's ms, or the last one when the clock did not move on.
  const auto now_ms = toUnixMillis(clock_.now());
  if (now_ms > state_->last_ms) {
    state_->last_ms = now_ms;
    state_->seq = 0;
  } else {
    ++state_->seq;
  }
  message.id = std::to_string(state_->last_ms) + "-" + std::to_string(state_->seq);
  auto& log = state_->sessions[session.str()].log;
  log.push_back(message);
  while (log.size() > limits_.history_messages) log.pop_front();
  // Queued under the lock, so subscribers see messages in append order.
  state_->hub.deliverChat(session.str(), message);
  return message;
}

Result<std::vector<spi::ChatMessage>> MemoryShareDatabase::history(const SessionId& session, std::size_t limit) {
  KASM_RETURN_IF_ERROR(share::checkSession(session));
  std::lock_guard lk(state_->mu);
  auto it = state_->sessions.find(session.str());
  if (it == state_->sessions.end()) return std::vector<spi::ChatMessage>{};
  const auto& log = it->second.log;
  const auto n = std::min(limit, log.size());
  return std::vector<spi::ChatMessage>(log.end() - static_cast<std::ptrdiff_t>(n), log.end());
}

Result<std::unique_ptr<spi::Subscription>> MemoryShareDatabase::subscribe(const SessionId& session,
                                                                          spi::ChatCallback callback) {
  KASM_RETURN_IF_ERROR(share::checkSession(session));
  return state_->hub.addChat(session.str(), std::move(callback));
}

Result<void> MemoryShareDatabase::touchMember(const SessionId& session, const spi::ChatMember& member, Duration ttl) {
  KASM_RETURN_IF_ERROR(share::checkMember(session, member, ttl));
  std::lock_guard lk(state_->mu);
  state_->sessions[session.str()].members[member.member_id] = Presence{member, clock_.now() + ttl};
  return {};
}

Result<void> MemoryShareDatabase::removeMember(const SessionId& session, std::string_view member_id) {
  KASM_RETURN_IF_ERROR(share::checkSession(session));
  std::lock_guard lk(state_->mu);
  auto it = state_->sessions.find(session.str());
  if (it != state_->sessions.end()) {
    auto m = it->second.members.find(member_id);
    if (m != it->second.members.end()) it->second.members.erase(m);
  }
  return {};
}

Result<std::vector<spi::ChatMember>> MemoryShareDatabase::members(const SessionId& session) {
  KASM_RETURN_IF_ERROR(share::checkSession(session));
  std::lock_guard lk(state_->mu);
  std::vector<spi::ChatMember> out;
  auto it = state_->sessions.find(session.str());
  if (it == state_->sessions.end()) return out;
  const auto now = clock_.now();
  auto& members = it->second.members;
  for (auto m = members.begin(); m != members.end();) {
    if (m->second.expires <= now) {
      m = members.erase(m);
    } else {
      out.push_back(m->second.member);
      ++m;
    }
  }
  return out;
}

Result<void> MemoryShareDatabase::dropSession(const SessionId& session) {
  KASM_RETURN_IF_ERROR(share::checkSession(session));
  std::lock_guard lk(state_->mu);
  state_->sessions.erase(session.str());
  return {};
}

Result<void> MemoryShareDatabase::publishEvent(std::string_view event) {
  std::lock_guard lk(state_->mu);
  state_->hub.deliverEvent(std::string(event));
  return {};
}

Result<std::unique_ptr<spi::Subscription>> MemoryShareDatabase::subscribeEvents(spi::EventCallback callback) {
  return state_->hub.addEvents(std::move(callback));
}

void MemoryShareDatabase::onAvailability(spi::AvailabilityCallback callback) {
  state_->hub.setAvailabilityCallback(std::move(callback));
}

}  // namespace kasm
