// Idempotent launches: a client that retries a launch (its answer was lost: a balancer's 502, a
// timeout, a server killed mid-request) with the same idempotency key gets the session the first
// attempt made instead of a second desktop. The key is a unique store column of the session
// (Session::launch_key), written in the same batch that creates or claims the session, so two
// launches racing on managers that share a store make one session: the loser's write fails with
// the store's duplicate error, and it answers the winner's session.

#include <chrono>
#include <thread>

#include "license/armor.hpp"
#include "manager/manager_impl.hpp"

namespace kasm {
namespace {

// How long a launch refused because another launch holds its profile (a concurrent retry that has
// not stored its session yet) waits for that session to appear. Placing and storing takes
// milliseconds; this bounds a launch whose holder stalls or dies.
constexpr std::chrono::milliseconds kTwinStoreWait{3000};

Result<void> checkIdempotencyKey(std::string_view key) {
  if (key.size() > kMaxIdempotencyKeyBytes) {
    return invalidArgument("idempotency_key is " + std::to_string(key.size()) + " bytes; at most " +
                           std::to_string(kMaxIdempotencyKeyBytes) + " are allowed");
  }
  for (std::size_t i = 0; i < key.size(); ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (c < 0x20 || c > 0x7e) {
      static constexpr char kHex[] = "0123456789abcdef";
      return invalidArgument("idempotency_key must be printable ASCII; byte " + std::to_string(i) + " is 0x" +
                             kHex[c >> 4] + kHex[c & 15]);
    }
  }
  return {};
}

}  // namespace

std::string launchKeyFor(const UserId& user, std::string_view idempotency_key) {
  // The key is printable ASCII (no newline), so the last newline separates the two whatever the id.
  std::string text = user.str();
  text += '\n';
  text += idempotency_key;
  return license::detail::sha256Hex(text);
}

Result<std::optional<Session>> Manager::Impl::sessionWithLaunchKey(const std::string& launch_key) {
  spi::Query q;
  q.where("launch_key", launch_key);
  q.limit = 1;
  KASM_ASSIGN_OR_RETURN(auto rows, repo.list<Session>(q));
  if (rows.empty()) return std::optional<Session>();
  return std::optional<Session>(std::move(rows.front().value));
}

Result<Session> Manager::Impl::replayLaunch(const SessionRequest& req, Session earlier) {
  if (earlier.workspace_id != req.workspace_id) {
    return failedPrecondition("idempotency key already used for a launch of another workspace (session " +
                              earlier.id.str() + " of workspace " + earlier.workspace_id.str() +
                              "); use a new key for a new launch");
  }
  if (req.on_replayed) req.on_replayed(earlier);
  return earlier;
}

Result<Session> Manager::requestSession(const SessionRequest& req) {
  auto& im = *impl_;
  if (req.user_id.empty()) return invalidArgument("user_id is required");
  if (req.workspace_id.empty()) return invalidArgument("workspace_id is required");
  KASM_RETURN_IF_ERROR(checkIdempotencyKey(req.idempotency_key));
  auto user = im.repo.get<User>(req.user_id.str());
  if (!user.ok()) {
    if (user.error().code() == ErrorCode::kNotFound) return notFound("user '" + req.user_id.str() + "' does not exist");
    return user.error();
  }
  if (user->value.disabled || user->value.locked) {
    return permissionDenied("user '" + user->value.username + "' is disabled or locked");
  }
  const std::string launch_key =
      req.idempotency_key.empty() ? std::string() : launchKeyFor(req.user_id, req.idempotency_key);
  if (!launch_key.empty()) {
    // A retry of a launch that stored its session: answered before any work, so that neither the
    // user's session limit nor the licence (which count that session) refuses it.
    KASM_ASSIGN_OR_RETURN(auto earlier, im.sessionWithLaunchKey(launch_key));
    if (earlier) return im.replayLaunch(req, std::move(*earlier));
  }
  Impl::LaunchAttempt attempt;
  auto launched = im.launchSession(req, user->value, launch_key, attempt);
  if (launched.ok() || launch_key.empty()) return launched;
  // Refused or failed. When another launch with this key (a concurrent retry, here or on another
  // manager) stored its session meanwhile, the refusal is that launch's doing (its key is taken,
  // its session counts against the limits, it holds the profile): the answer is its session. A
  // session of this attempt's own that failed is answered with the failure.
  const auto deadline =
      std::chrono::steady_clock::now() +
      (attempt.profile_held_by_launch ? std::chrono::milliseconds(kTwinStoreWait) : std::chrono::milliseconds(0));
  for (int round = 0;; ++round) {
    auto earlier = im.sessionWithLaunchKey(launch_key);
    if (!earlier.ok()) return launched;  // The launch's own error says more.
    if (*earlier) {
      if ((*earlier)->id == attempt.session_id) return launched;
      return im.replayLaunch(req, std::move(**earlier));
    }
    if (std::chrono::steady_clock::now() >= deadline) return launched;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(10 << std::min(round, 4), 100)));
  }
}

}  // namespace kasm
