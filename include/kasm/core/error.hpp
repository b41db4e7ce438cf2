#pragma once

#include <string>
#include <string_view>

namespace kasm {

// The error vocabulary of the whole library. Every failure that can happen at run time is reported
// as one of these codes plus a message a user can act on; no exception crosses the public API.
// The HTTP layer maps codes to status codes and the Python binding maps them to exception classes.
enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,     // The caller passed a bad value; the message names the field.
  kNotFound,            // An id or name that does not exist.
  kAlreadyExists,       // A create that clashes with an existing id or unique name.
  kFailedPrecondition,  // The system is not in a state that allows the call (e.g. bad transition).
  kAborted,             // A compare-and-set lost a race; re-read and retry.
  kResourceExhausted,   // No capacity, a limit or a license cap was reached.
  kPermissionDenied,    // Authenticated but not allowed.
  kUnauthenticated,     // Missing, bad or expired credentials.
  kUnavailable,         // A dependency (database, daemon, agent) cannot be reached; retry later.
  kDeadlineExceeded,    // A call did not finish in time.
  kDataLoss,            // Stored data is corrupt or unreadable.
  kInternal,            // A bug: an invariant was broken.
};

// Returns the stable lowercase name of a code, e.g. "not_found".
std::string_view errorCodeName(ErrorCode code) noexcept;

// The HTTP status every kasm HTTP API answers an error with (NotFound 404, ResourceExhausted 429,
// Unavailable 503, ...).
int httpStatusOf(ErrorCode code) noexcept;

// `s` when it is valid UTF-8, else a copy with each invalid byte replaced by U+FFFD.
std::string validUtf8(std::string s);

class [[nodiscard]] Error {
 public:
  // Messages often quote what a client sent; they are kept valid UTF-8 (each invalid byte becomes
  // U+FFFD), so that every API can put them in JSON as they are.
  Error(ErrorCode code, std::string message) : code_(code), message_(validUtf8(std::move(message))) {}

  ErrorCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // "not_found: session 42 does not exist".
  std::string toString() const;

  // Returns a copy whose message is prefixed with `context: `, to say where an error came from.
  Error withContext(std::string_view context) const;

  friend bool operator==(const Error&, const Error&) = default;

 private:
  ErrorCode code_;
  std::string message_;
};

// Shorthand constructors, in the spirit of absl::NotFoundError.
Error invalidArgument(std::string message);
Error notFound(std::string message);
Error alreadyExists(std::string message);
Error failedPrecondition(std::string message);
Error aborted(std::string message);
Error resourceExhausted(std::string message);
Error permissionDenied(std::string message);
Error unauthenticated(std::string message);
Error unavailable(std::string message);
Error deadlineExceeded(std::string message);
Error dataLoss(std::string message);
Error internalError(std::string message);

}  // namespace kasm
