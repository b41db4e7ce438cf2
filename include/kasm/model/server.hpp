#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/enum_names.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/resources.hpp"
#include "kasm/core/result.hpp"
#include "kasm/model/workspace.hpp"

namespace kasm {

enum class ServerPoolType { kServers, kAutoscaledVms };

}  // namespace kasm

KASM_ENUM_NAMES(kasm::ServerPoolType, 2, {kasm::ServerPoolType::kServers, "servers"},
                {kasm::ServerPoolType::kAutoscaledVms, "autoscaled_vms"});

namespace kasm {

// A fixed RDP/VNC/SSH host that sessions connect to instead of a container.
struct Server {
  ServerId id;
  std::string friendly_name;
  std::string hostname;
  std::uint16_t port = 3389;
  SessionProtocol protocol = SessionProtocol::kRdp;
  ZoneId zone_id;
  std::optional<ServerPoolId> pool_id;
  std::string connection_username;    // May contain {username} to pass the user's name through.
  std::string connection_secret_ref;  // A reference to a secret, never the password in clear.
  std::int32_t max_simultaneous_sessions = 1;
  bool enabled = true;
  TimePoint created_at;

  Result<void> validate() const;
  friend bool operator==(const Server&, const Server&) = default;
};

struct ServerPool {
  ServerPoolId id;
  std::string name;
  ServerPoolType type = ServerPoolType::kServers;
  TimePoint created_at;

  Result<void> validate() const;
  friend bool operator==(const ServerPool&, const ServerPool&) = default;
};

// Keeps `desired` pre-started sessions of a workspace in a zone, ready to be claimed.
struct StagingConfig {
  StagingConfigId id;
  WorkspaceId workspace_id;
  ZoneId zone_id;
  std::int32_t desired = 1;
  Duration expiration = std::chrono::hours(1);  // Unclaimed staged sessions older than this are replaced.
  bool enabled = true;
  TimePoint created_at;

  Result<void> validate() const;
  friend bool operator==(const StagingConfig&, const StagingConfig&) = default;
};

// Adds and removes agent VMs in a zone through a provider plugin (see spi/vm_provider.hpp).
struct AutoscaleConfig {
  AutoscaleConfigId id;
  std::string name;
  ZoneId zone_id;
  bool enabled = true;
  std::string provider;              // Registered provider name, e.g. "aws", "test".
  std::string provider_config_json;  // Provider-specific settings, a JSON object.
  std::int32_t min_agents = 0;
  std::int32_t max_agents = 10;
  Resources standby;  // Free capacity to keep available in the zone.
  std::map<std::string, std::string> agent_labels;
  Duration downscale_backoff = std::chrono::minutes(10);
  TimePoint created_at;

  Result<void> validate() const;
  friend bool operator==(const AutoscaleConfig&, const AutoscaleConfig&) = default;
};

enum class LicenseType { kConcurrentSessions, kNamedUsers };

}  // namespace kasm

KASM_ENUM_NAMES(kasm::LicenseType, 2, {kasm::LicenseType::kConcurrentSessions, "concurrent_sessions"},
                {kasm::LicenseType::kNamedUsers, "named_users"});

namespace kasm {

// A license as stored: the armoured text as pasted (the source of truth, re-verified on load) and
// the fields parsed from it for listing.
struct LicenseRecord {
  LicenseId id;
  std::string armored;
  std::string customer;
  std::string installation_id;
  LicenseType type = LicenseType::kConcurrentSessions;
  std::int64_t limit = 0;
  std::vector<std::string> features;
  TimePoint not_before;
  TimePoint expires_at;
  TimePoint added_at;

  Result<void> validate() const;
  friend bool operator==(const LicenseRecord&, const LicenseRecord&) = default;
};

// One installation-wide setting (installation id, default zone, ...), stored as a string value.
struct Setting {
  std::string key;
  std::string value;
  TimePoint updated_at;

  Result<void> validate() const;
  friend bool operator==(const Setting&, const Setting&) = default;
};

namespace settings {
inline constexpr std::string_view kInstallationId = "installation_id";
inline constexpr std::string_view kDefaultZone = "default_zone";
inline constexpr std::string_view kLastSeenTime = "last_seen_time";
inline constexpr std::string_view kLocalAgentId = "local_agent_id";
// Licence usage counters (license_sessions_in_use, license_user_*, license_users_*).
inline constexpr std::string_view kLicensePrefix = "license_";
// True for a key that holds a secret (signing keys, passwords): never shown, never written
// through an API.
bool isSecret(std::string_view key) noexcept;
// True for state the server keeps in the settings table for itself: secrets, the installation id
// (which licences are bound to), the clock-rollback guard and licence usage counters. Such rows
// are written only by the server, never through settings:manage (moving a licence, resetting the
// concurrency count or defeating the rollback guard would otherwise be one PUT away).
bool isServerManaged(std::string_view key) noexcept;
}  // namespace settings

}  // namespace kasm
