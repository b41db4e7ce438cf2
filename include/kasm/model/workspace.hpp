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

namespace kasm {

enum class WorkspaceType { kContainer, kServer, kServerPool, kLink };
enum class CpuAllocationMethod { kInherit, kQuotas, kShares };
// How the session's port speaks: plain HTTP(S) (a web VNC client inside the image, or any web app),
// or raw VNC (RFB) that our proxy bridges to WebSocket.
enum class SessionProtocol { kHttp, kHttps, kVnc, kRdp, kSsh };
enum class VolumeMode { kReadWrite, kReadOnly };

}  // namespace kasm

KASM_ENUM_NAMES(kasm::WorkspaceType, 4, {kasm::WorkspaceType::kContainer, "container"},
                {kasm::WorkspaceType::kServer, "server"}, {kasm::WorkspaceType::kServerPool, "server_pool"},
                {kasm::WorkspaceType::kLink, "link"});
KASM_ENUM_NAMES(kasm::CpuAllocationMethod, 3, {kasm::CpuAllocationMethod::kInherit, "inherit"},
                {kasm::CpuAllocationMethod::kQuotas, "quotas"}, {kasm::CpuAllocationMethod::kShares, "shares"});
KASM_ENUM_NAMES(kasm::SessionProtocol, 5, {kasm::SessionProtocol::kHttp, "http"},
                {kasm::SessionProtocol::kHttps, "https"}, {kasm::SessionProtocol::kVnc, "vnc"},
                {kasm::SessionProtocol::kRdp, "rdp"}, {kasm::SessionProtocol::kSsh, "ssh"});
KASM_ENUM_NAMES(kasm::VolumeMode, 2, {kasm::VolumeMode::kReadWrite, "rw"}, {kasm::VolumeMode::kReadOnly, "ro"});

namespace kasm {

// One command run inside a session container at a lifecycle point.
struct ExecHook {
  std::string cmd;   // Shell command line; empty = no hook.
  std::string user;  // Container user; empty = image default.
  bool privileged = false;
  std::string workdir;
  std::map<std::string, std::string> environment;

  friend bool operator==(const ExecHook&, const ExecHook&) = default;
};

// Kasm's exec config: commands run when a session first starts (first_launch), when a user opens a
// link into a running session (go), and when a staged session is assigned to a user (assign).
struct ExecConfig {
  ExecHook first_launch;
  ExecHook go;
  ExecHook assign;

  friend bool operator==(const ExecConfig&, const ExecConfig&) = default;
};

// A host path (or named volume) mounted into the session container.
struct VolumeMapping {
  std::string source;  // Absolute host path, or a named volume ([A-Za-z0-9_.-]).
  std::string target;  // Absolute path in the container.
  VolumeMode mode = VolumeMode::kReadWrite;
  std::optional<std::int32_t> uid;  // Owner to create the host directory with, when missing.
  std::optional<std::int32_t> gid;

  friend bool operator==(const VolumeMapping&, const VolumeMapping&) = default;
};

// What a user can launch: a container image, a fixed server, a server pool, or a plain link.
struct Workspace {
  WorkspaceId id;
  WorkspaceType type = WorkspaceType::kContainer;
  bool enabled = true;

  // Presentation.
  std::string friendly_name;
  std::string description;
  std::vector<std::string> categories;
  std::string thumbnail_url;

  // Container workspaces.
  std::string image;    // Docker image reference, e.g. "kasm/desktop:1.0".
  Resources resources;  // Cores (millicores), memory and GPUs per session.
  CpuAllocationMethod cpu_allocation = CpuAllocationMethod::kInherit;
  std::string run_config_json;  // Docker create-body override, a JSON object or empty.
  ExecConfig exec_config;
  std::vector<VolumeMapping> volumes;
  std::uint16_t port = 6901;  // The port the session serves inside the container.
  SessionProtocol protocol = SessionProtocol::kHttps;
  std::string path;  // URL path of the session page, e.g. "/vnc.html".

  // Kasm's persistent profile: where the user's home directory lives between sessions, mounted at
  // the image's home (persistent_profile_target) when the user's group allows_persistent_profile.
  // An absolute host path on the agent, or a Docker volume name, with the placeholders {username},
  // {user_id} and {image_id} (made safe as one path segment each): "/mnt/profiles/{username}/{image_id}".
  // Empty: no profile.
  std::string persistent_profile_path;
  std::string persistent_profile_target = "/home/kasm-user";

  // Placement restrictions.
  std::optional<ZoneId> restrict_to_zone;
  std::optional<AgentId> restrict_to_agent;           // Kasm calls this "restrict to server".
  std::string restrict_to_network;                    // Docker network the container must join.
  std::map<std::string, std::string> include_labels;  // Agent must carry all of these.
  std::map<std::string, std::string> exclude_labels;  // Agent must carry none of these.

  // Server / server pool / link workspaces.
  std::optional<ServerId> server_id;
  std::optional<ServerPoolId> server_pool_id;
  std::string link_url;

  // Session lifetime: a hard cap on the session's age; nullopt = the group's setting applies.
  std::optional<Duration> session_time_limit;

  // Who may launch it (Kasm's group assignment): members of any of these groups. Holders of
  // workspaces:manage launch any workspace; with no group, nobody else does.
  std::vector<GroupId> group_ids;

  TimePoint created_at;
  TimePoint updated_at;

  // The profile of `username` / `user_id` on this workspace: persistent_profile_path with its
  // placeholders filled in. Every value is reduced to one safe path segment ([A-Za-z0-9._@-], never
  // "." or ".."), so no user name can lead the path out of its directory. Empty when there is none.
  std::string profileFor(std::string_view username, std::string_view user_id) const;

  // Checks every field; the first problem is returned as InvalidArgument naming the field
  // ("workspace.resources.memory_bytes: ...").
  Result<void> validate() const;

  friend bool operator==(const Workspace&, const Workspace&) = default;
};

}  // namespace kasm
