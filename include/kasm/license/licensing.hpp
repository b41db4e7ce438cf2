#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"
#include "kasm/license/document.hpp"
#include "kasm/license/keys.hpp"
#include "kasm/model/server.hpp"
#include "kasm/spi/store.hpp"

namespace kasm::license {

// How an installation is licensed. Part of ManagerOptions (ManagerOptions::license).
//
// The default is the community edition: at most 5 concurrent sessions, no licensed feature, and no
// verifying key, so no licence can be added until the integrator configures theirs. An integrator who
// sells per seat sets verifying_keys to the public half of their own signing key (made with
// `kasm-license keygen`); one who does not license per seat at all uses LicensePolicy::unlimited().
struct LicensePolicy {
  static constexpr std::int64_t kUnlimited = std::numeric_limits<std::int64_t>::max();

  // Licences must verify with one of these keys. Several allow a key rotation.
  std::vector<VerifyingKey> verifying_keys;
  // Without a licence: this many concurrent sessions and these features.
  std::int64_t community_session_limit = 5;
  std::set<std::string> community_features;
  // Licences within this time of their end report the state kExpiring (and days_left) so the UI
  // can warn; they work as before until the end.
  Duration expiry_warning = std::chrono::hours(24 * 30);
  // A clock this far behind the latest time the installation has seen is treated as set back, and
  // licensed installations refuse new sessions until it is fixed. Allows for small NTP steps.
  Duration clock_tolerance = std::chrono::minutes(10);

  // No session limit and every known feature without a licence.
  static LicensePolicy unlimited();
};

enum class LicenseState {
  kCommunity,   // No usable licence: the community limits apply.
  kValid,       // The active licence is in force.
  kExpiring,    // In force, ending within expiry_warning.
  kExpired,     // The licence ended: new sessions are refused, running ones go on.
  kClockBehind  // The system clock was set back: new sessions are refused until it is fixed.
};

// A stored licence that is not used, and why (another installation's, bad signature, ...).
struct LicenseProblem {
  LicenseId id;
  std::string message;
};

// Where the installation stands; what an admin page shows.
struct LicenseStatus {
  LicenseState state = LicenseState::kCommunity;
  std::string installation_id;
  std::optional<LicenseDocument> active;  // The licence in force (or the one that expired).
  LicenseType type = LicenseType::kConcurrentSessions;
  std::int64_t limit = 0;            // Sessions or named users; LicensePolicy::kUnlimited when unlimited.
  std::int64_t used = 0;             // Against the limit: live sessions, or named users of this licence period.
  std::int64_t sessions_in_use = 0;  // Live sessions, whatever the licence type.
  std::set<std::string> features;    // Features in force now.
  std::optional<TimePoint> valid_until;
  std::optional<std::int64_t> days_left;  // Whole days until valid_until, never negative.
  std::string message;                    // One sentence for people: the state and what to do.
  std::vector<LicenseProblem> problems;
};

// Licences of one installation: adding, removing and listing them, and what they allow. The
// manager enforces the limits (kasm/manager/manager.hpp); this class is what an API exposes.
//
// Threading: every method is thread-safe; calls block on the store.
class Licensing {
 public:
  Licensing(spi::Store& store, Clock& clock, LicensePolicy policy);
  ~Licensing();
  Licensing(const Licensing&) = delete;
  Licensing& operator=(const Licensing&) = delete;

  const LicensePolicy& policy() const;

  // The installation id licences must be bound to (created on first use; see installation.hpp).
  Result<std::string> installationId();

  // Verifies pasted licence text and stores it. Re-adding a licence with the same id replaces it
  // when the new one was issued later (a renewal) and is a no-op when it is the same text. Nothing
  // changes on error, and the licence in force stays in force:
  //   InvalidArgument     garbage, truncated or damaged text; a licence for another installation
  //                       (the message names both ids);
  //   Unauthenticated     a bad signature, or no verifying key configured;
  //   FailedPrecondition  an unsupported format version; an expired licence; an older issue of a
  //                       licence already stored.
  Result<LicenseRecord> addLicense(std::string_view armored);
  // Removes a stored licence. NotFound for an unknown id.
  Result<void> removeLicense(const LicenseId& id);
  // Every stored licence, including ones that are not usable (status() says why).
  Result<std::vector<LicenseRecord>> listLicenses();

  // The state, limits, usage, features and days left. Also advances the clock high-water mark.
  Result<LicenseStatus> status();

  // OK when `feature` is in force now; PermissionDenied with a message naming the feature and the
  // licence otherwise. For capabilities gated by a licence (sharing, autoscaling, ...).
  Result<void> requireFeature(std::string_view feature);

  // Opaque; public so the manager's implementation can reach the enforcement internals.
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kasm::license

KASM_ENUM_NAMES(kasm::license::LicenseState, 5, {kasm::license::LicenseState::kCommunity, "community"},
                {kasm::license::LicenseState::kValid, "valid"}, {kasm::license::LicenseState::kExpiring, "expiring"},
                {kasm::license::LicenseState::kExpired, "expired"},
                {kasm::license::LicenseState::kClockBehind, "clock_behind"});
