// kasm-server: session sharing. The share database (Redis with --redis, else in this process),
// kasm::share::Sharing for the rules, the chat served by the proxy at /desktop/<session>/kasm/chat,
// and viewer changes applied to the proxy here and, through the share database's events, on every
// other server of the installation.

#include <boost/json.hpp>

#include "kasm/auth/secret.hpp"
#include "kasm/share/memory_share_database.hpp"
#include "kasm/share/redis_share_database.hpp"
#include "kasm/share/share_events.hpp"
#include "kasm/store/postgres_events.hpp"
#include "server_app.hpp"

namespace kasm::server {

namespace json = boost::json;

namespace {

std::string viewerEvent(const std::string& origin, const share::ViewerChange& c) {
  json::object o;
  o["type"] = "viewer";
  o["origin"] = origin;
  o["session"] = c.session.str();
  o["user"] = c.user.str();
  o["access"] = c.access ? json::value(std::string(enumName(*c.access))) : json::value(nullptr);
  return json::serialize(o);
}

// A string member of an event ("" when absent or not a string).
std::string member(const json::object& o, std::string_view k) {
  auto* f = o.if_contains(k);
  return f && f->is_string() ? std::string(f->get_string()) : std::string();
}

// An event another server published: its object, or nullopt for malformed text and this server's own.
std::optional<json::object> othersEvent(std::string_view text, const std::string& own_origin) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object() || member(v.get_object(), "origin") == own_origin) return std::nullopt;
  return std::move(v.as_object());
}

std::optional<share::ViewerChange> parseViewerEvent(const json::object& o) {
  auto session = SessionId::parse(member(o, "session"), "session");
  auto user = UserId::parse(member(o, "user"), "user");
  if (!session.ok() || !user.ok()) return std::nullopt;
  share::ViewerChange c{*session, *user, std::nullopt};
  if (auto* a = o.if_contains("access"); a && a->is_string()) c.access = enumFromName<ShareAccess>(a->get_string());
  return c;
}

std::string closedEvent(const std::string& origin, const SessionId& session) {
  return json::serialize(json::object{{"type", "session_closed"}, {"origin", origin}, {"session", session.str()}});
}

}  // namespace

void ServerApp::sessionClosed(const SessionId& session, bool publish) {
  {
    std::lock_guard lock(proxy_cache_mutex_);
    proxy_cache_.erase(session);
  }
  if (proxy_) proxy_->closeSession(session);
  if (publish) publishEvent(closedEvent(instance_id_, session));
}

void ServerApp::publishEvent(const std::string& event) {
  if (!event_channel_) return;
  if (auto r = event_channel_->publish(event); !r.ok()) logLine("event_lost", r.error().message());
}

Result<void> ServerApp::setUpSharing(const std::string& key) {
  instance_id_ = node_id_.str();
  if (config_.redis_url.empty()) {
    share_db_ = std::make_unique<MemoryShareDatabase>(clock_);
  } else {
    RedisShareDatabaseOptions ro;
    ro.url = config_.redis_url;
    KASM_ASSIGN_OR_RETURN(share_db_, openRedisShareDatabase(ro, clock_));
  }
  KASM_ASSIGN_OR_RETURN(sharing_, share::Sharing::create(*manager_, *store_, clock_,
                                                         {.secret_key = auth::hmacSha256(key, "kasm share key")}));
  chat_ = std::make_unique<share::ChatService>(*share_db_, clock_);
  // A change made through this server's APIs is applied here at once and told to the others.
  sharing_->setListener([this](const share::ViewerChange& c) {
    applyViewerChange(c);
    publishEvent(viewerEvent(instance_id_, c));
  });
  if (config_.redis_url.empty() && store_->backendName() == "postgresql") {
    PostgresEventOptions po;
    po.url = config_.database_url;
    KASM_ASSIGN_OR_RETURN(event_channel_, openPostgresEventChannel(po));
  } else {
    event_channel_ = shareDatabaseEvents(*share_db_);
  }
  auto events = event_channel_->subscribe([this](std::string_view text) {
    const auto event = othersEvent(text, instance_id_);
    if (!event) return;
    const std::string type = member(*event, "type");
    if (type == "viewer") {
      if (auto c = parseViewerEvent(*event)) applyViewerChange(*c);
    } else if (type == "session_closed") {
      if (auto s = SessionId::parse(member(*event, "session"), "session"); s.ok()) sessionClosed(*s, false);
    } else if (agent_commands_ && type == "agent_command") {
      agent_commands_->onEvent(type, member(*event, "agent"));
    } else if (agent_commands_ && type == "agent_result") {
      agent_commands_->onEvent(type, member(*event, "id"));
    }
  });
  if (!events.ok()) return events.error().withContext("the events between servers");
  events_ = std::move(*events);
  return {};
}

void ServerApp::applyViewerChange(const share::ViewerChange& c) {
  {
    std::lock_guard lock(proxy_cache_mutex_);
    if (auto it = proxy_cache_.find(c.session); it != proxy_cache_.end()) it->second.erase(c.user);
  }
  if (c.access && chat_) chat_->setAccess(c.session, c.user.str(), std::string(enumName(*c.access)));
  if (!proxy_) return;
  if (!c.access) {
    proxy_->closeViewer(c.session, c.user);
  } else {
    proxy_->setViewerAccess(
        c.session, c.user,
        *c.access == ShareAccess::kReadWrite ? net::ViewerAccess::kFull : net::ViewerAccess::kViewOnly);
  }
}

std::optional<api::SessionAccess> ServerApp::rememberedAccess(const SessionId& session, const UserId& user) {
  std::lock_guard lock(proxy_cache_mutex_);
  auto s = proxy_cache_.find(session);
  if (s == proxy_cache_.end()) return std::nullopt;
  auto u = s->second.find(user);
  if (u == s->second.end()) return std::nullopt;
  return u->second.access;
}

Result<net::ProxyTarget> ServerApp::proxyTargetOf(const api::SessionAccess& access) {
  net::ProxyTarget target{access.upstream, access.protocol, access.user};
  target.access = access.view_only ? net::ViewerAccess::kViewOnly : net::ViewerAccess::kFull;
  if (access.server_id) return serverTarget(access, std::move(target));
  // The proxy answers the desktop's VNC authentication itself: no browser holds the password.
  if (access.protocol == SessionProtocol::kVnc)
    target.vnc_password = manager_->vncPassword(access.session).value_or("");
  // An agent behind NAT: through its reverse tunnel.
  if (access.agent_id) relayThroughTunnel(*access.agent_id, target);
  return target;
}

Result<net::ProxySocketHandlers> ServerApp::openChat(const net::ProxyAuthRequest& request,
                                                     const net::ProxyTarget& target,
                                                     std::shared_ptr<net::ProxySocket> socket) {
  spi::ChatMember member;
  member.member_id = auth::generateToken(8);
  member.user_id = target.user.str();
  member.username = target.user.str();
  member.access = target.access == net::ViewerAccess::kViewOnly ? "r" : "rw";
  // The authorizer read the user a moment ago (on the pool): their name is remembered with it.
  if (auto access = rememberedAccess(request.session, target.user)) {
    member.username = access->username;
    if (access->owner) member.access = "owner";
  }
  auto conn = chat_->connect(request.session, std::move(member),
                             [socket](std::string text) { (void)socket->send(std::move(text)); });
  net::ProxySocketHandlers h;
  h.on_message = [conn](std::string_view text) { conn->receive(text); };
  h.on_close = [conn] { conn->leave(); };
  return h;
}

void ServerApp::endSharing(const Session& s) {
  if (!s.share && s.permissions.empty()) return;
  if (auto r = sharing_->endSession(s.id); !r.ok()) {
    logLine("share_end_failed", "session " + s.id.str() + ": " + r.error().toString());
    return;
  }
  chat_->endSession(s.id);
}

}  // namespace kasm::server
