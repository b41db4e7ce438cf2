#include "kasm/sched/server_choice.hpp"

#include <map>
#include <optional>
#include <tuple>

namespace kasm::sched {
namespace {

// One server per user on desktops: a second session would log the same user in twice.
bool onePerUser(ServerConnectionType type) {
  return type != ServerConnectionType::kSsh;
}

// Why `s` cannot take `user`'s session, or nothing when it can.
std::optional<std::string> passOver(const Server& s, const UserId& user) {
  if (!s.enabled) return std::string("disabled");
  if (s.status == ServerStatus::kDead) return "dead" + (s.status_reason.empty() ? "" : " (" + s.status_reason + ")");
  if (s.status == ServerStatus::kMissing) {
    return "not answering" + (s.status_reason.empty() ? "" : " (" + s.status_reason + ")");
  }
  if (s.assigned_user_id && *s.assigned_user_id != user) return std::string("assigned to another user");
  if (onePerUser(s.connection_type) && s.slotOf(user)) return std::string("already serving you");
  if (static_cast<std::int64_t>(s.slots.size()) >= s.max_simultaneous_sessions) {
    return "at their limit of " + std::to_string(s.max_simultaneous_sessions);
  }
  return std::nullopt;
}

std::string plural(std::size_t n, std::string_view one) {
  return std::to_string(n) + " " + std::string(one) + (n == 1 ? "" : "s");
}

}  // namespace

Result<std::size_t> chooseServer(const std::vector<Server>& servers, const UserId& user, std::string_view what) {
  if (servers.empty()) return failedPrecondition(std::string(what) + " has no servers");
  std::optional<std::size_t> best;
  auto rank = [&](const Server& s) {
    const bool mine = s.assigned_user_id && *s.assigned_user_id == user;
    const double share = static_cast<double>(s.slots.size()) / static_cast<double>(s.max_simultaneous_sessions);
    return std::make_tuple(!mine, share, s.slots.size(), s.id.str());
  };
  std::map<std::string, std::size_t> reasons;  // Ordered, so the message is stable.
  for (std::size_t i = 0; i < servers.size(); ++i) {
    if (auto why = passOver(servers[i], user)) {
      ++reasons[*why];
      continue;
    }
    if (!best || rank(servers[i]) < rank(servers[*best])) best = i;
  }
  if (best) return *best;
  std::string message = std::string(what) + ": ";
  if (servers.size() == 1) {
    message += "the server is " + reasons.begin()->first;
    // "the server is at their limit" reads badly; say it for one.
    if (const auto p = message.find("at their limit"); p != std::string::npos) message.replace(p, 14, "at its limit");
  } else if (reasons.size() == 1) {
    message += plural(servers.size(), "server") + ", all " + reasons.begin()->first;
  } else {
    message += plural(servers.size(), "server") + ":";
    bool first = true;
    for (const auto& [why, n] : reasons) {
      message += (first ? " " : ", ") + std::to_string(n) + " " + why;
      first = false;
    }
  }
  return resourceExhausted(std::move(message));
}

}  // namespace kasm::sched
