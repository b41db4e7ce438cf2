// The container create body and the run-config merge (rules in kasm/docker/docker_runtime.hpp).

#include <algorithm>
#include <iterator>

#include "backends/docker/json_mapping.hpp"

namespace kasm::docker::detail {
namespace {

// HostConfig field names of Engine API 1.41-1.43.
constexpr std::string_view kHostConfigKeys[] = {
    "AutoRemove",
    "Binds",
    "BlkioDeviceReadBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceWriteIOps",
    "BlkioWeight",
    "BlkioWeightDevice",
    "CapAdd",
    "CapDrop",
    "Cgroup",
    "CgroupParent",
    "CgroupnsMode",
    "ConsoleSize",
    "ContainerIDFile",
    "CpuCount",
    "CpuPercent",
    "CpuPeriod",
    "CpuQuota",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CpuShares",
    "CpusetCpus",
    "CpusetMems",
    "DeviceCgroupRules",
    "DeviceRequests",
    "Devices",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "ExtraHosts",
    "GroupAdd",
    "IOMaximumBandwidth",
    "IOMaximumIOps",
    "Init",
    "IpcMode",
    "Isolation",
    "KernelMemory",
    "KernelMemoryTCP",
    "Links",
    "LogConfig",
    "MaskedPaths",
    "Memory",
    "MemoryReservation",
    "MemorySwap",
    "MemorySwappiness",
    "Mounts",
    "NanoCpus",
    "NetworkMode",
    "OomKillDisable",
    "OomScoreAdj",
    "PidMode",
    "PidsLimit",
    "PortBindings",
    "Privileged",
    "PublishAllPorts",
    "ReadonlyPaths",
    "ReadonlyRootfs",
    "RestartPolicy",
    "Runtime",
    "SecurityOpt",
    "ShmSize",
    "StorageOpt",
    "Sysctls",
    "Tmpfs",
    "UTSMode",
    "Ulimits",
    "UsernsMode",
    "VolumeDriver",
    "VolumesFrom",
};

std::string portKey(std::uint16_t port) {
  return std::to_string(port) + "/tcp";
}

json::object& objectAt(json::object& parent, std::string_view key) {
  json::value& v = parent[key];
  if (!v.is_object()) v = json::object();
  return v.as_object();
}

// Rule 5: what kasm relies on to find and reach its container is set again after the merge.
void applyOwnedFields(json::object& body, const spi::ContainerSpec& spec) {
  body["Image"] = spec.image;
  // The override's Env adds to the environment kasm sets rather than replacing it: kasm's
  // variables (the session's VNC password among them) are put back, each replacing an entry of
  // the same name, and the override's other variables stay.
  if (!spec.environment.empty()) {
    json::array merged;
    if (auto* given = body.if_contains("Env"); given && given->is_array()) {
      for (const auto& e : given->as_array()) {
        if (!e.is_string()) continue;
        const std::string_view entry = e.as_string();
        const std::string name(entry.substr(0, entry.find('=')));
        if (!spec.environment.count(name)) merged.push_back(e);
      }
    }
    for (const auto& [k, v] : spec.environment) merged.emplace_back(k + "=" + v);
    body["Env"] = std::move(merged);
  }
  json::object& labels = objectAt(body, "Labels");
  for (const auto& [k, v] : spec.labels) labels[k] = v;
  if (spec.port != 0) {
    labels[kSessionPortLabel] = std::to_string(spec.port);
    objectAt(body, "ExposedPorts")[portKey(spec.port)] = json::object();
    json::object binding{{"HostIp", spec.publish_host}, {"HostPort", ""}};
    objectAt(objectAt(body, "HostConfig"), "PortBindings")[portKey(spec.port)] = json::array{binding};
  }
}

}  // namespace

bool isHostConfigKey(std::string_view key) {
  return std::find(std::begin(kHostConfigKeys), std::end(kHostConfigKeys), key) != std::end(kHostConfigKeys);
}

void mergeJsonObjects(json::object& base, const json::object& override_object) {
  for (const auto& [key, value] : override_object) {
    if (value.is_null()) {
      base.erase(key);
      continue;
    }
    auto it = base.find(key);
    if (value.is_object() && it != base.end() && it->value().is_object()) {
      mergeJsonObjects(it->value().as_object(), value.as_object());
    } else {
      base[key] = value;
    }
  }
}

Result<void> mergeRunConfig(json::object& body, std::string_view run_config_json) {
  auto first = run_config_json.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return okResult();
  boost::system::error_code ec;
  json::value parsed = json::parse(run_config_json, ec);
  if (ec) {
    return invalidArgument("run_config_json: not valid JSON (" + ec.message() + ")");
  }
  if (!parsed.is_object()) {
    return invalidArgument("run_config_json: must be a JSON object, e.g. {\"HostConfig\": {\"ShmSize\": 536870912}}");
  }
  // Rule 2: hoist HostConfig field names written at the top level into HostConfig first, then
  // merge the HostConfig the override spells out itself, so both spellings behave the same.
  json::object top;
  json::object host;
  for (const auto& [key, value] : parsed.as_object()) {
    if (key == "HostConfig") {
      if (!value.is_object() && !value.is_null()) {
        return invalidArgument("run_config_json.HostConfig: must be a JSON object");
      }
      continue;
    }
    if (isHostConfigKey(key)) {
      host[key] = value;
    } else {
      top[key] = value;
    }
  }
  mergeJsonObjects(body, top);
  if (!host.empty()) mergeJsonObjects(objectAt(body, "HostConfig"), host);
  if (const json::value* hc = parsed.as_object().if_contains("HostConfig")) {
    if (hc->is_null()) {
      body.erase("HostConfig");
    } else {
      mergeJsonObjects(objectAt(body, "HostConfig"), hc->as_object());
    }
  }
  return okResult();
}

Result<std::string> mergeRunConfigText(std::string_view body_json, std::string_view run_config_json) {
  boost::system::error_code ec;
  json::value body = json::parse(body_json, ec);
  if (ec || !body.is_object()) return invalidArgument("body: must be a JSON object");
  KASM_RETURN_IF_ERROR(mergeRunConfig(body.as_object(), run_config_json));
  return json::serialize(body);
}

Result<json::object> buildCreateBody(const spi::ContainerSpec& spec) {
  if (spec.image.empty()) return invalidArgument("container spec: image is empty");
  KASM_RETURN_IF_ERROR(spec.resources.validate("container spec resources"));

  json::object body;
  body["Image"] = spec.image;
  if (!spec.command.empty()) {
    json::array cmd;
    for (const auto& arg : spec.command) cmd.emplace_back(arg);
    body["Cmd"] = std::move(cmd);
  }
  if (!spec.environment.empty()) {
    json::array env;
    for (const auto& [k, v] : spec.environment) {
      if (k.empty() || k.find('=') != std::string::npos) {
        return invalidArgument("container spec environment: bad variable name '" + k + "'");
      }
      env.emplace_back(k + "=" + v);
    }
    body["Env"] = std::move(env);
  }
  body["Labels"] = json::object();

  json::object host;
  const auto& r = spec.resources;
  if (r.memory_bytes > 0) host["Memory"] = r.memory_bytes;
  if (r.millicores > 0) {
    switch (spec.cpu_allocation) {
      case CpuAllocationMethod::kQuotas: host["NanoCpus"] = r.millicores * 1'000'000; break;
      // 1024 shares per core is Docker's reference weight; at least 2, the kernel's minimum.
      case CpuAllocationMethod::kShares:
        host["CpuShares"] = std::max<std::int64_t>(2, r.millicores * 1024 / 1000);
        break;
      case CpuAllocationMethod::kInherit: break;
    }
  }
  if (r.gpus > 0) {
    json::object request{{"Driver", ""}, {"Count", r.gpus}, {"Capabilities", json::array{json::array{"gpu"}}}};
    host["DeviceRequests"] = json::array{request};
  }
  if (!spec.volumes.empty()) {
    json::array binds;
    for (const auto& v : spec.volumes) {
      if (v.source.empty() || v.target.empty() || v.target[0] != '/') {
        return invalidArgument("container spec volumes: '" + v.source + "' -> '" + v.target +
                               "' needs a source and an absolute target");
      }
      binds.emplace_back(v.source + ":" + v.target + (v.mode == VolumeMode::kReadOnly ? ":ro" : ""));
    }
    host["Binds"] = std::move(binds);
  }
  if (!spec.network.empty()) host["NetworkMode"] = spec.network;
  body["HostConfig"] = std::move(host);

  KASM_RETURN_IF_ERROR(mergeRunConfig(body, spec.run_config_json));
  applyOwnedFields(body, spec);
  return body;
}

}  // namespace kasm::docker::detail
