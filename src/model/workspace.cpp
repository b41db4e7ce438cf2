#include "kasm/model/workspace.hpp"

#include <cctype>

#include "model/json_util.hpp"
#include "model/validation.hpp"

namespace kasm {
namespace {

bool isVolumeName(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
          c == '.')) {
      return false;
    }
  }
  return s.front() != '.' && s.front() != '-';
}

Result<void> validateLabels(const std::map<std::string, std::string>& labels, std::string_view field) {
  for (const auto& [k, v] : labels) {
    KASM_RETURN_IF_ERROR(detail::requireLabelKey(k, field));
    KASM_RETURN_IF_ERROR(detail::requireText(v, std::string(field) + "." + k, 1024));
  }
  return {};
}

Result<void> validateHook(const ExecHook& h, const std::string& field) {
  KASM_RETURN_IF_ERROR(detail::requireText(h.cmd, field + ".cmd", 64 * 1024));
  KASM_RETURN_IF_ERROR(detail::requireText(h.user, field + ".user", 256));
  if (!h.workdir.empty()) KASM_RETURN_IF_ERROR(detail::requireAbsolutePath(h.workdir, field + ".workdir"));
  for (const auto& [k, v] : h.environment) {
    if (k.empty() || k.find('=') != std::string::npos) {
      return invalidArgument(field + ".environment has an invalid variable name '" + k + "'");
    }
  }
  return {};
}

}  // namespace

Result<void> Workspace::validate() const {
  KASM_RETURN_IF_ERROR(detail::requireId(id.str(), "workspace.id"));
  KASM_RETURN_IF_ERROR(detail::requireNonEmpty(friendly_name, "workspace.friendly_name"));
  KASM_RETURN_IF_ERROR(detail::requireText(friendly_name, "workspace.friendly_name", 256));
  KASM_RETURN_IF_ERROR(detail::requireText(description, "workspace.description", 16 * 1024));
  for (const auto& c : categories) KASM_RETURN_IF_ERROR(detail::requireText(c, "workspace.categories", 128));
  KASM_RETURN_IF_ERROR(detail::requireText(thumbnail_url, "workspace.thumbnail_url", 4096));
  KASM_RETURN_IF_ERROR(validateLabels(include_labels, "workspace.include_labels"));
  KASM_RETURN_IF_ERROR(validateLabels(exclude_labels, "workspace.exclude_labels"));
  KASM_RETURN_IF_ERROR(detail::requireText(restrict_to_network, "workspace.restrict_to_network", 256));
  if (session_time_limit && session_time_limit->count() <= 0) {
    return invalidArgument("workspace.session_time_limit must be positive");
  }
  for (const auto& g : group_ids) KASM_RETURN_IF_ERROR(detail::requireId(g.str(), "workspace.group_ids"));
  switch (type) {
    case WorkspaceType::kContainer: {
      KASM_RETURN_IF_ERROR(detail::requireNonEmpty(image, "workspace.image"));
      KASM_RETURN_IF_ERROR(detail::requireText(image, "workspace.image", 512));
      if (image.find_first_of(" \t\n") != std::string::npos) {
        return invalidArgument("workspace.image must not contain whitespace");
      }
      KASM_RETURN_IF_ERROR(resources.validate("workspace.resources"));
      if (resources.millicores <= 0)
        return invalidArgument("workspace.resources.millicores must be positive (cores > 0)");
      if (resources.memory_bytes < 4 * Resources::kMiB) {
        return invalidArgument("workspace.resources.memory_bytes must be at least 4 MiB, got " +
                               std::to_string(resources.memory_bytes));
      }
      if (port == 0) return invalidArgument("workspace.port must be 1-65535");
      if (!run_config_json.empty()) {
        KASM_RETURN_IF_ERROR(detail::checkJsonObject(run_config_json, "workspace.run_config_json"));
      }
      KASM_RETURN_IF_ERROR(validateHook(exec_config.first_launch, "workspace.exec_config.first_launch"));
      KASM_RETURN_IF_ERROR(validateHook(exec_config.go, "workspace.exec_config.go"));
      KASM_RETURN_IF_ERROR(validateHook(exec_config.assign, "workspace.exec_config.assign"));
      for (std::size_t i = 0; i < volumes.size(); ++i) {
        const auto& v = volumes[i];
        const std::string f = "workspace.volumes[" + std::to_string(i) + "]";
        if (!v.source.empty() && v.source.front() == '/') {
          KASM_RETURN_IF_ERROR(detail::requireAbsolutePath(v.source, f + ".source"));
        } else if (!isVolumeName(v.source)) {
          return invalidArgument(f + ".source must be an absolute host path or a volume name");
        }
        KASM_RETURN_IF_ERROR(detail::requireAbsolutePath(v.target, f + ".target"));
        if ((v.uid && *v.uid < 0) || (v.gid && *v.gid < 0))
          return invalidArgument(f + ": uid/gid must not be negative");
      }
      if (!persistent_profile_path.empty()) {
        // Checked with sample values: what the placeholders become cannot add a separator.
        const std::string sample = profileFor("user", "id");
        if (sample.front() == '/') {
          KASM_RETURN_IF_ERROR(detail::requireAbsolutePath(sample, "workspace.persistent_profile_path"));
          for (std::string_view rest = sample; !rest.empty();) {
            const auto slash = rest.find('/');
            const auto part = rest.substr(0, slash);
            if (part == "." || part == "..")
              return invalidArgument("workspace.persistent_profile_path must not contain . or .. segments");
            rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
          }
        } else if (!isVolumeName(sample)) {
          return invalidArgument("workspace.persistent_profile_path must be an absolute host path or a volume name");
        }
        KASM_RETURN_IF_ERROR(
            detail::requireAbsolutePath(persistent_profile_target, "workspace.persistent_profile_target"));
      }
      if (restrict_to_zone)
        KASM_RETURN_IF_ERROR(detail::requireId(restrict_to_zone->str(), "workspace.restrict_to_zone"));
      if (restrict_to_agent)
        KASM_RETURN_IF_ERROR(detail::requireId(restrict_to_agent->str(), "workspace.restrict_to_agent"));
      break;
    }
    case WorkspaceType::kServer:
      if (!server_id || server_id->empty())
        return invalidArgument("workspace.server_id is required for a server workspace");
      break;
    case WorkspaceType::kServerPool:
      if (!server_pool_id || server_pool_id->empty()) {
        return invalidArgument("workspace.server_pool_id is required for a server pool workspace");
      }
      break;
    case WorkspaceType::kLink: KASM_RETURN_IF_ERROR(detail::requireHttpUrl(link_url, "workspace.link_url")); break;
  }
  if (!path.empty() && path.front() != '/') return invalidArgument("workspace.path must start with '/'");
  return {};
}

namespace {

// One path segment from any text: safe characters kept, the rest replaced by '_'; "." and ".."
// (and empty) cannot come out.
std::string segment(std::string_view v) {
  std::string out;
  for (char c : v.substr(0, 128)) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '@' || c == '-';
    out += ok ? c : '_';
  }
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

}  // namespace

std::string Workspace::profileFor(std::string_view username, std::string_view user_id) const {
  std::string out;
  for (std::size_t i = 0; i < persistent_profile_path.size();) {
    bool replaced = false;
    for (auto [name, value] : {std::pair<std::string_view, std::string_view>{"{username}", username},
                               {"{user_id}", user_id},
                               {"{image_id}", id.str()}}) {
      if (std::string_view(persistent_profile_path).substr(i).starts_with(name)) {
        out += segment(value);
        i += name.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) out += persistent_profile_path[i++];
  }
  return out;
}

}  // namespace kasm
