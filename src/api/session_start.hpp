#pragma once

// Starting a session for an API call: with a background executor the call returns as soon as the
// session is placed and stored, and the container starts in the background (clients poll);
// without one it returns when the session runs. Shared by the REST and developer APIs.

#include <functional>

#include "kasm/manager/manager.hpp"

namespace kasm::api::detail {

using BackgroundExecutor = std::function<bool(std::function<void()>)>;

Result<Session> startSession(Manager& manager, const BackgroundExecutor& background, SessionRequest request);

}  // namespace kasm::api::detail
