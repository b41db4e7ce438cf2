#include "kasm/spi/store.hpp"

namespace kasm::spi {

const std::vector<TableSchema>& allTableSchemas() {
  static const std::vector<TableSchema> kSchemas = {
      {Table::kWorkspaces, "workspaces", {"enabled", "image"}, {}},
      {Table::kZones, "zones", {"name"}, {"name"}},
      {Table::kAgents, "agents", {"zone_id", "status"}, {}},
      {Table::kSessions,
       "sessions",
       {"user_id", "agent_id", "workspace_id", "state", "staging_config_id", "server_id", "launch_key"},
       {"launch_key"}},
      {Table::kUsers, "users", {"username"}, {"username"}},
      {Table::kGroups, "groups_", {"name"}, {"name"}},
      {Table::kApiKeys, "api_keys", {"key", "owner"}, {"key"}},
      {Table::kServers, "servers", {"zone_id", "pool_id"}, {}},
      {Table::kServerPools, "server_pools", {}, {}},
      {Table::kStagingConfigs, "staging_configs", {"workspace_id", "zone_id"}, {}},
      {Table::kAutoscaleConfigs, "autoscale_configs", {"zone_id"}, {}},
      {Table::kLicenses, "licenses", {}, {}},
      {Table::kSettings, "settings", {}, {}},
      {Table::kShareIndex, "share_index", {"session_id"}, {}},
      {Table::kAutoscaleVms, "autoscale_vms", {"config_id", "zone_id"}, {}},
      {Table::kAutoscaleDecisions, "autoscale_decisions", {"config_id"}, {}},
      {Table::kManagers, "managers", {}, {}},
      {Table::kLeases, "leases", {}, {}},
      {Table::kAgentCommands, "agent_commands", {"agent_id", "state", "issuer"}, {}},
  };
  return kSchemas;
}

const TableSchema& tableSchema(Table table) {
  return allTableSchemas()[static_cast<std::size_t>(table)];
}

Result<std::int64_t> Store::insert(Table table, Record record) {
  Mutation m{Mutation::Kind::kInsert, table, std::move(record), true};
  KASM_ASSIGN_OR_RETURN(auto versions, apply(std::span<const Mutation>(&m, 1)));
  return versions.front();
}

Result<std::int64_t> Store::update(Table table, Record record) {
  Mutation m{Mutation::Kind::kUpdate, table, std::move(record), true};
  KASM_ASSIGN_OR_RETURN(auto versions, apply(std::span<const Mutation>(&m, 1)));
  return versions.front();
}

Result<void> Store::remove(Table table, std::string id, std::optional<std::int64_t> expected_version) {
  Mutation m;
  m.kind = Mutation::Kind::kRemove;
  m.table = table;
  m.record.id = std::move(id);
  m.record.version = expected_version.value_or(0);
  m.check_version = expected_version.has_value();
  KASM_ASSIGN_OR_RETURN(auto versions, apply(std::span<const Mutation>(&m, 1)));
  (void)versions;
  return {};
}

}  // namespace kasm::spi
