#pragma once

// The startup script (user data) a machine receives: the configuration's template with Kasm's
// variables filled in.

#include <map>
#include <string>
#include <string_view>

#include "kasm/core/result.hpp"

namespace kasm::autoscale {

// The variables a template may use: server_id, registration_token, upstream_address,
// provider_name, zone_name, config_name.
const std::map<std::string, std::string, std::less<>>& startupScriptVariables();

// `tmpl` with every {name} replaced by vars.at(name); "{{" and "}}" are literal braces.
// InvalidArgument naming the offset for an unknown variable, an unclosed '{', or a lone '}'.
Result<std::string> renderStartupScript(std::string_view tmpl, const std::map<std::string, std::string>& vars);
// The same checks without values (for validating a configuration).
Result<void> checkStartupScript(std::string_view tmpl);

}  // namespace kasm::autoscale
