#pragma once

// Starting a session for an API call: with a background executor the call returns as soon as the
// session is placed and stored, and the container starts in the background (clients poll);
// without one it returns when the session runs. Shared by the REST and developer APIs.

#include <boost/json.hpp>
#include <functional>
#include <string_view>

#include "kasm/manager/manager.hpp"

namespace kasm::api::detail {

using BackgroundExecutor = std::function<bool(std::function<void()>)>;

// `*replayed` (optional) tells whether the answer is an earlier launch's session, named by the
// request's idempotency key, rather than one this call made or claimed.
Result<Session> startSession(Manager& manager, const BackgroundExecutor& background, SessionRequest request,
                             bool* replayed = nullptr);

// The idempotency key of a launch: the Idempotency-Key header, or the body's `idempotency_key`
// (a string); both may be given when they are equal. InvalidArgument when they differ or the
// field is not a string. The manager checks length and characters.
Result<std::string> idempotencyKeyOf(std::string_view header, const boost::json::object& body);

}  // namespace kasm::api::detail
