#include "kasm/license/text.hpp"

#include "kasm/core/enum_names.hpp"
#include "license/armor.hpp"

namespace kasm::license {
namespace {

constexpr std::size_t kSignatureSize = 64;
constexpr std::size_t kMaxText = 64 * 1024;

constexpr std::string_view kLicenseVersionKey = "kasm-license-version";
constexpr std::string_view kActivationVersionKey = "kasm-activation-key-version";

const std::vector<std::string_view>& licenseKeys() {
  static const std::vector<std::string_view> keys{
      kLicenseVersionKey, "id",        "activation-id", "customer",   "installation-id",    "type", "limit",
      "features",         "issued-at", "not-before",    "expires-at", "renewal-ttl-seconds"};
  return keys;
}

const std::vector<std::string_view>& activationKeys() {
  static const std::vector<std::string_view> keys{
      kActivationVersionKey, "id",         "customer",           "type", "limit", "features", "issued-at",
      "not-before",          "expires-at", "renewal-ttl-seconds"};
  return keys;
}

std::string joinFeatures(const std::set<std::string>& feats) {
  std::string out;
  for (const auto& f : feats) {
    if (!out.empty()) out += ',';
    out += f;
  }
  return out;
}

std::string seconds(Duration d) {
  return std::to_string(d.count() / 1000);
}

// The message the signature covers: the armour label binds the kind, so an activation key can never
// be passed off as a licence even though both come from the same signing key.
std::string signedMessage(std::string_view label, std::string_view payload) {
  return std::string(label) + "\n" + std::string(payload);
}

Result<std::int64_t> parseCount(std::string_view s, std::string_view field) {
  if (s.empty() || s.size() > 18) return invalidArgument(std::string(field) + ": not a number");
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return invalidArgument(std::string(field) + ": not a number");
    v = v * 10 + (c - '0');
  }
  return v;
}

Result<std::set<std::string>> parseFeatures(std::string_view s) {
  std::set<std::string> out;
  if (s.empty()) return out;
  for (std::size_t pos = 0;;) {
    const auto comma = s.find(',', pos);
    const auto name = s.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    if (!isValidFeatureName(name))
      return invalidArgument("features: '" + std::string(name.substr(0, 40)) + "' is not a feature name");
    out.insert(std::string(name));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

Result<LicenseType> parseType(std::string_view s) {
  auto t = enumFromName<LicenseType>(s);
  if (!t)
    return invalidArgument("type: '" + std::string(s.substr(0, 40)) + "' is not one of " + enumChoices<LicenseType>());
  return *t;
}

Result<std::string> sign(std::string_view label, const std::string& payload, const SigningKey& key) {
  KASM_ASSIGN_OR_RETURN(std::string sig, key.sign(signedMessage(label, payload)));
  return detail::armor(label, payload + sig);
}

// Dearmours, verifies and checks the version line; returns the payload.
Result<std::string> openSigned(std::string_view text, std::string_view label, std::string_view what,
                               std::string_view version_key, std::span<const VerifyingKey> keys) {
  if (text.size() > kMaxText) return invalidArgument("the " + std::string(what) + " is far too long to be one");
  KASM_ASSIGN_OR_RETURN(std::string bytes, detail::dearmor(text, label, what));
  if (bytes.size() <= kSignatureSize) {
    return invalidArgument("the " + std::string(what) + " is damaged: it is too short to hold a signature");
  }
  const std::string_view payload(bytes.data(), bytes.size() - kSignatureSize);
  const std::string_view sig(bytes.data() + payload.size(), kSignatureSize);
  if (keys.empty()) {
    return unauthenticated("no license verifying key is configured, so no " + std::string(what) + " can be accepted");
  }
  const std::string message = signedMessage(label, payload);
  bool verified = false;
  for (const auto& k : keys) verified = verified || k.verify(message, sig);
  if (!verified) {
    return unauthenticated("the " + std::string(what) +
                           " signature is not valid: the text was changed, or it was signed by another vendor's key");
  }
  // Signed by a trusted key: a version we do not read is the only expected way to fail from here.
  const std::string prefix = std::string(version_key) + ": ";
  const auto nl = payload.find('\n');
  if (!payload.starts_with(prefix) || nl == std::string_view::npos) {
    return invalidArgument("the " + std::string(what) + " content does not start with its format version");
  }
  const auto version = payload.substr(prefix.size(), nl - prefix.size());
  if (version != std::to_string(kFormatVersion)) {
    return failedPrecondition("the " + std::string(what) + " has format version " + std::string(version.substr(0, 20)) +
                              ", and this build reads only version " + std::to_string(kFormatVersion) +
                              "; update the software or ask for a version " + std::to_string(kFormatVersion) + " " +
                              std::string(what));
  }
  return std::string(payload);
}

std::string licensePayload(const LicenseDocument& d) {
  return detail::writeFields({{std::string(kLicenseVersionKey), std::to_string(d.format_version)},
                              {"id", d.id.str()},
                              {"activation-id", d.activation_id},
                              {"customer", d.customer},
                              {"installation-id", d.installation_id},
                              {"type", std::string(enumName(d.type))},
                              {"limit", std::to_string(d.limit)},
                              {"features", joinFeatures(d.features)},
                              {"issued-at", detail::formatTime(d.issued_at)},
                              {"not-before", detail::formatTime(d.not_before)},
                              {"expires-at", detail::formatTime(d.expires_at)},
                              {"renewal-ttl-seconds", seconds(d.renewal_ttl)}});
}

std::string activationPayload(const ActivationKey& a) {
  return detail::writeFields({{std::string(kActivationVersionKey), std::to_string(a.format_version)},
                              {"id", a.id},
                              {"customer", a.customer},
                              {"type", std::string(enumName(a.type))},
                              {"limit", std::to_string(a.limit)},
                              {"features", joinFeatures(a.features)},
                              {"issued-at", detail::formatTime(a.issued_at)},
                              {"not-before", detail::formatTime(a.not_before)},
                              {"expires-at", detail::formatTime(a.expires_at)},
                              {"renewal-ttl-seconds", seconds(a.renewal_ttl)}});
}

Error contentError(std::string_view what, const Error& e) {
  return invalidArgument("the " + std::string(what) + " content is not valid: " + e.message());
}

}  // namespace

Result<std::string> writeLicense(const LicenseDocument& doc, const SigningKey& key) {
  KASM_RETURN_IF_ERROR(doc.validate());
  return sign(kLicenseLabel, licensePayload(doc), key);
}

Result<std::string> writeActivationKey(const ActivationKey& key_doc, const SigningKey& key) {
  KASM_RETURN_IF_ERROR(key_doc.validate());
  return sign(kActivationKeyLabel, activationPayload(key_doc), key);
}

Result<LicenseDocument> readLicense(std::string_view text, std::span<const VerifyingKey> keys) {
  constexpr std::string_view what = "license";
  KASM_ASSIGN_OR_RETURN(std::string payload, openSigned(text, kLicenseLabel, what, kLicenseVersionKey, keys));
  KASM_ASSIGN_OR_RETURN(auto f, detail::readFields(payload, licenseKeys(), what));
  LicenseDocument d;
  d.format_version = kFormatVersion;
  d.id = LicenseId(f[1].second);
  d.activation_id = f[2].second;
  d.customer = f[3].second;
  d.installation_id = f[4].second;
  auto type = parseType(f[5].second);
  auto limit = parseCount(f[6].second, "limit");
  auto feats = parseFeatures(f[7].second);
  auto issued = detail::parseTime(f[8].second, "issued-at");
  auto not_before = detail::parseTime(f[9].second, "not-before");
  auto expires = detail::parseTime(f[10].second, "expires-at");
  auto ttl = parseCount(f[11].second, "renewal-ttl-seconds");
  for (const Error* e : {type.ok() ? nullptr : &type.error(), limit.ok() ? nullptr : &limit.error(),
                         feats.ok() ? nullptr : &feats.error(), issued.ok() ? nullptr : &issued.error(),
                         not_before.ok() ? nullptr : &not_before.error(), expires.ok() ? nullptr : &expires.error(),
                         ttl.ok() ? nullptr : &ttl.error()}) {
    if (e) return contentError(what, *e);
  }
  d.type = *type;
  d.limit = *limit;
  d.features = *feats;
  d.issued_at = *issued;
  d.not_before = *not_before;
  d.expires_at = *expires;
  d.renewal_ttl = std::chrono::seconds(*ttl);
  if (auto v = d.validate(); !v.ok()) return contentError(what, v.error());
  if (licensePayload(d) != payload) return invalidArgument("the license content is not in canonical form");
  return d;
}

Result<ActivationKey> readActivationKey(std::string_view text, std::span<const VerifyingKey> keys) {
  constexpr std::string_view what = "activation key";
  KASM_ASSIGN_OR_RETURN(std::string payload, openSigned(text, kActivationKeyLabel, what, kActivationVersionKey, keys));
  KASM_ASSIGN_OR_RETURN(auto f, detail::readFields(payload, activationKeys(), what));
  ActivationKey a;
  a.id = f[1].second;
  a.customer = f[2].second;
  auto type = parseType(f[3].second);
  auto limit = parseCount(f[4].second, "limit");
  auto feats = parseFeatures(f[5].second);
  auto issued = detail::parseTime(f[6].second, "issued-at");
  auto not_before = detail::parseTime(f[7].second, "not-before");
  auto expires = detail::parseTime(f[8].second, "expires-at");
  auto ttl = parseCount(f[9].second, "renewal-ttl-seconds");
  for (const Error* e : {type.ok() ? nullptr : &type.error(), limit.ok() ? nullptr : &limit.error(),
                         feats.ok() ? nullptr : &feats.error(), issued.ok() ? nullptr : &issued.error(),
                         not_before.ok() ? nullptr : &not_before.error(), expires.ok() ? nullptr : &expires.error(),
                         ttl.ok() ? nullptr : &ttl.error()}) {
    if (e) return contentError(what, *e);
  }
  a.type = *type;
  a.limit = *limit;
  a.features = *feats;
  a.issued_at = *issued;
  a.not_before = *not_before;
  a.expires_at = *expires;
  a.renewal_ttl = std::chrono::seconds(*ttl);
  if (auto v = a.validate(); !v.ok()) return contentError(what, v.error());
  if (activationPayload(a) != payload) return invalidArgument("the activation key content is not in canonical form");
  return a;
}

Result<LicenseDocument> activate(const ActivationKey& key_doc, std::string_view installation_id, TimePoint now) {
  KASM_RETURN_IF_ERROR(key_doc.validate());
  if (!isValidIdString(installation_id)) {
    return invalidArgument("installation id: '" + std::string(installation_id.substr(0, 80)) +
                           "' is not a valid installation id");
  }
  now = detail::truncateToSeconds(now);
  if (now >= key_doc.expires_at) {
    return failedPrecondition("activation key " + key_doc.id + " expired on " + detail::formatTime(key_doc.expires_at) +
                              "; it can no longer be activated");
  }
  LicenseDocument d;
  d.id = licenseIdFor(key_doc.id, installation_id);
  d.activation_id = key_doc.id;
  d.customer = key_doc.customer;
  d.installation_id = std::string(installation_id);
  d.type = key_doc.type;
  d.limit = key_doc.limit;
  d.features = key_doc.features;
  d.issued_at = now;
  d.not_before = key_doc.not_before;
  d.expires_at = key_doc.expires_at;
  d.renewal_ttl = key_doc.renewal_ttl;
  KASM_RETURN_IF_ERROR(d.validate());
  return d;
}

std::string formatTime(TimePoint t) {
  return detail::formatTime(t);
}

}  // namespace kasm::license
