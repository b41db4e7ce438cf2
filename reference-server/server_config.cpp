#include "server_config.hpp"

#include <algorithm>
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

std::vector<std::string> commaList(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto end = s.find(',', start);
    std::string item = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// An origin is scheme://host[:port]: nothing after it, so it compares exactly with what browsers send.
Result<std::string> parseOrigin(std::string v, std::string_view what) {
  while (v.ends_with("/")) v.pop_back();
  const auto scheme = v.find("://");
  if (!(v.starts_with("https://") || v.starts_with("http://")) || v.size() <= scheme + 3 ||
      v.find_first_of("/?# ", scheme + 3) != std::string::npos) {
    return invalidArgument(std::string(what) + ": '" + v + "' is not an origin (https://host[:port])");
  }
  return v;
}

}  // namespace

std::string usage() {
  return "usage: kasm-server [--data-dir DIR] [--database postgresql://...] [--listen ADDR] [--port N]\n"
         "                   [--http] [--no-local-agent] [--zone NAME] [--license-public-key PEM]\n"
         "                   [--redis redis://...] [--web-root DIR] [--session-origin URL] [--allowed-origin URL]...\n"
         "                   [--frame-ancestor URL]... [--ops-access loopback|token|open] "
         "[--allow-loopback-upstreams]\n"
         "                   [--max-connections-per-address N (default 1000, 0: no limit)]\n"
         "                   [--gateway auto|off|HOST:PORT] [--gateway-key-file FILE] [--agent-url URL]\n"
         "                   [--lead-zones NAME,...] [--drain-seconds N (default 5)]\n"
         "                   [--tunnel-gateway ADDRESS[:PORT] (default 127.0.0.1)]\n"
         "                   [--write-stall-seconds N (default 60; 0: never)]\n"
         "                   [--session-history-days N (default 90; 0: keep)]\n"
         "       kasm-server api-key create --name NAME [--data-dir DIR | --database URL]\n"
         "\n"
         "With no options: SQLite in ./kasm-data, the local Docker socket, HTTPS on 127.0.0.1:8443.\n"
         "Environment: KASM_DATA_DIR, KASM_DATABASE_URL, KASM_LISTEN, KASM_PORT, KASM_HTTP=1,\n"
         "KASM_ADMIN_PASSWORD (the first admin's password instead of a generated one), KASM_LICENSE_PUBLIC_KEY,\n"
         "KASM_REDIS_URL (the share database: chat of shared sessions; default in-process),\n"
         "KASM_WEB_ROOT, KASM_SESSION_ORIGIN, KASM_ALLOWED_ORIGINS and KASM_FRAME_ANCESTORS (comma-separated),\n"
         "KASM_OPS_ACCESS, KASM_OPS_TOKEN (a bearer token that may read /metrics from anywhere),\n"
         "KASM_ALLOW_LOOPBACK_UPSTREAMS=1, KASM_GATEWAY, KASM_GATEWAY_KEY_FILE, DOCKER_HOST,\n"
         "KASM_AGENT_URL (where agents of autoscaled machines reach this server; default its own URL),\n"
         "KASM_TUNNEL_GATEWAY.\n";
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
  if (auto v = env("KASM_REDIS_URL")) c.redis_url = *v;
  if (auto v = env("KASM_SESSION_ORIGIN")) c.session_origin = *v;
  if (auto v = env("KASM_ALLOWED_ORIGINS")) c.allowed_origins = commaList(*v);
  if (auto v = env("KASM_FRAME_ANCESTORS")) c.frame_ancestors = commaList(*v);
  if (auto v = env("KASM_OPS_ACCESS")) c.ops_access = *v;
  if (auto v = env("KASM_OPS_TOKEN")) c.ops_token = *v;
  if (auto v = env("KASM_GATEWAY")) c.gateway = *v;
  if (auto v = env("KASM_AGENT_URL")) c.agent_url = *v;
  if (auto v = env("KASM_TUNNEL_GATEWAY")) c.tunnel_gateway = *v;
  if (auto v = env("KASM_DRAIN_SECONDS")) c.drain_seconds = std::clamp(std::atoi(v->c_str()), 0, 3600);
  if (auto v = env("KASM_WRITE_STALL_SECONDS")) c.write_stall_seconds = std::clamp(std::atoi(v->c_str()), 0, 86400);
  if (auto v = env("KASM_SESSION_HISTORY_DAYS")) {
    c.session_history_days = std::clamp(std::atoi(v->c_str()), 0, 36500);
  }
  if (auto v = env("KASM_GATEWAY_KEY_FILE")) c.gateway_key_file = *v;
  if (auto v = env("KASM_ALLOW_LOOPBACK_UPSTREAMS")) c.allow_loopback_upstreams = *v == "1" || *v == "true";

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
    } else if (a == "--redis") {
      KASM_ASSIGN_OR_RETURN(c.redis_url, value(a));
    } else if (a == "--web-root") {
      KASM_ASSIGN_OR_RETURN(c.web_root, value(a));
    } else if (a == "--session-origin") {
      KASM_ASSIGN_OR_RETURN(c.session_origin, value(a));
    } else if (a == "--allowed-origin") {
      KASM_ASSIGN_OR_RETURN(std::string o, value(a));
      c.allowed_origins.push_back(o);
    } else if (a == "--frame-ancestor") {
      KASM_ASSIGN_OR_RETURN(std::string o, value(a));
      c.frame_ancestors.push_back(o);
    } else if (a == "--ops-access") {
      KASM_ASSIGN_OR_RETURN(c.ops_access, value(a));
    } else if (a == "--lead-zones") {
      KASM_ASSIGN_OR_RETURN(std::string list, value(a));
      c.lead_zones.clear();
      for (std::size_t at = 0; at <= list.size();) {
        const auto comma = std::min(list.find(',', at), list.size());
        if (comma > at) c.lead_zones.push_back(list.substr(at, comma - at));
        at = comma + 1;
      }
    } else if (a == "--tunnel-gateway") {
      KASM_ASSIGN_OR_RETURN(c.tunnel_gateway, value(a));
    } else if (a == "--drain-seconds") {
      KASM_ASSIGN_OR_RETURN(std::string n, value(a));
      c.drain_seconds = std::clamp(std::atoi(n.c_str()), 0, 3600);
    } else if (a == "--session-history-days") {
      KASM_ASSIGN_OR_RETURN(std::string n, value(a));
      c.session_history_days = std::clamp(std::atoi(n.c_str()), 0, 36500);
    } else if (a == "--write-stall-seconds") {
      KASM_ASSIGN_OR_RETURN(std::string n, value(a));
      c.write_stall_seconds = std::clamp(std::atoi(n.c_str()), 0, 86400);
    } else if (a == "--agent-url") {
      KASM_ASSIGN_OR_RETURN(c.agent_url, value(a));
    } else if (a == "--gateway") {
      KASM_ASSIGN_OR_RETURN(c.gateway, value(a));
    } else if (a == "--gateway-key-file") {
      KASM_ASSIGN_OR_RETURN(c.gateway_key_file, value(a));
    } else if (a == "--max-connections-per-address") {
      KASM_ASSIGN_OR_RETURN(std::string n, value(a));
      if (n.empty() || n.size() > 9 || n.find_first_not_of("0123456789") != std::string::npos) {
        return invalidArgument("--max-connections-per-address must be a number (0: no limit)");
      }
      c.max_connections_per_address = std::stoul(n);
    } else if (a == "--allow-loopback-upstreams") {
      c.allow_loopback_upstreams = true;
    } else if (a == "--name" && c.command == "api-key-create") {
      KASM_ASSIGN_OR_RETURN(c.api_key_name, value(a));
    } else {
      return invalidArgument("unknown option '" + a + "'\n" + usage());
    }
  }
  if (c.command == "api-key-create" && c.api_key_name.empty())
    return invalidArgument("api-key create needs --name NAME");
  if (!c.session_origin.empty()) {
    KASM_ASSIGN_OR_RETURN(c.session_origin, parseOrigin(c.session_origin, "session origin"));
  }
  for (auto& o : c.allowed_origins) {
    KASM_ASSIGN_OR_RETURN(o, parseOrigin(o, "allowed origin"));
  }
  for (auto& o : c.frame_ancestors) {
    KASM_ASSIGN_OR_RETURN(o, parseOrigin(o, "frame ancestor"));
  }
  if (c.ops_access != "loopback" && c.ops_access != "open" && c.ops_access != "token") {
    return invalidArgument("--ops-access must be loopback, token or open, not '" + c.ops_access + "'");
  }
  if (c.ops_access == "token" && c.ops_token.empty()) {
    return invalidArgument("--ops-access token needs KASM_OPS_TOKEN");
  }
  if (c.gateway != "auto" && c.gateway != "off" && c.gateway.rfind(':') == std::string::npos) {
    return invalidArgument("--gateway must be auto, off or HOST:PORT, not '" + c.gateway + "'");
  }
  if (!c.database_url.empty() && c.database_url.rfind("postgres", 0) != 0) {
    return invalidArgument("--database must be a postgresql:// URL");
  }
  return c;
}

}  // namespace kasm::server
