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
#include "kasm/model/agent.hpp"
#include "kasm/model/workspace.hpp"

namespace kasm {

enum class ServerPoolType { kServers, kAutoscaledVms };

}  // namespace kasm

KASM_ENUM_NAMES(kasm::ServerPoolType, 2, {kasm::ServerPoolType::kServers, "servers"},
                {kasm::ServerPoolType::kAutoscaledVms, "autoscaled_vms"});

namespace kasm {

// How a fixed server is reached. KasmVNC servers speak HTTPS with their own web client; VNC is
// RFB, bridged by the proxy; RDP and SSH go through a desktop gateway (spi/desktop_gateway.hpp).
enum class ServerConnectionType { kKasmVnc, kRdp, kVnc, kSsh };
// What the last connection checks said (ServerMonitor): kRunning answers; kMissing stopped
// answering a moment ago; kDead has not answered for a long time. kUnknown: never checked.
enum class ServerStatus { kUnknown, kRunning, kMissing, kDead };
// RDP security negotiation (FreeRDP's): any (the server picks), nla, tls or rdp.
enum class RdpSecurity { kAny, kNla, kTls, kRdp };
// How a server's identity (RDP certificate, SSH host key) is checked: pinned on first use and a
// changed one refused, or (RDP only) not checked.
enum class CertificatePolicy { kPin, kIgnore };

}  // namespace kasm

KASM_ENUM_NAMES(kasm::ServerConnectionType, 4, {kasm::ServerConnectionType::kKasmVnc, "kasmvnc"},
                {kasm::ServerConnectionType::kRdp, "rdp"}, {kasm::ServerConnectionType::kVnc, "vnc"},
                {kasm::ServerConnectionType::kSsh, "ssh"});
KASM_ENUM_NAMES(kasm::ServerStatus, 4, {kasm::ServerStatus::kUnknown, "unknown"},
                {kasm::ServerStatus::kRunning, "running"}, {kasm::ServerStatus::kMissing, "missing"},
                {kasm::ServerStatus::kDead, "dead"});
KASM_ENUM_NAMES(kasm::RdpSecurity, 4, {kasm::RdpSecurity::kAny, "any"}, {kasm::RdpSecurity::kNla, "nla"},
                {kasm::RdpSecurity::kTls, "tls"}, {kasm::RdpSecurity::kRdp, "rdp"});
KASM_ENUM_NAMES(kasm::CertificatePolicy, 2, {kasm::CertificatePolicy::kPin, "pin"},
                {kasm::CertificatePolicy::kIgnore, "ignore"});

namespace kasm {

// One session a server is serving: kept on the server's row and changed with compare-and-set in
// the same write as the session, so managers sharing a store never put more sessions on a server
// than its limit, nor one user twice.
struct ServerSlot {
  SessionId session_id;
  UserId user_id;

  friend bool operator==(const ServerSlot&, const ServerSlot&) = default;
};

// A fixed RDP/VNC/SSH/KasmVNC host that sessions connect to instead of a container.
struct Server {
  ServerId id;
  std::string friendly_name;
  std::string hostname;
  std::uint16_t port = 3389;
  ServerConnectionType connection_type = ServerConnectionType::kRdp;
  ZoneId zone_id;
  std::optional<ServerPoolId> pool_id;
  bool enabled = true;  // A disabled server takes no new session; running ones go on (it drains).
  std::int32_t max_simultaneous_sessions = 1;
  // Credentials (Kasm's three modes): static; "{sso_username}" in the user name stands for the
  // launching user's name; a blank user name and password ask the user at launch. Secrets are
  // sealed (AES-256-GCM under a key derived from the installation's key) and never leave the
  // server through any API: they are written as connection_password / connection_private_key.
  std::string connection_username;
  std::string connection_domain;  // RDP.
  std::string connection_password_sealed;
  std::string connection_private_key_sealed;  // SSH.
  RdpSecurity rdp_security = RdpSecurity::kAny;
  CertificatePolicy certificate_policy = CertificatePolicy::kPin;
  std::string keyboard_layout = "en-us";   // RDP.
  std::optional<UserId> assigned_user_id;  // Kasm's assign_user_server: only this user is placed here.

  std::vector<ServerSlot> slots;  // Sessions on it now (see ServerSlot).
  ServerStatus status = ServerStatus::kUnknown;
  std::string status_reason;  // Why, from the last check ("connection refused").
  std::optional<TimePoint> last_checked_at;
  std::optional<TimePoint> last_seen_at;  // Last check it answered.
  TimePoint created_at;

  // The protocol the proxy speaks to it (kHttps for KasmVNC).
  SessionProtocol protocol() const noexcept;
  // True when a blank user name and password mean "ask the user".
  bool promptsForCredentials() const noexcept {
    return connection_username.empty() && connection_password_sealed.empty() && connection_private_key_sealed.empty();
  }
  const ServerSlot* slotOf(const UserId& user) const noexcept {
    for (const auto& s : slots)
      if (s.user_id == user) return &s;
    return nullptr;
  }

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
// Which session holds a persistent profile (profile_lock.<hash> -> session id).
inline constexpr std::string_view kProfileLockPrefix = "profile_lock.";
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
