#include "server_config.hpp"

#include <charconv>
#include <cstdlib>

namespace kasm::server {
namespace {

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

Result<std::uint16_t> parsePort(std::string_view s, std::string_view what) {
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v > 65535) {
    return invalidArgument(std::string(what) + ": '" + std::string(s) + "' is not a port (0-65535)");
  }
  return static_cast<std::uint16_t>(v);
}

}  // namespace

std::string usage() {
  return "usage: kasm-server [--data-dir DIR] [--database postgresql://...] [--listen ADDR] [--port N]\n"
         "                   [--http] [--no-local-agent] [--zone NAME] [--license-public-key PEM]\n"
         "                   [--web-root DIR]\n"
         "       kasm-server api-key create --name NAME [--data-dir DIR | --database URL]\n"
         "\n"
         "With no options: SQLite in ./kasm-data, the local Docker socket, HTTPS on 127.0.0.1:8443.\n"
         "Environment: KASM_DATA_DIR, KASM_DATABASE_URL, KASM_LISTEN, KASM_PORT, KASM_HTTP=1,\n"
         "KASM_ADMIN_PASSWORD (the first admin's password instead of a generated one), KASM_LICENSE_PUBLIC_KEY,\n"
         "KASM_WEB_ROOT, DOCKER_HOST.\n";
}

Result<ServerConfig> parseConfig(const std::vector<std::string>& args) {
  ServerConfig c;
  if (auto v = env("KASM_DATA_DIR")) c.data_dir = *v;
  if (auto v = env("KASM_DATABASE_URL")) c.database_url = *v;
  if (auto v = env("KASM_LISTEN")) c.listen_address = *v;
  if (auto v = env("KASM_PORT")) {
    KASM_ASSIGN_OR_RETURN(c.port, parsePort(*v, "KASM_PORT"));
  }
  if (auto v = env("KASM_HTTP")) c.plain_http = *v == "1" || *v == "true";
  if (auto v = env("KASM_LICENSE_PUBLIC_KEY")) c.license_public_key_file = *v;
  if (auto v = env("KASM_WEB_ROOT")) c.web_root = *v;

  std::size_t i = 0;
  if (args.size() >= 2 && args[0] == "api-key" && args[1] == "create") {
    c.command = "api-key-create";
    i = 2;
  }
  auto value = [&](const std::string& flag) -> Result<std::string> {
    if (i + 1 >= args.size()) return invalidArgument(flag + " needs a value");
    return args[++i];
  };
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") return failedPrecondition(usage());
    if (a == "--data-dir") {
      KASM_ASSIGN_OR_RETURN(c.data_dir, value(a));
    } else if (a == "--database") {
      KASM_ASSIGN_OR_RETURN(c.database_url, value(a));
    } else if (a == "--listen") {
      KASM_ASSIGN_OR_RETURN(c.listen_address, value(a));
    } else if (a == "--port") {
      KASM_ASSIGN_OR_RETURN(std::string p, value(a));
      KASM_ASSIGN_OR_RETURN(c.port, parsePort(p, "--port"));
    } else if (a == "--http") {
      c.plain_http = true;
    } else if (a == "--no-local-agent") {
      c.local_agent = false;
    } else if (a == "--zone") {
      KASM_ASSIGN_OR_RETURN(c.zone_name, value(a));
    } else if (a == "--license-public-key") {
      KASM_ASSIGN_OR_RETURN(c.license_public_key_file, value(a));
    } else if (a == "--web-root") {
      KASM_ASSIGN_OR_RETURN(c.web_root, value(a));
    } else if (a == "--name" && c.command == "api-key-create") {
      KASM_ASSIGN_OR_RETURN(c.api_key_name, value(a));
    } else {
      return invalidArgument("unknown option '" + a + "'\n" + usage());
    }
  }
  if (c.command == "api-key-create" && c.api_key_name.empty())
    return invalidArgument("api-key create needs --name NAME");
  if (!c.database_url.empty() && c.database_url.rfind("postgres", 0) != 0) {
    return invalidArgument("--database must be a postgresql:// URL");
  }
  return c;
}

}  // namespace kasm::server
