#include "kasm/model/autoscale.hpp"

#include <cctype>

#include "kasm/agent/upstream_policy.hpp"
#include "kasm/autoscale/startup_script.hpp"
#include "kasm/core/time_zone.hpp"
#include "model/json_util.hpp"
#include "model/validation.hpp"

namespace kasm {

namespace {

// "HH:MM" with 00 <= HH <= 24 and MM < 60 ("24:00" only as itself): minutes since midnight.
std::optional<int> parseClock(std::string_view s) {
  if (s.size() != 5 || s[2] != ':') return std::nullopt;
  for (std::size_t i : {0u, 1u, 3u, 4u})
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  const int h = (s[0] - '0') * 10 + (s[1] - '0');
  const int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m >= 60 || h > 24 || (h == 24 && m != 0)) return std::nullopt;
  return h * 60 + m;
}

}  // namespace

std::optional<int> scheduleClockMinutes(std::string_view hhmm) {
  return parseClock(hhmm);
}

Result<void> AutoscaleSchedule::validate(std::string_view field) const {
  const std::string f(field);
  if (days.size() > 7) return invalidArgument(f + ".days lists at most the 7 days");
  for (auto d : days)
    if (d < 0 || d > 6) return invalidArgument(f + ".days are 0 (Sunday) to 6 (Saturday)");
  if (!parseClock(start) || start == "24:00") return invalidArgument(f + ".start must be HH:MM (00:00 to 23:59)");
  if (!parseClock(end)) return invalidArgument(f + ".end must be HH:MM (00:00 to 24:00)");
  return {};
}

bool isSecretProviderField(std::string_view name) noexcept {
  std::string lower(name);
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (std::string_view s : {"secret", "password", "token", "private_key", "credential"}) {
    if (lower.find(s) != std::string::npos) return true;
  }
  return false;
}

Result<void> AutoscaleConfig::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "autoscale_config.id"));
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(name, "autoscale_config.name"));
  KASM_RETURN_IF_ERROR(detail::requireText(name, "autoscale_config.name", 256));
  KASM_RETURN_IF_ERROR(detail::requireId(zone_id.str(), "autoscale_config.zone_id"));
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(provider, "autoscale_config.provider"));
  KASM_RETURN_IF_ERROR(detail::requireText(provider, "autoscale_config.provider", 128));
  KASM_RETURN_IF_ERROR(detail::checkJsonObject(provider_config_json, "autoscale_config.provider_config_json"));
  KASM_RETURN_IF_ERROR(standby.validate("autoscale_config.standby"));
  if (min_standby_sessions < 0 || min_standby_sessions > 100000) {
    return invalidArgument("autoscale_config.min_standby_sessions must be 0-100000");
  }
  if (min_instances < 0) return invalidArgument("autoscale_config.min_instances must not be negative");
  if (max_instances < min_instances || max_instances > 100000) {
    return invalidArgument("autoscale_config.max_instances must be >= min_instances and at most 100000");
  }
  if (downscale_backoff.count() < 0) return invalidArgument("autoscale_config.downscale_backoff must not be negative");
  if (provision_timeout < std::chrono::minutes(1) || provision_timeout > std::chrono::hours(24)) {
    return invalidArgument("autoscale_config.provision_timeout must be between 1 minute and 24 hours");
  }
  if ((agent_overrides.millicores && *agent_overrides.millicores < 0) ||
      (agent_overrides.memory_bytes && *agent_overrides.memory_bytes < 0) ||
      (agent_overrides.gpus && *agent_overrides.gpus < 0)) {
    return invalidArgument("autoscale_config.agent_overrides must not be negative");
  }
  for (const auto& [k, v] : agent_labels) {
    KASM_RETURN_IF_ERROR(detail::requireLabelKey(k, "autoscale_config.agent_labels"));
    KASM_RETURN_IF_ERROR(detail::requireText(v, "autoscale_config.agent_labels." + k, 1024));
  }
  if (agent_publish_networks.size() > 64) {
    return invalidArgument("autoscale_config.agent_publish_networks holds at most 64 networks");
  }
  for (const auto& n : agent_publish_networks) {
    if (auto valid = agent::validateNetwork(n); !valid.ok()) {
      return valid.error().withContext("autoscale_config.agent_publish_networks");
    }
  }
  if (startup_script.size() > 16 * 1024) {
    return invalidArgument("autoscale_config.startup_script is longer than 16 KiB (EC2's user data limit)");
  }
  if (auto r = autoscale::checkStartupScript(startup_script); !r.ok()) {
    return r.error().withContext("autoscale_config.startup_script");
  }
  if (server_port == 0) return invalidArgument("autoscale_config.server_port must be 1-65535");
  if (server_max_sessions < 1 || server_max_sessions > 1000) {
    return invalidArgument("autoscale_config.server_max_sessions must be 1-1000");
  }
  if (auto tz = TimeZone::load(time_zone); !tz.ok()) {
    return invalidArgument("autoscale_config.time_zone: " + tz.error().message());
  }
  if (schedules.size() > 64) return invalidArgument("autoscale_config.schedules holds at most 64 windows");
  for (std::size_t i = 0; i < schedules.size(); ++i) {
    KASM_RETURN_IF_ERROR(schedules[i].validate("autoscale_config.schedules[" + std::to_string(i) + "]"));
  }
  return {};
}

Result<void> AutoscaleVm::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "autoscale_vm.id"));
  KASM_RETURN_IF_ERROR(detail::requireId(config_id.str(), "autoscale_vm.config_id"));
  KASM_RETURN_IF_ERROR(detail::requireId(zone_id.str(), "autoscale_vm.zone_id"));
  KASM_RETURN_IF_ERROR(detail::requireText(instance_id, "autoscale_vm.instance_id", 256));
  KASM_RETURN_IF_ERROR(detail::requireText(reason, "autoscale_vm.reason", 4096));
  return {};
}

Result<void> AutoscaleDecision::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "autoscale_decision.id"));
  KASM_RETURN_IF_ERROR(detail::requireId(config_id.str(), "autoscale_decision.config_id"));
  return {};
}

}  // namespace kasm
