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

namespace {
// Length of the valid UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates, at most
// U+10FFFF), or 0.
std::size_t utf8Sequence(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
  }
  return n;
}
}  // namespace

std::string validUtf8(std::string s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto n = utf8Sequence(s, i);
    if (n == 0) break;
    i += n;
  }
  if (i == s.size()) return s;
  std::string out = s.substr(0, i);
  while (i < s.size()) {
    const auto n = utf8Sequence(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
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
