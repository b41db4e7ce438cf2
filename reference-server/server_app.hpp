#pragma once

// kasm-server as a program: store, manager, the in-process agent on the local Docker engine, the
// developer API and the session proxy on one HTTP(S) server, and a background loop. Built on the
// public library API only.

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "image_puller.hpp"
#include "kasm/api/developer_api.hpp"
#include "kasm/api/rest_api.hpp"
#include "kasm/api/session_access.hpp"
#include "kasm/auth/access_token.hpp"
#include "kasm/autoscale/autoscaler.hpp"
#include "kasm/cluster/agent_commands.hpp"
#include "kasm/cluster/membership.hpp"
#include "kasm/manager/manager.hpp"
#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"
#include "kasm/net/static_files.hpp"
#include "kasm/share/chat.hpp"
#include "kasm/share/sharing.hpp"
#include "kasm/spi/share_database.hpp"
#include "kasm/store/repository.hpp"
#include "kasm/tunnel/tunnel_hub.hpp"
#include "latency_histogram.hpp"
#include "server_config.hpp"
#include "server_gateway.hpp"
#include "session_viewer.hpp"

namespace kasm::agent {
class LocalAgent;
class RemoteAgentLink;
}  // namespace kasm::agent

namespace kasm::server {

// One log line on stdout: {"event": ..., "detail": ...}.
void logLine(const std::string& event, const std::string& detail);
// Reads a setting, or creates it with `make()` when missing (first writer wins across servers).
Result<std::string> settingOr(Repository& repo, Clock& clock, const std::string& key,
                              const std::function<std::string()>& make);

// Opens the store the configuration names: PostgreSQL for a URL, else SQLite in the data directory.
Result<std::unique_ptr<spi::Store>> openStore(const ServerConfig& config);

// Creates an API key with the given name (admin permissions) and returns {"api_key", "api_key_secret"}
// as JSON. The secret is shown only here.
Result<std::string> createApiKey(spi::Store& store, Clock& clock, const std::string& name);

class ServerApp {
 public:
  static Result<std::unique_ptr<ServerApp>> create(const ServerConfig& config);
  ~ServerApp();

  // Listens and starts the background loop. Prints the URL (and, on first start, the admin
  // credentials) to stdout.
  Result<void> start();
  // Graceful: stops accepting, lets requests finish, stops the loop. Session state is all in the
  // store, so nothing is lost.
  void stop();
  // SIGTERM: /readyz answers 503 "draining" and this server hands the zones it leads to the others
  // at once; it keeps serving for drain_seconds (a balancer stops sending it traffic), then stops.
  void drain();
  std::string url() const;

 private:
  ServerApp() = default;
  // `key` is the installation's shared secret (the access_token_key setting).
  Result<void> bootstrap(const std::string& key);
  Result<void> setUpLocalAgent();
  Result<void> registerBuiltInWorkspaces(const GroupId& everyone);
  void backgroundLoop();
  void checkInLocalAgent();
  // reconcileAgent() with what it did (or why it could not) in the log.
  void reconcileAgent(const AgentId& id);
  // The same for a remote agent, on the agent pool unless one already runs for it.
  void reconcileAgentSoon(const AgentId& id);
  net::HttpHandler routes();
  net::HttpResponse dispatch(const net::HttpRequest& req);
  net::HttpResponse agentApi(const net::HttpRequest& req);
  // Reverse tunnels (server_tunnel.cpp): the hub and its gateway, the agents' WebSocket route, and
  // the proxy's way to a session whose agent holds one.
  Result<void> startTunnelHub(const std::string& installation_key);
  Result<net::WebSocketHandlers> openAgentTunnel(const net::HttpRequest& req, std::shared_ptr<net::WebSocket> socket);
  void tunnelDetached(const AgentId& id);
  void relayThroughTunnel(const AgentId& agent, net::ProxyTarget& target);
  std::shared_ptr<agent::RemoteAgentLink> remoteLink(const AgentId& id);
  // Tells the agent's link which process speaks; a restart fails its lost commands and reconciles it.
  void noteAgentBoot(const AgentId& id, const std::string& boot_id);
  net::HttpResponse metrics();
  // Whether a request may see /metrics and /readyz's details (ServerConfig::ops_access).
  bool opsAllowed(const net::HttpRequest& req) const;
  // Content-Security-Policy (frame-ancestors from the configuration) and friends.
  std::string controlPlanePolicy() const;
  void addControlPlaneHeaders(net::HttpResponse& res) const;
  net::HttpResponse rest(const net::HttpRequest& req);
  Result<net::ProxyTarget> authorizeProxy(const net::ProxyAuthRequest& request);
  // The part of authorizeProxy that needs no store read: on the I/O thread, nullopt on a miss.
  std::optional<Result<net::ProxyTarget>> authorizeProxyQuick(const net::ProxyAuthRequest& request);
  // Called by the APIs when a user lost access: forgets and closes the proxy connections of every
  // session of theirs, so the next request is authorized afresh (and refused).
  void revokeUserAccess(const UserId& user);

  // ---- sharing (server_sharing.cpp) ----
  // The share database (Redis or in-process), the sharing rules, the chat, and the events that
  // carry viewer changes to every server of the installation.
  Result<void> setUpSharing(const std::string& key);
  // A viewer's rights changed or ended (here or on another server): forget what the proxy
  // remembered and change or close their live connections.
  // Closes a session's connections on this server; `publish` tells the installation's others.
  void sessionClosed(const SessionId& session, bool publish);
  // Tells the installation's other servers (the share database's events); a lost event is logged.
  void publishEvent(const std::string& event);
  void applyViewerChange(const share::ViewerChange& change);
  Result<net::ProxySocketHandlers> openChat(const net::ProxyAuthRequest& request, const net::ProxyTarget& target,
                                            std::shared_ptr<net::ProxySocket> socket);
  // A session ended: its share, permissions and chat go.
  void endSharing(const Session& session);
  // What the authorizer decided a moment ago about `user` on `session` (owner, name), if remembered.
  std::optional<api::SessionAccess> rememberedAccess(const SessionId& session, const UserId& user);
  // The proxy's target and rights for an authorized viewer.
  Result<net::ProxyTarget> proxyTargetOf(const api::SessionAccess& access);

  // ---- file transfer (server_files.cpp), served by the proxy at <session>/kasm/files ----
  // How large an upload's body may be (the owner's group limit), or why it is refused.
  Result<std::uint64_t> admitFileRequest(const net::ProxyTarget& target, const SessionId& session,
                                         const net::ProxyAppRequest& request);
  Result<net::ProxyPage> serveFileRequest(const net::ProxyTarget& target, const SessionId& session,
                                          const net::ProxyAppRequest& request);

  // The session's sound, a WebSocket at <session>/kasm/audio: a thread per listener streams the
  // desktop's PCM (Manager::streamAudio) into it.
  Result<net::ProxySocketHandlers> openAudio(const net::ProxyAuthRequest& request, const net::ProxyTarget& target,
                                             std::shared_ptr<net::ProxySocket> socket);
  // The desktop's microphone, a WebSocket at <session>/kasm/microphone: binary messages of 24 kHz
  // mono s16le PCM go to the desktop's default source (Manager::openMicrophone), from a thread.
  Result<net::ProxySocketHandlers> openMicrophone(const net::ProxyAuthRequest& request, const net::ProxyTarget& target,
                                                  std::shared_ptr<net::ProxySocket> socket);
  // Asks every audio stream (sound and microphone) to end and waits for them a moment (stop()).
  void stopAudio();

  // ---- fixed servers (server_gateway.cpp) ----
  // Starts kasm-gateway beside this server (ServerConfig::gateway), or takes the one configured.
  Result<void> setUpGateway(const std::string& key);
  // Where a fixed server's session goes: VNC with the server's password, KasmVNC over HTTPS, RDP and
  // SSH through the gateway with a sealed request.
  Result<net::ProxyTarget> serverTarget(const api::SessionAccess& access, net::ProxyTarget target);

  ServerConfig config_;
  SystemClock clock_;
  SeededRandom random_;
  std::unique_ptr<spi::Store> store_;
  std::unique_ptr<Repository> repo_;
  std::unique_ptr<Manager> manager_;
  std::optional<auth::AccessTokenSigner> signer_;
  std::unique_ptr<api::DeveloperApi> developer_api_;
  std::optional<auth::WebSessionSigner> web_signer_;
  std::unique_ptr<api::RestApi> rest_api_;
  // Autoscaling: the VM providers (command, aws-ec2) and the loop (server_agents.cpp).
  spi::VmProviderRegistry vm_providers_;
  std::string session_secret_key_;  // ManagerOptions::session_secret_key: seals provider secrets too.
  std::unique_ptr<autoscale::Autoscaler> autoscaler_;
  Result<void> startAutoscaler();
  void tickAutoscaler(const std::set<ZoneId>& zones);
  std::optional<net::StaticFiles> web_;
  std::optional<SessionViewer> viewer_;    // What kasm_url shows for a desktop.
  std::optional<SessionViewer> terminal_;  // And for an SSH server's session.
  std::unique_ptr<spi::ContainerRuntime> runtime_;
  std::shared_ptr<agent::LocalAgent> local_agent_;
  std::unique_ptr<ImagePuller> image_puller_;  // Keeps the local engine's workspace images pulled.
  AgentId local_agent_id_;
  std::string local_agent_token_;
  bool local_engine_failed_ = false;  // The last check-in of the local agent failed (background loop only).
  std::unique_ptr<net::BlockingPool> pool_;
  // Session starts continue here after the API answered (202); apart from pool_ so a burst of
  // starts can never leave no thread to answer requests.
  std::unique_ptr<net::BlockingPool> start_pool_;
  // Remote agents (kasm-agent) dial in: their long polls wait here, one thread each.
  std::unique_ptr<net::BlockingPool> agent_pool_;
  std::mutex reconciling_mutex_;
  std::set<AgentId> reconciling_;  // Remote agents whose reconciliation runs now.
  std::string last_teardown_log_;  // The background loop's last "teardowns_pending" line, and when.
  int last_teardown_tick_ = 0;
  std::unique_ptr<tunnel::TunnelHub> tunnel_hub_;
  std::string tunnel_key_;
  std::mutex tunnel_cache_mutex_;
  // Agent -> its tunnel's gateway ("" for none), as read from the store, and until when to trust it.
  std::unordered_map<AgentId, std::pair<std::string, std::chrono::steady_clock::time_point>> tunnel_cache_;
  std::mutex remote_mutex_;
  std::map<AgentId, std::shared_ptr<agent::RemoteAgentLink>> remote_links_;
  // Scale-out (PostgreSQL): commands for remote agents, and for this server's own agent when
  // another server asks, go through the store, so any server may command an agent that polls any
  // other (kasm/cluster/agent_commands.hpp). Null on SQLite (one server).
  std::unique_ptr<cluster::AgentCommands> agent_commands_;
  std::thread local_commands_thread_;  // Serves the others' commands for the local agent.
  void serveLocalAgentCommands();
  agent::CommandAgentLink::UpstreamCheck upstreamCheck(const AgentId& id);
  net::HttpResponse agentPoll(const AgentId& id, const std::string& boot_id,
                              const std::shared_ptr<agent::RemoteAgentLink>& link);
  // authorizeProxy()'s short memory of running sessions.
  struct CachedTarget {
    net::ProxyTarget target;
    api::SessionAccess access;  // Whose it is and which tokens it still admits.
    std::chrono::steady_clock::time_point until;
  };
  std::mutex proxy_cache_mutex_;
  // By session, then by viewer (the owner and the people it is shared with).
  std::unordered_map<SessionId, std::unordered_map<UserId, CachedTarget>> proxy_cache_;
  std::unique_ptr<spi::ShareDatabase> share_db_;
  std::unique_ptr<share::Sharing> sharing_;
  std::unique_ptr<share::ChatService> chat_;
  // Events between the servers of the installation: Redis's with --redis, else PostgreSQL's
  // LISTEN/NOTIFY on a PostgreSQL store, else this process only.
  std::unique_ptr<spi::EventChannel> event_channel_;
  std::unique_ptr<spi::Subscription> events_;
  std::string instance_id_;  // Tells this server's own events from the others'.
  std::unique_ptr<GatewayProcess> gateway_process_;
  std::string gateway_address_;  // A gateway elsewhere (--gateway HOST:PORT).
  std::string gateway_key_;
  std::shared_ptr<net::SessionProxy> proxy_;
  std::unique_ptr<net::HttpServer> http_;
  std::atomic<bool> stopping_{false};
  // Request durations by route class: rest, developer_api, web, operations.
  static constexpr const char* kRouteClasses[] = {"rest", "developer_api", "web", "operations"};
  std::array<LatencyHistogram, 4> latency_;
  std::atomic<std::uint64_t> session_starts_ok_{0}, session_starts_refused_{0};
  std::thread loop_;
  std::optional<TimePoint> last_ended_pass_;  // The background loop's last pass over ended sessions.
  // Scale-out: this server's membership (heartbeat, zone leases) and the thread that beats it.
  std::unique_ptr<cluster::Membership> membership_;
  ManagerNodeId node_id_;  // This process's, in the managers table and as the origin of its events.
  std::thread cluster_thread_;
  std::atomic<bool> draining_{false};
  void clusterLoop();
  std::set<ZoneId> leadingZones() const;
  // Audio streams running now, each with its stop flag.
  std::mutex audio_mutex_;
  std::condition_variable audio_done_;
  std::set<std::shared_ptr<std::atomic<bool>>> audio_streams_;
  std::string csp_;  // controlPlanePolicy(), built in start() before any request.
};

}  // namespace kasm::server
