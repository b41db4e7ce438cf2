#include "kasm/core/error.hpp"

namespace kasm {

std::string_view errorCodeName(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kAlreadyExists: return "already_exists";
    case ErrorCode::kFailedPrecondition: return "failed_precondition";
    case ErrorCode::kAborted: return "aborted";
    case ErrorCode::kResourceExhausted: return "resource_exhausted";
    case ErrorCode::kPermissionDenied: return "permission_denied";
    case ErrorCode::kUnauthenticated: return "unauthenticated";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kDeadlineExceeded: return "deadline_exceeded";
    case ErrorCode::kDataLoss: return "data_loss";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown";
}

int httpStatusOf(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kOk: return 200;
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kFailedPrecondition:
    case ErrorCode::kAborted: return 409;
    case ErrorCode::kResourceExhausted: return 429;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kDeadlineExceeded: return 504;
    case ErrorCode::kDataLoss:
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

std::string Error::toString() const {
  std::string out(errorCodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

Error Error::withContext(std::string_view context) const {
  std::string msg(context);
  msg += ": ";
  msg += message_;
  return Error(code_, std::move(msg));
}

Error invalidArgument(std::string m) {
  return {ErrorCode::kInvalidArgument, std::move(m)};
}
Error notFound(std::string m) {
  return {ErrorCode::kNotFound, std::move(m)};
}
Error alreadyExists(std::string m) {
  return {ErrorCode::kAlreadyExists, std::move(m)};
}
Error failedPrecondition(std::string m) {
  return {ErrorCode::kFailedPrecondition, std::move(m)};
}
Error aborted(std::string m) {
  return {ErrorCode::kAborted, std::move(m)};
}
Error resourceExhausted(std::string m) {
  return {ErrorCode::kResourceExhausted, std::move(m)};
}
Error permissionDenied(std::string m) {
  return {ErrorCode::kPermissionDenied, std::move(m)};
}
Error unauthenticated(std::string m) {
  return {ErrorCode::kUnauthenticated, std::move(m)};
}
Error unavailable(std::string m) {
  return {ErrorCode::kUnavailable, std::move(m)};
}
Error deadlineExceeded(std::string m) {
  return {ErrorCode::kDeadlineExceeded, std::move(m)};
}
Error dataLoss(std::string m) {
  return {ErrorCode::kDataLoss, std::move(m)};
}
Error internalError(std::string m) {
  return {ErrorCode::kInternal, std::move(m)};
}

}  // namespace kasm
