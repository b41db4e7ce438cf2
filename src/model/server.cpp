#include "kasm/model/server.hpp"

#include <cctype>

#include "model/json_util.hpp"
#include "model/validation.hpp"

namespace kasm {

SessionProtocol Server::protocol() const noexcept {
  switch (connection_type) {
    case ServerConnectionType::kKasmVnc: return SessionProtocol::kHttps;
    case ServerConnectionType::kVnc: return SessionProtocol::kVnc;
    case ServerConnectionType::kSsh: return SessionProtocol::kSsh;
    case ServerConnectionType::kRdp: break;
  }
  return SessionProtocol::kRdp;
}

Result<void> Server::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "server.id"));
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(friendly_name, "server.friendly_name"));
  KASM_RETURN_IF_ERROR(detail::requireText(friendly_name, "server.friendly_name", 256));
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(hostname, "server.hostname"));
  KASM_RETURN_IF_ERROR(detail::requireText(hostname, "server.hostname", 253));
  // A host name or address only: no scheme, path, user or spaces (it becomes "host:port").
  for (char c : hostname) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_' || c == '[' ||
          c == ']')) {
      return invalidArgument("server.hostname must be a host name or an address");
    }
  }
  if (port == 0) return invalidArgument("server.port must be 1-65535");
  KASM_RETURN_IF_ERROR(detail::requireId(zone_id.str(), "server.zone_id"));
  if (pool_id) KASM_RETURN_IF_ERROR(detail::requireId(pool_id->str(), "server.pool_id"));
  if (max_simultaneous_sessions < 1 || max_simultaneous_sessions > 10000)
    return invalidArgument("server.max_simultaneous_sessions must be 1-10000");
  KASM_RETURN_IF_ERROR(detail::requireText(connection_username, "server.connection_username", 256));
  KASM_RETURN_IF_ERROR(detail::requireText(connection_domain, "server.connection_domain", 256));
  KASM_RETURN_IF_ERROR(detail::requireText(keyboard_layout, "server.keyboard_layout", 32));
  if (connection_type == ServerConnectionType::kSsh && certificate_policy == CertificatePolicy::kIgnore)
    return invalidArgument("server.certificate_policy: SSH host keys are always pinned");
  if (!connection_private_key_sealed.empty() && connection_type != ServerConnectionType::kSsh)
    return invalidArgument("server.connection_private_key is for SSH servers only");
  return {};
}

Result<void> ServerPool::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "server_pool.id"));
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(name, "server_pool.name"));
  return detail::requireText(name, "server_pool.name", 256);
}

Result<void> StagingConfig::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "staging_config.id"));
  KASM_RETURN_IF_ERROR(detail::requireId(workspace_id.str(), "staging_config.workspace_id"));
  KASM_RETURN_IF_ERROR(detail::requireId(zone_id.str(), "staging_config.zone_id"));
  if (desired < 0 || desired > 10000) return invalidArgument("staging_config.desired must be 0-10000");
  if (expiration.count() <= 0) return invalidArgument("staging_config.expiration must be positive");
  return {};
}

Result<void> LicenseRecord::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "license.id"));
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(armored, "license.armored"));
  if (limit < 0) return invalidArgument("license.limit must not be negative");
  if (expires_at < not_before) return invalidArgument("license.expires_at must not be before not_before");
  return {};
}

Result<void> Setting::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(key, "setting.key"));
  return detail::requireText(value, "setting.value", 1024 * 1024);
}

bool settings::isSecret(std::string_view key) noexcept {
  for (std::string_view word : {"key", "secret", "password", "token"}) {
    if (key.find(word) != std::string_view::npos) return true;
  }
  return false;
}

bool settings::isServerManaged(std::string_view key) noexcept {
  return isSecret(key) || key == kInstallationId || key == kLastSeenTime || key == kLocalAgentId ||
         key.starts_with(kLicensePrefix) || key.starts_with(kProfileLockPrefix);
}

}  // namespace kasm
