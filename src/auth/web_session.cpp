#include "kasm/auth/web_session.hpp"

#include <algorithm>
#include <charconv>
#include <vector>

#include "auth/token_fields.hpp"
#include "kasm/auth/secret.hpp"

namespace kasm::auth {

namespace {
bool parseMillis(std::string_view text, std::int64_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && !text.empty();
}

}  // namespace

Result<WebSessionSigner> WebSessionSigner::create(std::string key, const Clock& clock) {
  if (key.size() < 32) return invalidArgument("web session key must be at least 32 bytes");
  return WebSessionSigner(std::move(key), clock);
}

std::string WebSessionSigner::issue(const UserId& user, Duration ttl, std::string_view nonce) const {
  const auto now = clock_->now();
  std::string payload = "w1~" + user.str() + "~" + std::to_string(toUnixMillis(now)) + "~" +
                        std::to_string(toUnixMillis(now + ttl)) + "~" + std::string(nonce);
  return payload + "~" + hmacSha256(key_, payload);
}

Result<WebSessionClaims> WebSessionSigner::verify(std::string_view cookie) const {
  if (cookie.empty()) return unauthenticated("not logged in");
  if (cookie.size() > 512) return unauthenticated("login session is malformed");
  const auto parts = detail::splitTokenFields(cookie);
  if (parts.size() != 6 || parts[0] != "w1") return unauthenticated("login session is malformed");
  const std::string_view given = parts[5];
  const std::string_view payload = cookie.substr(0, cookie.size() - given.size() - 1);
  if (!constantTimeEquals(hmacSha256(key_, payload), given)) {
    return unauthenticated("login session signature does not match");
  }
  std::int64_t issued = 0, expiry = 0;
  if (!parseMillis(parts[2], issued) || !parseMillis(parts[3], expiry)) {
    return unauthenticated("login session is malformed");
  }
  auto user = UserId::parse(parts[1], "user");
  if (!user.ok()) return unauthenticated("login session is malformed");
  WebSessionClaims claims{*user, fromUnixMillis(issued), fromUnixMillis(expiry)};
  if (clock_->now() >= claims.expires_at) return unauthenticated("login session has expired; log in again");
  return claims;
}

std::string WebSessionSigner::csrfToken(std::string_view cookie) const {
  return hmacSha256(key_, "csrf~" + std::string(cookie));
}

bool WebSessionSigner::checkCsrf(std::string_view cookie, std::string_view given) const {
  return !given.empty() && constantTimeEquals(csrfToken(cookie), given);
}

// ---- LoginRateLimiter -------------------------------------------------------------------------

std::int64_t LoginRateLimiter::waitLocked(const Window* w, int limit, TimePoint now) const {
  if (!w || w->failures < limit) return 0;
  const auto end = w->started + options_.window;
  if (now >= end) return 0;
  return std::chrono::duration_cast<std::chrono::seconds>(end - now).count() + 1;
}

std::string LoginRateLimiter::pairKey(std::string_view username, std::string_view address) {
  // A newline cannot occur in an address, so the pair is unambiguous.
  return std::string(address) + "\n" + std::string(username);
}

void LoginRateLimiter::makeRoom(Windows& m, TimePoint now) {
  if (m.size() < options_.max_tracked) return;
  // Bounded memory under a spray of names or addresses: forget windows that have ended, and when
  // that is not enough, the older half (those closest to ending anyway).
  std::erase_if(m, [&](const auto& e) { return now >= e.second.started + options_.window; });
  if (m.size() < options_.max_tracked) return;
  std::vector<TimePoint> starts;
  starts.reserve(m.size());
  for (const auto& [k, w] : m) starts.push_back(w.started);
  auto mid = starts.begin() + static_cast<std::ptrdiff_t>(starts.size() / 2);
  std::nth_element(starts.begin(), mid, starts.end());
  const TimePoint cutoff = *mid;
  std::erase_if(m, [&](const auto& e) { return e.second.started <= cutoff; });
}

std::int64_t LoginRateLimiter::retryAfter(std::string_view username, std::string_view address) {
  std::lock_guard lock(mutex_);
  const auto now = clock_->now();
  auto a = by_address_.find(address);
  auto u = by_user_at_address_.find(pairKey(username, address));
  return std::max(waitLocked(a == by_address_.end() ? nullptr : &a->second, options_.max_failures_per_address, now),
                  waitLocked(u == by_user_at_address_.end() ? nullptr : &u->second,
                             options_.max_failures_per_user_at_address, now));
}

Result<void> LoginRateLimiter::check(std::string_view username, std::string_view address) {
  const auto wait = retryAfter(username, address);
  if (wait > 0) {
    return resourceExhausted("too many failed logins; try again in " + std::to_string(wait) + " seconds");
  }
  return {};
}

void LoginRateLimiter::recordFailure(std::string_view username, std::string_view address) {
  std::lock_guard lock(mutex_);
  const auto now = clock_->now();
  const std::string pair = pairKey(username, address);
  for (auto [m, key] : {std::pair{&by_address_, address}, std::pair{&by_user_at_address_, std::string_view(pair)}}) {
    auto it = m->find(key);
    if (it == m->end()) {
      makeRoom(*m, now);
      it = m->emplace(std::string(key), Window{0, now}).first;
    }
    if (now >= it->second.started + options_.window) it->second = Window{0, now};
    ++it->second.failures;
  }
}

void LoginRateLimiter::recordSuccess(std::string_view username, std::string_view address) {
  std::lock_guard lock(mutex_);
  if (auto it = by_user_at_address_.find(pairKey(username, address)); it != by_user_at_address_.end()) {
    by_user_at_address_.erase(it);
  }
}

std::size_t LoginRateLimiter::tracked() {
  std::lock_guard lock(mutex_);
  return by_address_.size() + by_user_at_address_.size();
}

}  // namespace kasm::auth
