#include <algorithm>

#include "kasm/agent/upstream_policy.hpp"
#include "kasm/model/agent.hpp"
#include "kasm/model/zone.hpp"
#include "model/validation.hpp"

namespace kasm {

Result<void> Zone::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "zone.id"));
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(name, "zone.name"));
  KASM_RETURN_IF_ERROR(detail::requireText(name, "zone.name", 256));
  KASM_RETURN_IF_ERROR(detail::requireText(proxy.hostname, "zone.proxy.hostname", 253));
  if (!proxy.path.empty() && proxy.path.front() != '/') return invalidArgument("zone.proxy.path must start with '/'");
  KASM_RETURN_IF_ERROR(detail::requireText(gateway, "zone.gateway", 260));
  if (!gateway.empty()) {
    const auto colon = gateway.rfind(':');
    const bool port = colon != std::string::npos && colon + 1 < gateway.size() &&
                      gateway.find_first_not_of("0123456789", colon + 1) == std::string::npos;
    if (colon == 0 || !port || gateway.find_first_of("/ @?#") != std::string::npos)
      return invalidArgument("zone.gateway must be host:port");
  }
  return {};
}

Resources Agent::capacity() const {
  return {overrides.millicores.value_or(reported.millicores), overrides.memory_bytes.value_or(reported.memory_bytes),
          overrides.gpus.value_or(reported.gpus)};
}

Resources Agent::available() const {
  return (capacity() - reserved).clampedAtZero();
}

bool Agent::hasImage(std::string_view image) const {
  return std::find(images.begin(), images.end(), image) != images.end();
}

Result<void> Agent::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "agent.id"));
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(hostname, "agent.hostname"));
  KASM_RETURN_IF_ERROR(detail::requireText(hostname, "agent.hostname", 253));
  KASM_RETURN_IF_ERROR(detail::requireId(zone_id.str(), "agent.zone_id"));
  KASM_RETURN_IF_ERROR(reported.validate("agent.reported"));
  if (reserved.anyNegative()) return invalidArgument("agent.reserved must not be negative");
  if (session_count < 0) return invalidArgument("agent.session_count must not be negative");
  if ((overrides.millicores && *overrides.millicores < 0) || (overrides.memory_bytes && *overrides.memory_bytes < 0) ||
      (overrides.gpus && *overrides.gpus < 0)) {
    return invalidArgument("agent.overrides must not be negative");
  }
  if (cpu_utilization < 0 || cpu_utilization > 1.0 + 1e-9) {
    return invalidArgument("agent.cpu_utilization must be between 0 and 1");
  }
  for (const auto& [k, v] : labels) {
    KASM_RETURN_IF_ERROR(detail::requireLabelKey(k, "agent.labels"));
    KASM_RETURN_IF_ERROR(detail::requireText(v, "agent.labels." + k, 1024));
  }
  if (publish_networks.size() > 64) return invalidArgument("agent.publish_networks holds at most 64 networks");
  for (const auto& n : publish_networks) {
    if (auto valid = agent::validateNetwork(n); !valid.ok()) return valid.error().withContext("agent.publish_networks");
  }
  if (kind == AgentKind::kAutoscaled && !autoscale_config_id) {
    return invalidArgument("agent.autoscale_config_id is required for an autoscaled agent");
  }
  return {};
}

}  // namespace kasm
