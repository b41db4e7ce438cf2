#include "api/session_start.hpp"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>

namespace kasm::api::detail {

Result<Session> startSession(Manager& manager, const BackgroundExecutor& background, SessionRequest req) {
  if (!background) return manager.requestSession(req);
  // The first of "stored" (from on_stored) and "finished" (a refusal before placement, or a
  // session served from a staging pool) answers the caller.
  struct First {
    std::mutex mutex;
    std::condition_variable ready;
    std::optional<Result<Session>> result;
    void set(Result<Session> r) {
      std::lock_guard lock(mutex);
      if (result) return;
      result.emplace(std::move(r));
      ready.notify_all();
    }
  };
  auto first = std::make_shared<First>();
  req.on_stored = [first](const Session& s) { first->set(s); };
  const bool queued = background([first, &manager, req] { first->set(manager.requestSession(req)); });
  if (!queued) return unavailable("too many sessions are starting; try again shortly");
  std::unique_lock lock(first->mutex);
  first->ready.wait(lock, [&] { return first->result.has_value(); });
  return std::move(*first->result);
}

}  // namespace kasm::api::detail
