#pragma once

// Private to the library: licence evaluation and the usage rows the manager writes in the same
// atomic batch as the sessions they count.

#include <map>
#include <mutex>

#include "kasm/license/licensing.hpp"
#include "kasm/model/session.hpp"
#include "kasm/store/repository.hpp"

namespace kasm::license {

// What the licences allow at one instant, decided once per request.
struct Grant {
  LicenseState state = LicenseState::kCommunity;
  std::optional<LicenseDocument> doc;  // The licence in force or the one that ended.
  LicenseType type = LicenseType::kConcurrentSessions;
  std::int64_t limit = 0;
  std::set<std::string> features;
  std::string holder;   // "the community edition (no license)", "license <id> of <customer>".
  std::string message;  // For LicenseStatus::message.
  // Set when new sessions are refused (expired licence, clock set back).
  std::optional<Error> refusal;

  bool allowsNewSessions() const { return !refusal.has_value(); }
  bool hasFeature(std::string_view f) const { return features.count(std::string(f)) > 0; }
};

// The settings rows that hold usage. One row is written by every session start and end, so a race
// between two managers is settled by the store's compare-and-set on it.
inline constexpr std::string_view kSessionsInUseKey = "license_sessions_in_use";
std::string namedUserKey(const LicenseId& license, const UserId& user);
std::string namedUserCountKey(const LicenseId& license);

struct Licensing::Impl {
  Impl(spi::Store& s, Clock& c, LicensePolicy p) : store(s), repo(s), clock(c), policy(std::move(p)) {}

  spi::Store& store;
  Repository repo;
  Clock& clock;
  LicensePolicy policy;

  std::mutex mu;                                            // Guards `verified`; never held across store calls.
  std::map<std::string, Result<LicenseDocument>> verified;  // By armoured text: verification is pure.

  // Evaluates the stored licences and the clock now; `problems` (optional) collects unusable ones.
  Result<Grant> grant(std::vector<LicenseProblem>* problems = nullptr);

  // The mutations that move usage with a write of `session`: `session_delta` +1 when it starts
  // holding a reservation (checked against `grant`), -1 when it stops (grant may be null); with
  // `count_user`, registers the session's user under a named-user licence. ResourceExhausted with a
  // message when the grant's limit would be passed. Re-read and call again after a lost race.
  Result<std::vector<spi::Mutation>> usageMutations(const Grant* grant, const Session& session, int session_delta,
                                                    bool count_user);

  // Creates the session counter from the sessions holding reservations when it does not exist yet
  // (first start after an upgrade). Losing the creation race to another manager is fine.
  Result<void> initCounters();

  Result<std::int64_t> counterValue(std::string_view key, std::optional<std::int64_t>* version);
  Result<LicenseDocument> verify(const std::string& armored);
  Result<TimePoint> observeClock(TimePoint now);  // Returns the high-water mark before this call.
};

}  // namespace kasm::license
