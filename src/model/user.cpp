#include "kasm/model/user.hpp"

#include <array>

#include "model/validation.hpp"

namespace kasm {

namespace {
constexpr std::array<std::string_view, 7> kAllButAdmin{permissions::kUsersManage,    permissions::kWorkspacesManage,
                                                       permissions::kAgentsManage,   permissions::kSessionsManage,
                                                       permissions::kSessionsLaunch, permissions::kSettingsManage,
                                                       permissions::kLicensesManage};
}  // namespace

bool permissions::isKnown(std::string_view name) noexcept {
  if (name == kAdmin) return true;
  for (auto p : kAllButAdmin) {
    if (p == name) return true;
  }
  return false;
}

std::span<const std::string_view> permissions::all() noexcept {
  return kAllButAdmin;
}

bool permissions::grants(const std::set<std::string>& held, std::string_view wanted) noexcept {
  if (wanted.empty()) return true;
  for (const auto& h : held) {
    if (h == kAdmin || h == wanted) return true;
  }
  return false;
}

bool permissions::coversAdministrative(const std::set<std::string>& held,
                                       const std::set<std::string>& wanted) noexcept {
  for (const auto& w : wanted) {
    if (w != kSessionsLaunch && !grants(held, w)) return false;
  }
  return true;
}

namespace {
Result<void> validatePermissions(const std::set<std::string>& perms, std::string_view field) {
  for (const auto& p : perms) {
    if (!permissions::isKnown(p)) {
      return invalidArgument(std::string(field) + ": unknown permission '" + p.substr(0, 80) + "'");
    }
  }
  return {};
}
}  // namespace

Result<void> GroupSettings::validate() const {
  if (max_sessions_per_user < 0) return invalidArgument("group.settings.max_sessions_per_user must not be negative");
  if (keepalive_expiration.count() <= 0) return invalidArgument("group.settings.keepalive_expiration must be positive");
  if (session_time_limit && session_time_limit->count() <= 0) {
    return invalidArgument("group.settings.session_time_limit must be positive");
  }
  if (idle_disconnect && idle_disconnect->count() <= 0)
    return invalidArgument("group.settings.idle_disconnect must be positive");
  if (file_transfer_limit_mb < 1 || file_transfer_limit_mb > 1024) {
    return invalidArgument("group.settings.file_transfer_limit_mb must be between 1 and 1024");
  }
  if (default_workspace)
    KASM_RETURN_IF_ERROR(detail::requireId(default_workspace->str(), "group.settings.default_workspace"));
  return {};
}

Result<void> Group::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "group.id"));
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(name, "group.name"));
  KASM_RETURN_IF_ERROR(detail::requireText(name, "group.name", 256));
  KASM_RETURN_IF_ERROR(detail::requireText(description, "group.description", 4096));
  KASM_RETURN_IF_ERROR(validatePermissions(permissions, "group.permissions"));
  return settings.validate();
}

Result<void> User::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "user.id"));
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(username, "user.username"));
  KASM_RETURN_IF_ERROR(detail::requireText(username, "user.username", 255));
  for (char c : username) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
      return invalidArgument("user.username must not contain whitespace");
  }
  KASM_RETURN_IF_ERROR(detail::requireText(first_name, "user.first_name", 255));
  KASM_RETURN_IF_ERROR(detail::requireText(last_name, "user.last_name", 255));
  KASM_RETURN_IF_ERROR(detail::requireText(email, "user.email", 320));
  if (!email.empty() && email.find('@') == std::string::npos) return invalidArgument("user.email must contain '@'");
  KASM_RETURN_IF_ERROR(detail::requireText(organization, "user.organization", 255));
  KASM_RETURN_IF_ERROR(detail::requireText(phone, "user.phone", 64));
  if (!password_hash.empty() && password_hash.front() != '$') {
    return invalidArgument("user.password_hash must be a PHC-format hash, never a clear password");
  }
  for (const auto& g : group_ids) KASM_RETURN_IF_ERROR(detail::requireId(g.str(), "user.group_ids"));
  return validateAttributes(attributes);
}

Result<void> validateAttributes(const UserAttributes& a) {
  KASM_RETURN_IF_ERROR(detail::requireText(a.ssh_public_key, "attributes.ssh_public_key", 16384));
  if (a.ssh_public_key.find('\n') != std::string::npos)
    return invalidArgument("attributes.ssh_public_key must be one line (one OpenSSH public key)");
  if (a.default_image) KASM_RETURN_IF_ERROR(detail::requireId(a.default_image->str(), "attributes.default_image"));
  KASM_RETURN_IF_ERROR(validateLanguageTag(a.preferred_language, "attributes.preferred_language"));
  return validateTimeZoneName(a.preferred_timezone, "attributes.preferred_timezone");
}

Result<void> validateLanguageTag(std::string_view tag, std::string_view field) {
  // BCP 47 in practice: letters, digits, '-' and '_' ("en-US", "pt_BR", "zh-Hant-TW").
  if (tag.size() > 35) return invalidArgument(std::string(field) + " is longer than 35 characters");
  for (char c : tag) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return invalidArgument(std::string(field) + " must be a language tag such as en-US");
  }
  return {};
}

Result<void> validateTimeZoneName(std::string_view zone, std::string_view field) {
  // IANA names ("Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT+5"); never a path that
  // could leave the zoneinfo directory.
  if (zone.size() > 64) return invalidArgument(std::string(field) + " is longer than 64 characters");
  if (zone.find("..") != std::string_view::npos || (!zone.empty() && zone.front() == '/'))
    return invalidArgument(std::string(field) + " must be a time zone name such as Europe/Paris");
  for (char c : zone) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
                    c == '_' || c == '-' || c == '+';
    if (!ok) return invalidArgument(std::string(field) + " must be a time zone name such as Europe/Paris");
  }
  return {};
}

Result<void> ApiKey::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "api_key.id"));
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(name, "api_key.name"));
  KASM_RETURN_IF_ERROR(detail::requireText(name, "api_key.name", 256));
  KASM_RETURN_IF_ERROR(detail::requireId(key, "api_key.key"));
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(secret_hash, "api_key.secret_hash"));
  if (secret_hash.front() != '$') return invalidArgument("api_key.secret_hash must be a hash, never the secret");
  if (owner) KASM_RETURN_IF_ERROR(detail::requireId(owner->str(), "api_key.owner"));
  return validatePermissions(permissions, "api_key.permissions");
}

}  // namespace kasm
