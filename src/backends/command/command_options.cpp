// The command provider's configuration: provider_config_json to CommandProviderOptions, and the
// checks that the executables and the working directory can be used.

#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <system_error>

#include "kasm/command/command_provider.hpp"

namespace kasm::command {
namespace {

namespace json = boost::json;

constexpr const char* kKnownFields = "create, destroy, list, status, timeout_seconds, environment, working_directory";
constexpr std::int64_t kMaxTimeoutSeconds = 3600;

Error configError(const std::string& message) {
  return invalidArgument("command provider: " + message);
}

std::string errnoText(int err) {
  return std::error_code(err, std::system_category()).message();
}

Result<void> checkExecutable(const std::string& path, const std::string& field) {
  if (path.empty() || path.front() != '/')
    return configError(field + ": '" + path + "' is not an absolute path (the executable is not looked up in PATH)");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return configError(field + ": " + path + " does not exist");
    return configError(field + ": cannot read " + path + ": " + errnoText(errno));
  }
  if (!S_ISREG(st.st_mode)) return configError(field + ": " + path + " is not a regular file");
  if (::access(path.c_str(), X_OK) != 0) return configError(field + ": " + path + " is not executable");
  return {};
}

Result<void> checkArgv(const std::vector<std::string>& argv, const std::string& field, bool required) {
  if (argv.empty()) {
    if (!required) return {};
    return configError(field + ": required, an array whose first string is the executable's absolute path");
  }
  for (std::size_t i = 0; i < argv.size(); ++i) {
    if (argv[i].find('\0') != std::string::npos)
      return configError(field + "[" + std::to_string(i) + "]: contains a NUL character");
  }
  return checkExecutable(argv.front(), field + "[0]");
}

bool isVariableName(const std::string& name) {
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

Result<std::vector<std::string>> readArgv(const json::value& v, const std::string& field) {
  if (!v.is_array()) return configError(field + ": expected an array of strings");
  std::vector<std::string> argv;
  for (std::size_t i = 0; i < v.get_array().size(); ++i) {
    const auto& item = v.get_array()[i];
    if (!item.is_string()) return configError(field + "[" + std::to_string(i) + "]: expected a string");
    argv.emplace_back(item.get_string());
  }
  return argv;
}

Result<std::chrono::seconds> readTimeout(const json::value& v) {
  // Range is checked with the rest (validateCommandProviderOptions); beyond int64 is refused here.
  if (v.is_int64()) return std::chrono::seconds(v.get_int64());
  if (v.is_uint64()) return configError("timeout_seconds: must be between 1 and " + std::to_string(kMaxTimeoutSeconds));
  return configError("timeout_seconds: expected an integer number of seconds");
}

Result<std::map<std::string, std::string>> readEnvironment(const json::value& v) {
  if (!v.is_object()) return configError("environment: expected an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : v.get_object()) {
    if (!value.is_string()) return configError("environment." + std::string(key) + ": expected a string");
    out.emplace(std::string(key), std::string(value.get_string()));
  }
  return out;
}

Result<std::string> readString(const json::value& v, const std::string& field) {
  if (!v.is_string()) return configError(field + ": expected a string");
  return std::string(v.get_string());
}

}  // namespace

Result<void> validateCommandProviderOptions(const CommandProviderOptions& options) {
  KASM_RETURN_IF_ERROR(checkArgv(options.create, "create", true));
  KASM_RETURN_IF_ERROR(checkArgv(options.destroy, "destroy", true));
  KASM_RETURN_IF_ERROR(checkArgv(options.list, "list", true));
  KASM_RETURN_IF_ERROR(checkArgv(options.status, "status", false));
  const auto seconds = options.timeout.count();
  if (seconds < 1 || seconds > kMaxTimeoutSeconds) {
    return configError("timeout_seconds: must be between 1 and " + std::to_string(kMaxTimeoutSeconds) + ", got " +
                       std::to_string(seconds));
  }
  for (const auto& [name, value] : options.environment) {
    if (!isVariableName(name))
      return configError("environment: '" + name + "' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)");
    if (value.find('\0') != std::string::npos) return configError("environment." + name + ": contains a NUL character");
  }
  const std::string& dir = options.working_directory;
  if (dir.empty() || dir.front() != '/') return configError("working_directory: '" + dir + "' is not an absolute path");
  struct stat st {};
  if (dir.find('\0') != std::string::npos || ::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return configError("working_directory: " + dir + " is not an existing directory");
  return {};
}

Result<CommandProviderOptions> parseCommandProviderOptions(const std::string& text) {
  boost::system::error_code ec;
  const json::value root = json::parse(text, ec);
  if (ec) return configError("the configuration is not valid JSON: " + ec.message());
  if (!root.is_object()) return configError("the configuration must be a JSON object");

  CommandProviderOptions options;
  for (const auto& [key, value] : root.get_object()) {
    const std::string field(key);
    if (field == "create") {
      KASM_ASSIGN_OR_RETURN(options.create, readArgv(value, field));
    } else if (field == "destroy") {
      KASM_ASSIGN_OR_RETURN(options.destroy, readArgv(value, field));
    } else if (field == "list") {
      KASM_ASSIGN_OR_RETURN(options.list, readArgv(value, field));
    } else if (field == "status") {
      if (value.is_null()) continue;
      KASM_ASSIGN_OR_RETURN(options.status, readArgv(value, field));
      if (options.status.empty()) return configError("status: an empty array; leave the field out to use list");
    } else if (field == "timeout_seconds") {
      KASM_ASSIGN_OR_RETURN(options.timeout, readTimeout(value));
    } else if (field == "environment") {
      if (value.is_null()) continue;
      KASM_ASSIGN_OR_RETURN(options.environment, readEnvironment(value));
    } else if (field == "working_directory") {
      if (value.is_null()) continue;
      KASM_ASSIGN_OR_RETURN(options.working_directory, readString(value, field));
    } else {
      return configError("unknown field '" + field + "' (known: " + kKnownFields + ")");
    }
  }
  KASM_RETURN_IF_ERROR(validateCommandProviderOptions(options));
  return options;
}

}  // namespace kasm::command
