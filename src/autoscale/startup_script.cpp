#include "kasm/autoscale/startup_script.hpp"

namespace kasm::autoscale {

const std::map<std::string, std::string, std::less<>>& startupScriptVariables() {
  static const std::map<std::string, std::string, std::less<>> kVariables = {
      {"server_id", "the id of the machine's agent (or server)"},
      {"registration_token", "the single-use token its agent registers with"},
      {"upstream_address", "where agents reach this installation (https://host:port)"},
      {"provider_name", "the provider's name"},
      {"zone_name", "the zone's name"},
      {"config_name", "the autoscale configuration's name"},
  };
  return kVariables;
}

namespace {

Result<std::string> expand(std::string_view tmpl, const std::map<std::string, std::string>* vars) {
  std::string out;
  out.reserve(tmpl.size() + 256);
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    const char c = tmpl[i];
    if (c == '}') {
      if (i + 1 < tmpl.size() && tmpl[i + 1] == '}') {
        out.push_back('}');
        ++i;
        continue;
      }
      return invalidArgument("a lone '}' at offset " + std::to_string(i) + " (write '}}' for a brace)");
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < tmpl.size() && tmpl[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    const auto close = tmpl.find('}', i + 1);
    if (close == std::string_view::npos) {
      return invalidArgument("an unclosed '{' at offset " + std::to_string(i) + " (write '{{' for a brace)");
    }
    const std::string_view name = tmpl.substr(i + 1, close - i - 1);
    if (!startupScriptVariables().contains(name)) {
      std::string known;
      for (const auto& [k, v] : startupScriptVariables()) known += (known.empty() ? "" : ", ") + k;
      return invalidArgument("unknown variable {" + std::string(name) + "} at offset " + std::to_string(i) +
                             " (known: " + known + "; '{{' and '}}' are literal braces)");
    }
    if (vars) {
      auto it = vars->find(std::string(name));
      if (it != vars->end()) out += it->second;
    }
    i = close;
  }
  return out;
}

}  // namespace

Result<std::string> renderStartupScript(std::string_view tmpl, const std::map<std::string, std::string>& vars) {
  return expand(tmpl, &vars);
}

Result<void> checkStartupScript(std::string_view tmpl) {
  KASM_RETURN_IF_ERROR(expand(tmpl, nullptr));
  return {};
}

}  // namespace kasm::autoscale
