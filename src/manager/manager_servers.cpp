// Fixed servers and server pools: their rows (secrets sealed), sessions on them (placement by
// sched::chooseServer, slots kept on the server's row with compare-and-set), their connection
// details for the proxy, and the status that connection checks report.

#include <boost/json.hpp>

#include "kasm/auth/seal.hpp"
#include "kasm/sched/server_choice.hpp"
#include "manager/manager_impl.hpp"

namespace kasm {
namespace {

std::string hostPort(const std::string& host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos && !host.starts_with("[");
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// Kasm's placeholder: the launching user's own name.
std::string resolveUsername(std::string name, const std::string& username) {
  static constexpr std::string_view kSso = "{sso_username}";
  for (auto p = name.find(kSso); p != std::string::npos; p = name.find(kSso, p + username.size())) {
    name.replace(p, kSso.size(), username);
  }
  return name;
}

template <class T>
Result<bool> exists(Repository& repo, const std::string& id) {
  auto r = repo.get<T>(id);
  if (r.ok()) return true;
  if (r.error().code() == ErrorCode::kNotFound) return false;
  return r.error();
}

}  // namespace

Result<std::string> Manager::Impl::sealSecret(std::string_view plain, std::string_view purpose) const {
  if (options.session_secret_key.size() < 32) {
    return failedPrecondition("fixed server credentials need the manager's session_secret_key to seal them");
  }
  return auth::seal(options.session_secret_key, purpose, plain);
}

Result<std::string> Manager::Impl::unsealSecret(std::string_view sealed, std::string_view purpose) const {
  if (sealed.empty()) return std::string();
  return auth::unseal(options.session_secret_key, purpose, sealed);
}

Result<Server> Manager::upsertServer(Server server, const ServerSecrets& secrets) {
  auto& im = *impl_;
  if (server.id.empty()) server.id = ServerId::generate();
  KASM_ASSIGN_OR_RETURN(bool zone_exists, exists<Zone>(im.repo, server.zone_id.str()));
  if (!zone_exists) return notFound("zone " + server.zone_id.str() + " does not exist");
  if (server.pool_id) {
    KASM_ASSIGN_OR_RETURN(bool pool_exists, exists<ServerPool>(im.repo, server.pool_id->str()));
    if (!pool_exists) return notFound("server pool " + server.pool_id->str() + " does not exist");
  }
  std::optional<std::string> password, key;
  if (secrets.password) {
    if (secrets.password->empty()) {
      password = std::string();
    } else {
      KASM_ASSIGN_OR_RETURN(password, im.sealSecret(*secrets.password));
    }
  }
  if (secrets.private_key) {
    if (secrets.private_key->empty()) {
      key = std::string();
    } else {
      KASM_ASSIGN_OR_RETURN(key, im.sealSecret(*secrets.private_key));
    }
  }
  for (int attempt = 0; attempt < im.options.max_cas_retries; ++attempt) {
    Server next = server;
    auto cur = im.repo.get<Server>(server.id.str());
    if (!cur.ok() && cur.error().code() != ErrorCode::kNotFound) return cur.error();
    // What the server keeps for itself: never taken from the caller.
    if (cur.ok()) {
      next.slots = cur->value.slots;
      next.status = cur->value.status;
      next.status_reason = cur->value.status_reason;
      next.last_checked_at = cur->value.last_checked_at;
      next.last_seen_at = cur->value.last_seen_at;
      next.created_at = cur->value.created_at;
      next.connection_password_sealed = cur->value.connection_password_sealed;
      next.connection_private_key_sealed = cur->value.connection_private_key_sealed;
    } else {
      next.slots.clear();
      next.status = ServerStatus::kUnknown;
      next.status_reason.clear();
      next.last_checked_at.reset();
      next.last_seen_at.reset();
      next.created_at = im.clock.now();
      next.connection_password_sealed.clear();
      next.connection_private_key_sealed.clear();
    }
    if (password) {
      next.connection_password_sealed = *password;
      // A new password deserves a new check (a refused one is not retried until it changes).
      next.status = ServerStatus::kUnknown;
      next.status_reason.clear();
    }
    if (key) next.connection_private_key_sealed = *key;
    KASM_RETURN_IF_ERROR(next.validate());
    if (next.assigned_user_id && (!cur.ok() || cur->value.assigned_user_id != next.assigned_user_id)) {
      KASM_ASSIGN_OR_RETURN(bool user_exists, exists<User>(im.repo, next.assigned_user_id->str()));
      if (!user_exists) return notFound("user " + next.assigned_user_id->str() + " does not exist");
    }
    auto w = cur.ok() ? im.repo.update(next, cur->version) : im.repo.insert(next);
    if (w.ok()) return next;
    if (w.error().code() != ErrorCode::kAborted && w.error().code() != ErrorCode::kAlreadyExists) return w.error();
  }
  return aborted("server " + server.id.str() + " kept changing");
}

Result<void> Manager::removeServer(const ServerId& id) {
  auto& im = *impl_;
  KASM_ASSIGN_OR_RETURN(auto cur, im.repo.get<Server>(id.str()));
  if (!cur.value.slots.empty()) {
    return failedPrecondition("server " + cur.value.friendly_name + " still serves " +
                              std::to_string(cur.value.slots.size()) +
                              " session(s); disable it so that it drains, then remove it");
  }
  return im.repo.remove<Server>(id.str(), cur.version);
}

Result<ServerPool> Manager::upsertServerPool(ServerPool pool) {
  auto& im = *impl_;
  if (pool.id.empty()) pool.id = ServerPoolId::generate();
  auto cur = im.repo.get<ServerPool>(pool.id.str());
  pool.created_at = cur.ok() ? cur->value.created_at : im.clock.now();
  KASM_RETURN_IF_ERROR(pool.validate());
  if (cur.ok()) {
    KASM_RETURN_IF_ERROR(im.repo.update(pool, cur->version));
  } else {
    KASM_RETURN_IF_ERROR(im.repo.insert(pool));
  }
  return pool;
}

Result<void> Manager::removeServerPool(const ServerPoolId& id) {
  auto& im = *impl_;
  KASM_ASSIGN_OR_RETURN(auto servers, im.repo.count<Server>(spi::Query().where("pool_id", id.str())));
  if (servers > 0)
    return failedPrecondition("server pool " + id.str() + " still has " + std::to_string(servers) + " servers");
  KASM_ASSIGN_OR_RETURN(auto workspaces, im.repo.list<Workspace>());
  for (const auto& w : workspaces) {
    if (w.value.server_pool_id == id) {
      return failedPrecondition("server pool " + id.str() + " is used by workspace " + w.value.friendly_name);
    }
  }
  return im.repo.remove<ServerPool>(id.str());
}

Result<Server> Manager::assignUserServer(const ServerId& id, std::optional<UserId> user) {
  auto& im = *impl_;
  if (user) {
    KASM_ASSIGN_OR_RETURN(bool exists, exists<User>(im.repo, user->str()));
    if (!exists) return notFound("user " + user->str() + " does not exist");
  }
  for (int attempt = 0; attempt < im.options.max_cas_retries; ++attempt) {
    KASM_ASSIGN_OR_RETURN(auto cur, im.repo.get<Server>(id.str()));
    cur.value.assigned_user_id = user;
    auto w = im.repo.update(cur.value, cur.version);
    if (w.ok()) return cur.value;
    if (w.error().code() != ErrorCode::kAborted) return w.error();
  }
  return aborted("server " + id.str() + " kept changing");
}

Result<Server> Manager::recordServerCheck(const ServerId& id, bool answered, std::string reason) {
  auto& im = *impl_;
  for (int attempt = 0; attempt < im.options.max_cas_retries; ++attempt) {
    KASM_ASSIGN_OR_RETURN(auto cur, im.repo.get<Server>(id.str()));
    Server& s = cur.value;
    const auto now = im.clock.now();
    s.last_checked_at = now;
    if (answered) {
      s.status = ServerStatus::kRunning;
      s.last_seen_at = now;
      s.status_reason.clear();
    } else {
      const TimePoint since = s.last_seen_at.value_or(s.created_at);
      s.status = now - since >= im.options.server_dead_after ? ServerStatus::kDead : ServerStatus::kMissing;
      s.status_reason = std::move(reason);
    }
    auto w = im.repo.update(s, cur.version);
    if (w.ok()) return s;
    if (w.error().code() != ErrorCode::kAborted) return w.error();
  }
  return aborted("server " + id.str() + " kept changing");
}

Result<Session> Manager::Impl::startServerSession(const SessionRequest& req, const User& user, const Workspace& ws,
                                                  const GroupSettings& settings, const license::Grant& grant,
                                                  const std::string& launch_key) {
  // The credentials of a server that asks its users, sealed once for every attempt.
  std::string prompted;
  for (int attempt = 0; attempt < options.max_cas_retries; ++attempt) {
    std::vector<Versioned<Server>> rows;
    std::string what;
    if (ws.type == WorkspaceType::kServer) {
      auto one = repo.get<Server>(ws.server_id.value_or(ServerId()).str());
      if (!one.ok()) {
        if (one.error().code() == ErrorCode::kNotFound)
          return failedPrecondition("workspace '" + ws.friendly_name + "' names a server that does not exist");
        return one.error();
      }
      what = "server " + one->value.friendly_name;
      rows.push_back(std::move(*one));
    } else {
      const std::string pool_id = ws.server_pool_id.value_or(ServerPoolId()).str();
      auto pool = repo.get<ServerPool>(pool_id);
      if (!pool.ok()) {
        if (pool.error().code() == ErrorCode::kNotFound)
          return failedPrecondition("workspace '" + ws.friendly_name + "' names a server pool that does not exist");
        return pool.error();
      }
      what = "pool " + pool->value.name;
      KASM_ASSIGN_OR_RETURN(rows, repo.list<Server>(spi::Query().where("pool_id", pool_id)));
    }
    std::vector<Server> servers;
    servers.reserve(rows.size());
    for (const auto& r : rows) servers.push_back(r.value);
    KASM_ASSIGN_OR_RETURN(std::size_t i, sched::chooseServer(servers, user.id, what));
    Server server = servers[i];

    if (server.promptsForCredentials() && prompted.empty()) {
      if (req.connection_username.empty() && req.connection_password.empty()) {
        return invalidArgument("server " + server.friendly_name +
                               " asks for your credentials: give connection_username and connection_password");
      }
      boost::json::object o{{"username", req.connection_username}, {"password", req.connection_password}};
      KASM_ASSIGN_OR_RETURN(prompted, sealSecret(boost::json::serialize(o), kPromptSecretPurpose));
    }

    const auto now = clock.now();
    Session s;
    s.id = SessionId::generate();
    s.user_id = user.id;
    s.workspace_id = ws.id;
    s.zone_id = server.zone_id;
    s.server_id = server.id;
    s.upstream = hostPort(server.hostname, server.port);
    s.launch_environment = req.environment;
    s.launch_key = launch_key;
    if (server.promptsForCredentials()) s.connection_sealed = prompted;
    s.created_at = now;
    s.state_changed_at = now;
    KASM_RETURN_IF_ERROR(s.transitionTo(SessionState::kProvisioning, "placed on " + what, now));
    KASM_RETURN_IF_ERROR(s.transitionTo(SessionState::kRunning, "served by server " + server.friendly_name, now));
    s.started_at = now;
    s.progress = 100;
    s.operational_message = "running on server " + server.friendly_name;
    applyLifetimes(s, ws, settings);

    server.slots.push_back({s.id, user.id});
    KASM_ASSIGN_OR_RETURN(spi::Mutation sm, Repository::insertOp(s));
    KASM_ASSIGN_OR_RETURN(spi::Mutation vm, Repository::updateOp(server, rows[i].version));
    KASM_ASSIGN_OR_RETURN(auto usage, licensing.impl().usageMutations(&grant, s, 1, /*count_user=*/true));
    std::vector<spi::Mutation> batch{std::move(sm), std::move(vm)};
    for (auto& m : usage) batch.push_back(std::move(m));
    auto applied = store.apply(batch);
    if (applied.ok()) {
      if (req.on_stored) req.on_stored(s);
      return s;
    }
    // Another launch took a slot (or a usage row) first: choose again on fresh rows.
    if (applied.error().code() != ErrorCode::kAborted && applied.error().code() != ErrorCode::kAlreadyExists) {
      return applied.error();
    }
    // Unless it stored a session with this launch's idempotency key (requestSession answers that).
    if (applied.error().code() == ErrorCode::kAlreadyExists && !launch_key.empty()) {
      KASM_ASSIGN_OR_RETURN(auto earlier, sessionWithLaunchKey(launch_key));
      if (earlier) return applied.error();
    }
  }
  return aborted("the servers of workspace '" + ws.friendly_name + "' kept changing; try again");
}

Result<std::int64_t> Manager::Impl::commitServerEnd(const Session& session, std::int64_t version) {
  for (int attempt = 0; attempt < options.max_cas_retries; ++attempt) {
    std::vector<spi::Mutation> batch;
    KASM_ASSIGN_OR_RETURN(spi::Mutation sm, Repository::updateOp(session, version));
    batch.push_back(std::move(sm));
    auto server = repo.get<Server>(session.server_id->str());
    if (server.ok()) {
      auto& slots = server->value.slots;
      std::erase_if(slots, [&](const ServerSlot& x) { return x.session_id == session.id; });
      KASM_ASSIGN_OR_RETURN(spi::Mutation vm, Repository::updateOp(server->value, server->version));
      batch.push_back(std::move(vm));
    } else if (server.error().code() != ErrorCode::kNotFound) {
      return server.error();
    }
    KASM_ASSIGN_OR_RETURN(auto usage, licensing.impl().usageMutations(nullptr, session, -1, false));
    for (auto& m : usage) batch.push_back(std::move(m));
    auto applied = store.apply(batch);
    if (applied.ok()) {
      noteClosed(session);
      return applied->front();
    }
    if (applied.error().code() != ErrorCode::kAborted) return applied.error();
    auto cur = repo.get<Session>(session.id.str());
    if (!cur.ok() || cur->version != version) return applied.error();  // The session moved on.
  }
  return aborted("server " + session.server_id->str() + " kept changing");
}

Result<ServerConnection> Manager::serverConnection(const SessionId& id) {
  auto& im = *impl_;
  KASM_ASSIGN_OR_RETURN(auto s, im.repo.get<Session>(id.str()));
  if (!s.value.server_id) return failedPrecondition("session " + id.str() + " is not on a fixed server");
  auto server = im.repo.get<Server>(s.value.server_id->str());
  if (!server.ok()) {
    if (server.error().code() == ErrorCode::kNotFound)
      return failedPrecondition("the server of session " + id.str() + " was removed");
    return server.error();
  }
  const Server& v = server->value;
  ServerConnection c;
  c.server_id = v.id;
  c.server_name = v.friendly_name;
  c.type = v.connection_type;
  c.host = v.hostname;
  c.port = v.port;
  c.domain = v.connection_domain;
  c.security = v.rdp_security;
  c.certificate_policy = v.certificate_policy;
  c.keyboard_layout = v.keyboard_layout;
  if (auto zone = im.repo.get<Zone>(v.zone_id.str()); zone.ok()) c.zone_gateway = zone->value.gateway;
  if (!s.value.connection_sealed.empty()) {
    // Sessions started before the purposes were told apart carry the servers' purpose.
    auto unsealed = im.unsealSecret(s.value.connection_sealed, Impl::kPromptSecretPurpose);
    if (!unsealed.ok()) unsealed = im.unsealSecret(s.value.connection_sealed, Impl::kServerSecretPurpose);
    KASM_ASSIGN_OR_RETURN(std::string plain, std::move(unsealed));
    boost::system::error_code ec;
    auto j = boost::json::parse(plain, ec);
    if (ec || !j.is_object()) return dataLoss("the credentials of session " + id.str() + " are unreadable");
    const auto& o = j.as_object();
    if (const auto* u = o.if_contains("username"); u && u->is_string()) c.username = std::string(u->as_string());
    if (const auto* p = o.if_contains("password"); p && p->is_string()) c.password = std::string(p->as_string());
    return c;
  }
  std::string username;
  if (v.connection_username.find("{sso_username}") != std::string::npos) {
    KASM_ASSIGN_OR_RETURN(auto user, im.repo.get<User>(s.value.user_id.str()));
    username = user.value.username;
  }
  c.username = resolveUsername(v.connection_username, username);
  KASM_ASSIGN_OR_RETURN(c.password, im.unsealSecret(v.connection_password_sealed));
  KASM_ASSIGN_OR_RETURN(c.private_key, im.unsealSecret(v.connection_private_key_sealed));
  return c;
}

}  // namespace kasm
