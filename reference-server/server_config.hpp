#pragma once

// Configuration of kasm-server: flags override environment variables, which override defaults.
// The embedded default needs none: SQLite in ./kasm-data, the local Docker socket, HTTPS on
// 127.0.0.1:8443 with a self-signed certificate.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kasm/core/result.hpp"

namespace kasm::server {

struct ServerConfig {
  std::string data_dir = "./kasm-data";      // KASM_DATA_DIR, --data-dir
  std::string database_url;                  // KASM_DATABASE_URL, --database (postgresql://...); empty = SQLite
  std::string listen_address = "127.0.0.1";  // KASM_LISTEN, --listen
  std::uint16_t port = 8443;                 // KASM_PORT, --port (0 = ephemeral)
  bool plain_http = false;                   // KASM_HTTP=1, --http
  bool local_agent = true;                   // --no-local-agent turns it off
  std::string zone_name = "default";         // --zone: the zone of the local agent and the default zone
  // Connections from one client address at most (0: no limit). Behind a load balancer or a
  // large NAT, raise it or set 0.
  std::size_t max_connections_per_address = 1000;
  int io_threads = 2;
  int handler_threads = 8;
  int tick_seconds = 5;  // Background loop period.
  // Where agents on autoscaled machines reach this server ({upstream_address} in startup
  // scripts): KASM_AGENT_URL, --agent-url. Empty: this server's own URL.
  std::string agent_url;
  // Scale-out: the zones (names) this server may lead as their primary (--lead-zones a,b; empty:
  // any), and how long it keeps serving after SIGTERM while /readyz says "draining" so that a
  // balancer stops sending it traffic (--drain-seconds, KASM_DRAIN_SECONDS).
  std::vector<std::string> lead_zones;
  int drain_seconds = 5;
  // Where this server's tunnel gateway listens (ADDRESS or ADDRESS:PORT; --tunnel-gateway,
  // KASM_TUNNEL_GATEWAY): the proxies of the installation's other servers dial it to reach sessions
  // of agents whose reverse tunnel this server holds. On several hosts: an address they reach (a
  // private network), never a public one.
  std::string tunnel_gateway = "127.0.0.1";
  // A client that takes no byte of what is sent to it for this long is disconnected
  // (HttpServerOptions::write_stall_timeout; --write-stall-seconds, KASM_WRITE_STALL_SECONDS; 0: never).
  int write_stall_seconds = 60;
  // Ended sessions (destroyed, failed) are deleted this many days after they ended
  // (--session-history-days, KASM_SESSION_HISTORY_DAYS; 0: kept for ever).
  int session_history_days = 90;
  // PEM file of the public key licences are verified with (KASM_LICENSE_PUBLIC_KEY,
  // --license-public-key); without one the community limits apply and no licence can be added.
  std::string license_public_key_file;
  // The share database (chat of shared sessions, events between servers):
  // redis://[:password@]host:port/db or rediss:// (KASM_REDIS_URL, --redis). Empty: in this
  // process only, which is enough for one server.
  std::string redis_url;
  // Directory of the web application's built assets (KASM_WEB_ROOT, --web-root).
  std::string web_root;

  // ---- isolation and exposure (docs/operations.md) ----
  // A separate origin for session content ("https://sessions.example.com:8443"; KASM_SESSION_ORIGIN,
  // --session-origin): the APIs hand out session URLs there, so a session's pages never run on the
  // control plane's origin. The name must reach this server; the control plane's own origin must
  // then be in allowed_origins for its pages to open desktops' WebSockets.
  std::string session_origin;
  // Origins besides the server's own whose pages may open session WebSockets
  // (KASM_ALLOWED_ORIGINS, comma-separated; --allowed-origin, repeatable).
  std::vector<std::string> allowed_origins;
  // Portal origins that may frame the control plane's pages, e.g. the session viewer
  // (KASM_FRAME_ANCESTORS, comma-separated; --frame-ancestor, repeatable). Default: none.
  std::vector<std::string> frame_ancestors;
  // Who sees /metrics and /readyz's details (KASM_OPS_ACCESS, --ops-access): "loopback" (default;
  // clients on 127.0.0.1/::1, or bearing the ops token), "token" (only requests bearing the ops
  // token, "Authorization: Bearer TOKEN", from KASM_OPS_TOKEN) or "open".
  std::string ops_access = "loopback";
  std::string ops_token;
  // Remote agents may report loopback upstreams (inside their publish_networks), for an agent on
  // the server's own host or tests on one machine (KASM_ALLOW_LOOPBACK_UPSTREAMS=1,
  // --allow-loopback-upstreams). The in-process agent needs no such permission.
  bool allow_loopback_upstreams = false;

  // The desktop gateway for RDP and SSH servers (KASM_GATEWAY, --gateway): "auto" (default) starts
  // kasm-gateway beside this server on loopback with a key in the data directory; "off" runs none
  // (such servers then cannot be opened); HOST:PORT uses one running elsewhere, which must hold the
  // installation's gateway key (<data-dir>/gateway.key, or KASM_GATEWAY_KEY_FILE / --gateway-key-file).
  std::string gateway = "auto";
  std::string gateway_key_file;

  // Subcommand "api-key create".
  std::string command;  // "" (serve) or "api-key-create"
  std::string api_key_name;
  bool api_key_admin = true;
};

// Parses argv (after the program name) and the environment. InvalidArgument with a message that
// names the bad flag; `--help` yields FailedPrecondition carrying the usage text.
Result<ServerConfig> parseConfig(const std::vector<std::string>& args);

std::string usage();

}  // namespace kasm::server
