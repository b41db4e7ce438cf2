#include "kasm/license/document.hpp"

#include <algorithm>

#include "license/armor.hpp"

namespace kasm::license {
namespace {

constexpr std::int64_t kMaxLimit = 1'000'000'000;
constexpr std::size_t kMaxCustomer = 200;

bool wholeSeconds(Duration d) {
  return d.count() % 1000 == 0;
}

Result<void> checkCommon(std::string_view what, std::string_view customer, std::int64_t limit,
                         const std::set<std::string>& feats, TimePoint issued_at, TimePoint not_before,
                         TimePoint expires_at, Duration renewal_ttl, int format_version) {
  const std::string w(what);
  if (format_version < 1) return invalidArgument(w + ".format_version must be at least 1");
  if (customer.empty() || customer.size() > kMaxCustomer) {
    return invalidArgument(w + ".customer must be 1 to " + std::to_string(kMaxCustomer) + " bytes");
  }
  for (unsigned char c : customer) {
    if (c < 0x20 || c == 0x7F) return invalidArgument(w + ".customer must not contain control characters");
  }
  if (limit < 1 || limit > kMaxLimit) {
    return invalidArgument(w + ".limit must be between 1 and " + std::to_string(kMaxLimit));
  }
  for (const auto& f : feats) {
    if (!isValidFeatureName(f)) {
      return invalidArgument(w + ".features: '" + f.substr(0, 40) +
                             "' is not a feature name (lowercase letters, digits and '_', at most 32)");
    }
  }
  for (auto t : {issued_at, not_before, expires_at}) {
    if (t.time_since_epoch().count() < 0 || !wholeSeconds(t.time_since_epoch())) {
      return invalidArgument(w + ": times must be whole seconds after 1970");
    }
  }
  if (expires_at <= not_before) return invalidArgument(w + ".expires_at must be after not_before");
  if (renewal_ttl.count() < 0 || !wholeSeconds(renewal_ttl)) {
    return invalidArgument(w + ".renewal_ttl must be whole seconds, 0 or more");
  }
  return {};
}

}  // namespace

std::set<std::string> features::all() {
  return {std::string(kStaging), std::string(kAutoscaling), std::string(kSharing), std::string(kSessionRecording),
          std::string(kFixedServers)};
}

bool isValidFeatureName(std::string_view name) noexcept {
  if (name.empty() || name.size() > 32) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

Result<void> ActivationKey::validate() const {
  if (!isValidIdString(id)) return invalidArgument("activation_key.id: '" + id.substr(0, 80) + "' is not a valid id");
  return checkCommon("activation_key", customer, limit, features, issued_at, not_before, expires_at, renewal_ttl,
                     format_version);
}

TimePoint LicenseDocument::validUntil() const {
  if (renewal_ttl.count() > 0) return std::min(expires_at, issued_at + renewal_ttl);
  return expires_at;
}

Result<void> LicenseDocument::validate() const {
  if (!isValidIdString(id.str()))
    return invalidArgument("license.id: '" + id.str().substr(0, 80) + "' is not a valid id");
  if (!isValidIdString(activation_id)) {
    return invalidArgument("license.activation_id: '" + activation_id.substr(0, 80) + "' is not a valid id");
  }
  if (!isValidIdString(installation_id)) {
    return invalidArgument("license.installation_id: '" + installation_id.substr(0, 80) + "' is not a valid id");
  }
  return checkCommon("license", customer, limit, features, issued_at, not_before, expires_at, renewal_ttl,
                     format_version);
}

LicenseId licenseIdFor(std::string_view activation_id, std::string_view installation_id) {
  const std::string material = "kasm-license-id\n" + std::string(activation_id) + "\n" + std::string(installation_id);
  return LicenseId(detail::sha256Hex(material).substr(0, 32));
}

}  // namespace kasm::license
