#include "api/session_start.hpp"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>

namespace kasm::api::detail {

Result<Session> startSession(Manager& manager, const BackgroundExecutor& background, SessionRequest req,
                             bool* replayed) {
  if (!background) {
    if (replayed) req.on_replayed = [replayed](const Session&) { *replayed = true; };
    return manager.requestSession(req);
  }
  // The first of "stored" (from on_stored) and "finished" (a refusal before placement, a session
  // served from a staging pool, or a replay of an earlier launch) answers the caller.
  struct First {
    std::mutex mutex;
    std::condition_variable ready;
    std::optional<Result<Session>> result;
    bool replayed = false;
    void set(Result<Session> r, bool replay = false) {
      std::lock_guard lock(mutex);
      if (result) return;
      result.emplace(std::move(r));
      replayed = replay;
      ready.notify_all();
    }
  };
  auto first = std::make_shared<First>();
  req.on_stored = [first](const Session& s) { first->set(s); };
  req.on_replayed = [first](const Session& s) { first->set(s, /*replay=*/true); };
  const bool queued = background([first, &manager, req] { first->set(manager.requestSession(req)); });
  if (!queued) return unavailable("too many sessions are starting; try again shortly");
  std::unique_lock lock(first->mutex);
  first->ready.wait(lock, [&] { return first->result.has_value(); });
  if (replayed) *replayed = first->replayed;
  return std::move(*first->result);
}

Result<std::string> idempotencyKeyOf(std::string_view header, const boost::json::object& body) {
  std::string key(header);
  if (const auto* v = body.if_contains("idempotency_key"); v && !v->is_null()) {
    if (!v->is_string()) return invalidArgument("idempotency_key must be a string");
    const std::string field(v->get_string());
    if (!key.empty() && field != key) {
      return invalidArgument("the Idempotency-Key header and the body's idempotency_key differ; send one");
    }
    key = field;
  }
  return key;
}

}  // namespace kasm::api::detail
