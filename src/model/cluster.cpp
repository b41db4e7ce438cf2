#include "kasm/model/cluster.hpp"

#include "model/validation.hpp"

namespace kasm {

Result<void> ManagerNode::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "manager.id"));
  KASM_RETURN_IF_ERROR(detail::requireText(hostname, "manager.hostname", 253));
  KASM_RETURN_IF_ERROR(detail::requireText(url, "manager.url", 2048));
  KASM_RETURN_IF_ERROR(detail::requireText(version, "manager.version", 128));
  if (zones.size() > 1024) return invalidArgument("manager.zones names at most 1024 zones");
  return {};
}

Result<void> Lease::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(name, "lease.name"));
  KASM_RETURN_IF_ERROR(detail::requireText(name, "lease.name", 256));
  if (epoch < 0) return invalidArgument("lease.epoch must not be negative");
  return {};
}

Result<void> AgentCommandRow::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(id, "agent_command.id"));
  KASM_RETURN_IF_ERROR(detail::requireId(agent_id.str(), "agent_command.agent_id"));
  if (state != "queued" && state != "sent" && state != "done") {
    return invalidArgument("agent_command.state must be queued, sent or done");
  }
  if (deliveries < 0) return invalidArgument("agent_command.deliveries must not be negative");
  return {};
}

}  // namespace kasm
