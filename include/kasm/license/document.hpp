#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"
#include "kasm/model/server.hpp"

namespace kasm::license {

// The text format version this build writes and reads. A document of another version is refused
// with a message saying so, never half-understood.
inline constexpr int kFormatVersion = 1;

// Entitlements a licence can carry. Integrators may add their own names (lowercase letters, digits
// and '_', at most 32 characters) to gate capabilities of their product; unknown names are kept.
namespace features {
inline constexpr std::string_view kStaging = "staging";
inline constexpr std::string_view kAutoscaling = "autoscaling";
inline constexpr std::string_view kSharing = "sharing";
inline constexpr std::string_view kSessionRecording = "session_recording";
inline constexpr std::string_view kFixedServers = "fixed_servers";
// Every feature this library knows.
std::set<std::string> all();
}  // namespace features

// True for a well-formed feature name (see above).
bool isValidFeatureName(std::string_view name) noexcept;

// What the vendor sells: issued at purchase, not yet bound to an installation. Activation turns it
// plus an installation id into a LicenseDocument. All times are whole seconds (UTC).
struct ActivationKey {
  int format_version = kFormatVersion;
  std::string id;  // A valid id (see isValidIdString), unique per purchase.
  std::string customer;
  LicenseType type = LicenseType::kConcurrentSessions;
  std::int64_t limit = 0;  // Concurrent sessions or named users, >= 1.
  std::set<std::string> features;
  TimePoint issued_at;
  TimePoint not_before;  // The licence period: [not_before, expires_at).
  TimePoint expires_at;  // Activation is refused from then on too.
  // How long a licence made from this key stays valid after it was issued before the vendor must
  // issue a fresh one (0 = never): the licence's effective end is the earlier of expires_at and
  // issued_at + renewal_ttl.
  Duration renewal_ttl{0};

  // InvalidArgument naming the first bad field.
  Result<void> validate() const;
  friend bool operator==(const ActivationKey&, const ActivationKey&) = default;
};

// A licence: an activation key bound to one installation. What an operator pastes into the UI.
struct LicenseDocument {
  int format_version = kFormatVersion;
  LicenseId id;               // Derived from (activation id, installation id): re-activating renews it.
  std::string activation_id;  // The activation key it was made from.
  std::string customer;
  std::string installation_id;
  LicenseType type = LicenseType::kConcurrentSessions;
  std::int64_t limit = 0;
  std::set<std::string> features;
  TimePoint issued_at;
  TimePoint not_before;
  TimePoint expires_at;
  Duration renewal_ttl{0};

  // The end of validity: expires_at, or issued_at + renewal_ttl when that is earlier.
  TimePoint validUntil() const;
  bool hasFeature(std::string_view feature) const { return features.count(std::string(feature)) > 0; }

  // InvalidArgument naming the first bad field.
  Result<void> validate() const;
  friend bool operator==(const LicenseDocument&, const LicenseDocument&) = default;
};

// The licence id activation gives (activation id, installation id): the first 32 hex digits of a
// SHA-256 over both, so activating the same key for the same installation again renews the same
// licence instead of adding a second one.
LicenseId licenseIdFor(std::string_view activation_id, std::string_view installation_id);

}  // namespace kasm::license
