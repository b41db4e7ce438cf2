// kasm-server: the session proxy's authorizer (who may open a desktop, remembered for a second),
// cutting a user's connections when they lose access, and /metrics.

#include "server_app.hpp"

namespace kasm::server {

// Prometheus text format. Counts come from the store, so every server of an installation reports
// the same cluster-wide figures; proxy counters are this process's own.
net::HttpResponse ServerApp::metrics() {
  std::string out;
  auto gauge = [&](const std::string& name, const std::string& help) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n";
  };
  gauge("kasm_sessions", "Sessions by state.");
  for (const auto& [state, name] : EnumNames<SessionState>::kValues) {
    auto n = repo_->count<Session>(spi::Query().where("state", std::string(name)));
    if (!n.ok()) return net::HttpResponse::text(503, "store unavailable: " + n.error().message() + "\n");
    out += "kasm_sessions{state=\"" + std::string(name) + "\"} " + std::to_string(*n) + "\n";
  }
  gauge("kasm_agents", "Agents by status.");
  for (const auto& [status, name] : EnumNames<AgentStatus>::kValues) {
    auto n = repo_->count<Agent>(spi::Query().where("status", std::string(name)));
    if (!n.ok()) return net::HttpResponse::text(503, "store unavailable: " + n.error().message() + "\n");
    out += "kasm_agents{status=\"" + std::string(name) + "\"} " + std::to_string(*n) + "\n";
  }
  const auto p = proxy_->stats();
  out += "# HELP kasm_proxy_requests_total Proxied HTTP requests.\n# TYPE kasm_proxy_requests_total counter\n";
  out += "kasm_proxy_requests_total " + std::to_string(p.requests) + "\n";
  out +=
      "# HELP kasm_proxy_rejected_total Requests refused before an upstream.\n# TYPE kasm_proxy_rejected_total "
      "counter\n";
  out += "kasm_proxy_rejected_total " + std::to_string(p.rejected) + "\n";
  out += "# HELP kasm_proxy_bytes_total Bytes through the proxy.\n# TYPE kasm_proxy_bytes_total counter\n";
  out += "kasm_proxy_bytes_total{direction=\"to_upstream\"} " + std::to_string(p.bytes_to_upstream) + "\n";
  out += "kasm_proxy_bytes_total{direction=\"to_client\"} " + std::to_string(p.bytes_to_client) + "\n";
  out +=
      "# HELP kasm_http_request_duration_seconds Time from request to response, by route class.\n"
      "# TYPE kasm_http_request_duration_seconds histogram\n";
  for (std::size_t i = 0; i < latency_.size(); ++i) {
    out += latency_[i].render("kasm_http_request_duration_seconds", kRouteClasses[i]);
  }
  out +=
      "# HELP kasm_session_starts_total Session requests through the APIs of this server.\n"
      "# TYPE kasm_session_starts_total counter\n";
  out += "kasm_session_starts_total{result=\"accepted\"} " + std::to_string(session_starts_ok_.load()) + "\n";
  out += "kasm_session_starts_total{result=\"refused\"} " + std::to_string(session_starts_refused_.load()) + "\n";
  out +=
      "# HELP kasm_proxy_input_dropped_total Keyboard, pointer, clipboard and resize messages of view-only viewers "
      "dropped by the proxy.\n# TYPE kasm_proxy_input_dropped_total counter\n";
  out += "kasm_proxy_input_dropped_total " + std::to_string(p.input_dropped) + "\n";
  gauge("kasm_proxy_open_tunnels", "WebSocket tunnels and VNC bridges open now.");
  out += "kasm_proxy_open_tunnels " + std::to_string(p.open_tunnels) + "\n";
  for (const auto& m : store_->metrics()) {
    gauge(m.name, m.help);
    out += m.name + " " + std::to_string(m.value) + "\n";
  }
  return net::HttpResponse::text(200, std::move(out), "text/plain; version=0.0.4");
}

std::optional<Result<net::ProxyTarget>> ServerApp::authorizeProxyQuick(const net::ProxyAuthRequest& r) {
  // The token is verified on every request and upgrade (a signature check, no I/O); what the store
  // says about the session and its user (owner, state, upstream, the user's revocation time) is
  // remembered for a second, so a page's burst of requests costs one store read and the rest stay
  // on the I/O thread. A session that ends is cut by closeSession() from the background loop; a
  // user who loses access is cut at once by revokeUserAccess().
  if (r.token.empty()) return Result<net::ProxyTarget>(unauthenticated("a session access token is required"));
  auto claims = signer_->verifyFor(r.token, r.session);
  if (!claims.ok()) return Result<net::ProxyTarget>(claims.error());
  std::lock_guard lock(proxy_cache_mutex_);
  auto session = proxy_cache_.find(r.session);
  if (session == proxy_cache_.end()) return std::nullopt;
  auto it = session->second.find(claims->user_id);
  if (it == session->second.end() || it->second.until <= std::chrono::steady_clock::now()) return std::nullopt;
  if (!it->second.access.admits(*claims)) {
    return Result<net::ProxyTarget>(unauthenticated("this access token was revoked; reopen the session"));
  }
  return Result<net::ProxyTarget>(it->second.target);
}

Result<net::ProxyTarget> ServerApp::authorizeProxy(const net::ProxyAuthRequest& r) {
  // Reached when authorizeProxyQuick found nothing remembered (the proxy always asks it first):
  // read the session and its user.
  const auto now = std::chrono::steady_clock::now();
  KASM_ASSIGN_OR_RETURN(api::SessionAccess access,
                        api::authorizeSessionAccess(*manager_, *store_, *signer_, r.token, r.session));
  KASM_ASSIGN_OR_RETURN(net::ProxyTarget target, proxyTargetOf(access));
  {
    std::lock_guard lock(proxy_cache_mutex_);
    if (proxy_cache_.size() > 10000) proxy_cache_.clear();
    auto& viewers = proxy_cache_[r.session];
    if (viewers.size() > 1000) viewers.clear();
    // The key first: in `a[k] = v` the right side is evaluated before the left.
    const UserId user = access.user;
    viewers[user] = {target, std::move(access), now + std::chrono::seconds(1)};
  }
  return target;
}

void ServerApp::revokeUserAccess(const UserId& user) {
  auto sessions = manager_->listSessions(spi::Query().where("user_id", user.str()));
  if (!sessions.ok()) {
    logLine("revoke_failed", "user " + user.str() + ": " + sessions.error().toString());
    return;
  }
  std::lock_guard lock(proxy_cache_mutex_);
  for (const auto& s : *sessions) {
    proxy_cache_.erase(s.id);
    if (proxy_) proxy_->closeSession(s.id);
  }
  // And whatever they were watching of other people's sessions.
  for (auto& [session, viewers] : proxy_cache_) viewers.erase(user);
  if (proxy_) proxy_->closeUser(user);
}

}  // namespace kasm::server
