#include "kasm/store/repository.hpp"

namespace kasm {
namespace {
std::string opt(const auto& maybe_id) {
  return maybe_id ? maybe_id->str() : std::string();
}
}  // namespace

std::string EntityTraits<Workspace>::id(const Workspace& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<Workspace>::columns(const Workspace& v) {
  return {{"enabled", v.enabled ? "1" : "0"}, {"image", v.image}};
}
std::string EntityTraits<Zone>::id(const Zone& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<Zone>::columns(const Zone& v) {
  return {{"name", v.name}};
}
std::string EntityTraits<Agent>::id(const Agent& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<Agent>::columns(const Agent& v) {
  return {{"zone_id", v.zone_id.str()}, {"status", std::string(enumName(v.status))}};
}
std::string EntityTraits<Session>::id(const Session& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<Session>::columns(const Session& v) {
  return {{"user_id", v.user_id.str()},
          {"agent_id", opt(v.agent_id)},
          {"server_id", opt(v.server_id)},
          {"workspace_id", v.workspace_id.str()},
          {"state", std::string(enumName(v.state))},
          {"staging_config_id", opt(v.staging_config_id)},
          {"launch_key", v.launch_key}};
}
std::string EntityTraits<User>::id(const User& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<User>::columns(const User& v) {
  return {{"username", v.username}};
}
std::string EntityTraits<Group>::id(const Group& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<Group>::columns(const Group& v) {
  return {{"name", v.name}};
}
std::string EntityTraits<ApiKey>::id(const ApiKey& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<ApiKey>::columns(const ApiKey& v) {
  return {{"key", v.key}, {"owner", opt(v.owner)}};
}
std::string EntityTraits<Server>::id(const Server& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<Server>::columns(const Server& v) {
  return {{"zone_id", v.zone_id.str()}, {"pool_id", opt(v.pool_id)}};
}
std::string EntityTraits<ServerPool>::id(const ServerPool& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<ServerPool>::columns(const ServerPool&) {
  return {};
}
std::string EntityTraits<StagingConfig>::id(const StagingConfig& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<StagingConfig>::columns(const StagingConfig& v) {
  return {{"workspace_id", v.workspace_id.str()}, {"zone_id", v.zone_id.str()}};
}
std::string EntityTraits<AutoscaleConfig>::id(const AutoscaleConfig& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<AutoscaleConfig>::columns(const AutoscaleConfig& v) {
  return {{"zone_id", v.zone_id.str()}};
}
std::string EntityTraits<AutoscaleVm>::id(const AutoscaleVm& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<AutoscaleVm>::columns(const AutoscaleVm& v) {
  return {{"config_id", v.config_id.str()}, {"zone_id", v.zone_id.str()}};
}
std::string EntityTraits<AutoscaleDecision>::id(const AutoscaleDecision& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<AutoscaleDecision>::columns(const AutoscaleDecision& v) {
  return {{"config_id", v.config_id.str()}};
}
std::string EntityTraits<ManagerNode>::id(const ManagerNode& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<ManagerNode>::columns(const ManagerNode&) {
  return {};
}
std::string EntityTraits<Lease>::id(const Lease& v) {
  return v.name;
}
std::map<std::string, std::string> EntityTraits<Lease>::columns(const Lease&) {
  return {};
}
std::string EntityTraits<AgentCommandRow>::id(const AgentCommandRow& v) {
  return v.id;
}
std::map<std::string, std::string> EntityTraits<AgentCommandRow>::columns(const AgentCommandRow& v) {
  return {{"agent_id", v.agent_id.str()}, {"state", v.state}, {"issuer", v.issuer.str()}};
}
std::string EntityTraits<LicenseRecord>::id(const LicenseRecord& v) {
  return v.id.str();
}
std::map<std::string, std::string> EntityTraits<LicenseRecord>::columns(const LicenseRecord&) {
  return {};
}
std::string EntityTraits<Setting>::id(const Setting& v) {
  return v.key;
}
std::map<std::string, std::string> EntityTraits<Setting>::columns(const Setting&) {
  return {};
}
std::string EntityTraits<ShareIndex>::id(const ShareIndex& v) {
  return v.lookup;
}
std::map<std::string, std::string> EntityTraits<ShareIndex>::columns(const ShareIndex& v) {
  return {{"session_id", v.session_id.str()}};
}

}  // namespace kasm
