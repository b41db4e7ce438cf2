// kasm-server's end of agents' reverse tunnels (kasm/tunnel): an agent started with --tunnel opens a
// WebSocket to /api/agent/v1/tunnel (through the balancer, like its other calls); this server's
// TunnelHub holds it and records in the agent's row where its gateway listens; the proxy of any
// server reaches that agent's sessions through the gateway (relayThroughTunnel).

#include "kasm/auth/secret.hpp"
#include "kasm/tunnel/protocol.hpp"
#include "server_app.hpp"

namespace kasm::server {

Result<void> ServerApp::startTunnelHub(const std::string& installation_key) {
  tunnel::TunnelHubOptions o;
  std::string address = config_.tunnel_gateway;
  std::uint16_t port = 0;
  // ADDRESS, ADDRESS:PORT, [V6] or [V6]:PORT.
  const auto close = address.rfind(']');
  const auto colon = address.rfind(':');
  if (colon != std::string::npos && (close == std::string::npos ? address.find(':') == colon : colon > close)) {
    const int p = std::atoi(address.c_str() + colon + 1);
    if (p < 0 || p > 65535) return invalidArgument("--tunnel-gateway: a port is 0-65535");
    port = static_cast<std::uint16_t>(p);
    address.resize(colon);
  }
  if (address.size() > 2 && address.front() == '[' && address.back() == ']')
    address = address.substr(1, address.size() - 2);
  if (address == "0.0.0.0" || address == "::") {
    return invalidArgument("--tunnel-gateway must name the address other servers dial, not a wildcard");
  }
  o.gateway_address = address;
  o.gateway_port = port;
  o.key = tunnel::deriveTunnelKey(installation_key);
  o.log = [](std::string_view event, std::string_view detail) { logLine(std::string(event), std::string(detail)); };
  o.on_detached = [this](const AgentId& id) { (void)agent_pool_->post([this, id] { tunnelDetached(id); }); };
  tunnel_key_ = o.key;
  KASM_ASSIGN_OR_RETURN(tunnel_hub_, tunnel::TunnelHub::start(std::move(o)));
  return {};
}

// On the agent pool: an upgrade to /api/agent/v1/tunnel, with the agent's id and token.
Result<net::WebSocketHandlers> ServerApp::openAgentTunnel(const net::HttpRequest& req,
                                                          std::shared_ptr<net::WebSocket> socket) {
  KASM_ASSIGN_OR_RETURN(auto id, AgentId::parse(req.headers.find("X-Kasm-Agent-Id").value_or(""), "X-Kasm-Agent-Id"));
  const std::string_view token =
      auth::authorizationCredentials(req.headers.find("Authorization").value_or(""), "Bearer").value_or("");
  auto agent = repo_->get<Agent>(id.str());
  if (!agent.ok() || token.empty() || !auth::verifySecret(token, agent->value.token_hash)) {
    return unauthenticated("unknown agent or wrong token");
  }
  if (agent->value.token_expires_at) {
    return unauthenticated("a registration token only checks in (which exchanges it for a lasting one)");
  }
  noteAgentBoot(id, std::string(req.headers.find("X-Kasm-Boot-Id").value_or("")));
  auto handlers = tunnel_hub_->attach(id, std::move(socket));
  // Every server's proxy now reaches this agent's sessions through this server's gateway.
  if (auto r = manager_->setAgentTunnel(id, tunnel_hub_->gatewayEndpoint()); !r.ok()) {
    logLine("tunnel_record_failed", id.str() + ": " + r.error().toString());
  }
  {
    std::lock_guard lock(tunnel_cache_mutex_);
    tunnel_cache_.erase(id);
  }
  logLine("tunnel_attached", id.str() + " via " + tunnel_hub_->gatewayEndpoint());
  return handlers;
}

void ServerApp::tunnelDetached(const AgentId& id) {
  // Reattached here meanwhile: the record is right as it is.
  if (tunnel_hub_->holds(id)) return;
  // Only our own record: the agent may already hold a tunnel on another server.
  if (auto r = manager_->setAgentTunnel(id, "", tunnel_hub_->gatewayEndpoint()); !r.ok()) {
    logLine("tunnel_record_failed", id.str() + ": " + r.error().toString());
  }
  std::lock_guard lock(tunnel_cache_mutex_);
  tunnel_cache_.erase(id);
}

// On the proxy's pool (the authorizer). The agent's row is read at most once per second per agent.
void ServerApp::relayThroughTunnel(const AgentId& agent, net::ProxyTarget& target) {
  const auto now = std::chrono::steady_clock::now();
  std::string gateway;
  bool known = false;
  {
    std::lock_guard lock(tunnel_cache_mutex_);
    if (auto it = tunnel_cache_.find(agent); it != tunnel_cache_.end() && it->second.second > now) {
      gateway = it->second.first;
      known = true;
    }
  }
  if (!known) {
    auto a = repo_->get<Agent>(agent.str());
    gateway = a.ok() ? a->value.tunnel_gateway : std::string();
    std::lock_guard lock(tunnel_cache_mutex_);
    if (tunnel_cache_.size() > 100000) tunnel_cache_.clear();
    tunnel_cache_[agent] = {gateway, now + std::chrono::seconds(1)};
  }
  if (gateway.empty() || target.upstream.empty()) return;
  target.relay = gateway;
  // Long enough for a kept upstream connection's whole life is not needed: the seal is checked
  // once, when the stream opens.
  target.relay_preamble =
      tunnel::sealOpenRequest(tunnel_key_, agent, target.upstream, clock_.now() + std::chrono::minutes(10));
  target.relay_identity = "tunnel|" + agent.str() + "|" + target.upstream;
}

}  // namespace kasm::server
