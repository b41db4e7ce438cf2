#include "server_app.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kasm/agent/local_agent.hpp"
#include "kasm/agent/remote_link.hpp"
#include "kasm/agent/upstream_policy.hpp"
#include "kasm/auth/password.hpp"
#include "kasm/auth/secret.hpp"
#include "kasm/docker/docker_runtime.hpp"
#include "kasm/license/keys.hpp"
#include "kasm/model/json.hpp"
#include "kasm/net/vnc_snapshot.hpp"
#include "kasm/store/postgres_store.hpp"
#include "kasm/store/sqlite_store.hpp"
#include "kasm/tunnel/protocol.hpp"
#include "kasm/version.hpp"

namespace kasm::server {

void logLine(const std::string& event, const std::string& detail) {
  // One JSON object per line; values are escaped minimally (quotes and backslashes).
  std::string esc;
  for (char c : detail) {
    if (c == '"' || c == '\\') esc += '\\';
    if (c == '\n') {
      esc += "\\n";
      continue;
    }
    esc += c;
  }
  std::printf("{\"event\":\"%s\",\"detail\":\"%s\"}\n", event.c_str(), esc.c_str());
  std::fflush(stdout);
}

Result<std::string> settingOr(Repository& repo, Clock& clock, const std::string& key,
                              const std::function<std::string()>& make) {
  auto s = repo.get<Setting>(key);
  if (s.ok()) return s->value.value;
  if (s.error().code() != ErrorCode::kNotFound) return s.error();
  Setting fresh{key, make(), clock.now()};
  auto inserted = repo.insert(fresh);
  if (inserted.ok()) return fresh.value;
  if (inserted.error().code() != ErrorCode::kAlreadyExists) return inserted.error();
  KASM_ASSIGN_OR_RETURN(auto again, repo.get<Setting>(key));
  return again.value.value;
}

namespace {

// The generated first password never goes into the log (logs are collected and kept): it is written
// to a file only the server's account can read, the log says where, and a terminal shows it once.
Result<void> announceFirstPasswordIn(const std::string& data_dir, const std::string& password) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  const std::string path = data_dir + "/admin-password";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return unavailable("cannot write the first admin password to " + path + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);
  const std::string line = password + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!written) return unavailable("cannot write the first admin password to " + path);
  logLine("admin_created", "username=admin@kasm.local; its one-time password is in " + path +
                               " (readable by this account only); change it after logging in and delete the file");
  if (::isatty(STDERR_FILENO)) {
    std::fprintf(stderr, "\n  First administrator: admin@kasm.local  password: %s  (also in %s)\n\n", password.c_str(),
                 path.c_str());
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<spi::Store>> openStore(const ServerConfig& config) {
  if (!config.database_url.empty()) return openPostgresStore({.url = config.database_url, .pool_size = 8});
  return openSqliteStore({.path = config.data_dir + "/kasm.db"});
}

Result<std::string> createApiKey(spi::Store& store, Clock& clock, const std::string& name) {
  Repository repo(store);
  const std::string secret = auth::generateToken();
  ApiKey k;
  k.id = ApiKeyId::generate();
  k.name = name;
  k.key = auth::generateToken(8);
  k.secret_hash = auth::hashSecret(secret);
  k.permissions = {std::string(permissions::kAdmin)};
  k.created_at = clock.now();
  KASM_RETURN_IF_ERROR(repo.insert(k));
  return "{\"api_key\":\"" + k.key + "\",\"api_key_secret\":\"" + secret + "\",\"name\":\"" + name + "\"}";
}

Result<std::unique_ptr<ServerApp>> ServerApp::create(const ServerConfig& config) {
  std::unique_ptr<ServerApp> app(new ServerApp());
  app->config_ = config;
  // The data directory holds the database, keys and certificates: private to this account, also
  // when an earlier version created it 0755.
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return unavailable("cannot create the data directory " + config.data_dir + ": " + ec.message());
  ::chmod(config.data_dir.c_str(), 0700);
  KASM_ASSIGN_OR_RETURN(app->store_, openStore(config));
  app->repo_ = std::make_unique<Repository>(*app->store_);
  ManagerOptions mo;
  // Shared by every server of the installation (scale-out) so tokens and session secrets agree;
  // the other keys are derived from it.
  KASM_ASSIGN_OR_RETURN(std::string key,
                        settingOr(*app->repo_, app->clock_, "access_token_key", [&] { return auth::generateToken(); }));
  mo.session_secret_key = auth::hmacSha256(key, "kasm session secret key");
  KASM_RETURN_IF_ERROR(app->startTunnelHub(key));
  app->session_secret_key_ = mo.session_secret_key;
  // A session that stops serving has its connections closed here at once, and on every other
  // server of the installation through the share database's events (Redis when configured).
  mo.on_session_closed = [self = app.get()](const SessionId& id, SessionState) { self->sessionClosed(id, true); };
  app->node_id_ = ManagerNodeId::generate();
  if (app->store_->backendName() == "postgresql") {
    // Several servers may share this database: an agent polls one of them, and any may command it.
    cluster::AgentCommandsOptions co;
    co.node = app->node_id_;
    co.publish = [self = app.get()](std::string event) { self->publishEvent(event); };
    app->agent_commands_ = std::make_unique<cluster::AgentCommands>(*app->store_, app->clock_, std::move(co));
    mo.remote_link = [self = app.get()](const AgentId& id) -> std::shared_ptr<spi::AgentLink> {
      return self->agent_commands_->link(id, self->upstreamCheck(id));
    };
  }
  if (!config.license_public_key_file.empty()) {
    std::ifstream in(config.license_public_key_file);
    if (!in) return invalidArgument("cannot read the licence public key " + config.license_public_key_file);
    std::stringstream pem;
    pem << in.rdbuf();
    auto key = license::VerifyingKey::fromPem(pem.str());
    if (!key.ok()) return key.error().withContext("licence public key " + config.license_public_key_file);
    mo.license.verifying_keys.push_back(*key);
  }
  app->manager_ = std::make_unique<Manager>(*app->store_, app->clock_, app->random_, mo);
  KASM_RETURN_IF_ERROR(app->setUpSharing(key));
  KASM_RETURN_IF_ERROR(app->setUpGateway(key));
  KASM_RETURN_IF_ERROR(app->bootstrap(key));
  return app;
}

ServerApp::~ServerApp() {
  stop();
}

Result<void> ServerApp::bootstrap(const std::string& key) {
  auto& repo = *repo_;
  KASM_RETURN_IF_ERROR(
      settingOr(repo, clock_, std::string(settings::kInstallationId), [&] { return generateIdString(); }));
  KASM_ASSIGN_OR_RETURN(auto signer, auth::AccessTokenSigner::create(key, clock_));
  signer_.emplace(std::move(signer));

  // Zone.
  KASM_ASSIGN_OR_RETURN(auto zones, repo.list<Zone>(spi::Query().where("name", config_.zone_name)));
  Zone zone;
  if (zones.empty()) {
    zone.name = config_.zone_name;
    KASM_ASSIGN_OR_RETURN(zone, manager_->upsertZone(zone));
  } else {
    zone = zones.front().value;
  }
  KASM_RETURN_IF_ERROR(settingOr(repo, clock_, std::string(settings::kDefaultZone), [&] { return zone.id.str(); }));

  // Groups and the first administrator.
  auto ensureGroup = [&](const std::string& name, std::set<std::string> perms, int priority) -> Result<Group> {
    KASM_ASSIGN_OR_RETURN(auto found, repo.list<Group>(spi::Query().where("name", name)));
    if (!found.empty()) return found.front().value;
    Group g;
    g.id = GroupId::generate();
    g.name = name;
    g.permissions = std::move(perms);
    g.priority = priority;
    g.created_at = clock_.now();
    g.settings.max_sessions_per_user = 2;
    KASM_RETURN_IF_ERROR(repo.insert(g));
    return g;
  };
  KASM_ASSIGN_OR_RETURN(Group all, ensureGroup("All Users", {std::string(permissions::kSessionsLaunch)}, 1000));
  KASM_ASSIGN_OR_RETURN(Group admins, ensureGroup("Administrators", {std::string(permissions::kAdmin)}, 10));
  KASM_ASSIGN_OR_RETURN(auto users, repo.count<User>());
  if (users == 0) {
    const char* given = std::getenv("KASM_ADMIN_PASSWORD");
    const std::string password = given && *given ? given : auth::generateToken(12);
    User admin;
    admin.id = UserId::generate();
    admin.username = "admin@kasm.local";
    admin.group_ids = {all.id, admins.id};
    admin.created_at = clock_.now();
    KASM_ASSIGN_OR_RETURN(admin.password_hash, auth::hashPassword(password));
    KASM_RETURN_IF_ERROR(repo.insert(admin));
    if (given && *given) {
      logLine("admin_created", "username=admin@kasm.local password=(from KASM_ADMIN_PASSWORD)");
    } else {
      KASM_RETURN_IF_ERROR(announceFirstPasswordIn(config_.data_dir, password));
    }
  }
  KASM_RETURN_IF_ERROR(registerBuiltInWorkspaces(all.id));
  KASM_RETURN_IF_ERROR(manager_->start());
  auto background = [this](std::function<void()> task) {
    return start_pool_ && start_pool_->post(std::move(task)).ok();
  };
  auto revoked = [this](const UserId& user) { revokeUserAccess(user); };
  // With a session origin, session URLs point there: their pages never share this origin.
  const std::string session_prefix =
      config_.session_origin.empty() ? "/desktop/" : config_.session_origin + "/desktop/";
  api::DeveloperApiOptions developer_options;
  developer_options.background = background;
  developer_options.on_access_revoked = revoked;
  developer_options.session_path_prefix = session_prefix;
  developer_options.screenshot = [this](const Session& s, int width) -> Result<std::string> {
    auto ws = repo_->get<Workspace>(s.workspace_id.str());
    if (!ws.ok()) return ws.error();
    if (ws->value.protocol != SessionProtocol::kVnc) {
      return failedPrecondition("only desktop (VNC) sessions have a screen to take a picture of");
    }
    net::VncSnapshotOptions o{.upstream = s.upstream, .password = manager_->vncPassword(s.id), .width = width};
    if (s.agent_id) {
      // An agent behind NAT: through its reverse tunnel, as the proxy goes.
      net::ProxyTarget via{s.upstream, SessionProtocol::kVnc, s.user_id};
      relayThroughTunnel(*s.agent_id, via);
      o.relay = via.relay;
      o.relay_preamble = via.relay_preamble;
    }
    return net::captureVncSnapshot(o);
  };
  developer_options.sharing = sharing_.get();
  developer_api_ = std::make_unique<api::DeveloperApi>(*manager_, *store_, clock_, *signer_, developer_options);
  // Login cookies get a key of their own, derived from the shared one, so no token of one kind
  // can pass for the other.
  KASM_ASSIGN_OR_RETURN(auto web,
                        auth::WebSessionSigner::create(auth::hmacSha256(key, "kasm web session key"), clock_));
  web_signer_.emplace(std::move(web));
  api::RestApiOptions rest_options;
  rest_options.background = background;
  rest_options.on_access_revoked = revoked;
  rest_options.session_path_prefix = session_prefix;
  rest_options.sharing = sharing_.get();
  KASM_RETURN_IF_ERROR(startAutoscaler());
  rest_options.autoscaler = autoscaler_.get();
  rest_api_ = std::make_unique<api::RestApi>(*manager_, *store_, clock_, *signer_, *web_signer_, rest_options);
  return {};
}

// On the first start (no workspace yet), the three images of images/ become workspaces that every
// user (the `everyone` group) may launch. They are built by scripts/build-images.sh; an agent
// without them pulls or reports them missing.
Result<void> ServerApp::registerBuiltInWorkspaces(const GroupId& everyone) {
  KASM_ASSIGN_OR_RETURN(auto existing, repo_->count<Workspace>());
  if (existing > 0) return {};
  struct BuiltIn {
    const char* id;
    const char* name;
    const char* description;
    std::vector<std::string> categories;
    int millicores;
    std::int64_t memory_mib;
    bool big_shm;
  };
  const std::vector<BuiltIn> builtins = {
      {"desktop",
       "Desktop",
       "A Debian 12 desktop (openbox) with a terminal, nano, htop and curl.",
       {"Desktop", "Development"},
       1000,
       768,
       false},
      {"firefox", "Firefox", "Firefox ESR as a single application.", {"Browser", "Internet"}, 1000, 1536, true},
      {"desktop-deluxe",
       "Desktop Deluxe",
       "A richer desktop: LibreOffice Writer and Calc, a file manager, an editor, a calculator and Firefox.",
       {"Desktop", "Office", "Productivity"},
       2000,
       2048,
       true},
  };
  for (const auto& b : builtins) {
    Workspace w;
    w.id = WorkspaceId(b.id);
    w.friendly_name = b.name;
    w.description = b.description;
    w.categories = b.categories;
    w.thumbnail_url = std::string("/icons/") + b.id + ".svg";
    w.image = std::string("kasm/") + b.id + ":" + std::string(kasm::version());
    w.resources = Resources{b.millicores, b.memory_mib * 1024 * 1024, 0};
    w.protocol = SessionProtocol::kVnc;
    w.port = 5901;
    w.group_ids = {everyone};  // Users launch the workspaces assigned to their groups.
    // Firefox and LibreOffice need more shared memory than Docker's 64 MiB default.
    if (b.big_shm) w.run_config_json = R"({"HostConfig":{"ShmSize":536870912}})";
    KASM_RETURN_IF_ERROR(manager_->upsertWorkspace(std::move(w)));
  }
  logLine("workspaces_registered", "desktop, firefox, desktop-deluxe (build the images with scripts/build-images.sh)");
  return {};
}

Result<void> ServerApp::start() {
  if (config_.local_agent) {
    auto agent = setUpLocalAgent();
    if (!agent.ok()) {
      // The server stays useful (API, other agents); sessions need an agent.
      logLine("local_agent_unavailable", agent.error().toString());
    } else {
      checkInLocalAgent();  // Ready to place sessions before the first request arrives.
    }
  }
  {
    std::string root = config_.web_root;
#ifdef KASM_DEFAULT_WEB_ROOT
    if (root.empty()) root = KASM_DEFAULT_WEB_ROOT;
#endif
    auto web = net::StaticFiles::open({.root = root});
    if (web.ok()) {
      web_.emplace(std::move(*web));
      auto viewer = SessionViewer::load(root);
      if (viewer.ok()) {
        viewer_.emplace(std::move(*viewer));
      } else {
        logLine("session_viewer_disabled", viewer.error().message());
      }
      // The web terminal of SSH servers, shown the same way.
      auto terminal = SessionViewer::load(root, "terminal.html");
      if (terminal.ok()) {
        terminal_.emplace(std::move(*terminal));
      } else {
        logLine("session_terminal_disabled", terminal.error().message());
      }
    } else {
      logLine("web_ui_disabled", web.error().message() + " (build it with scripts/build-web.sh)");
    }
  }
  csp_ = controlPlanePolicy();
  pool_ = std::make_unique<net::BlockingPool>(static_cast<std::size_t>(config_.handler_threads));
  // Its threads mostly wait for agents (a remote one answers through the store): many, cheap.
  start_pool_ = std::make_unique<net::BlockingPool>(64, 1000);
  agent_pool_ = std::make_unique<net::BlockingPool>(64, 256);
  net::ProxyOptions popts;
  popts.authorize = [this](const net::ProxyAuthRequest& r) { return authorizeProxy(r); };
  popts.authorize_quick = [this](const net::ProxyAuthRequest& r) { return authorizeProxyQuick(r); };
  popts.on_activity = [this](const SessionId& s, const UserId&) { (void)manager_->recordActivity(s); };
  popts.blocking_pool = pool_.get();
  popts.allowed_origins = config_.allowed_origins;
  // The chat of a shared session: /desktop/<session>/kasm/chat, authorized like the desktop.
  popts.app_socket = [this](const net::ProxyAuthRequest& r, const net::ProxyTarget& t,
                            std::shared_ptr<net::ProxySocket> socket) { return openChat(r, t, std::move(socket)); };
  // File transfer: /desktop/<session>/kasm/files, on the viewer's origin, authorized like it.
  popts.app_request_admit = [this](const net::ProxyAuthRequest& r, const net::ProxyTarget& t,
                                   const net::ProxyAppRequest& req) { return admitFileRequest(t, r.session, req); };
  popts.app_request = [this](const net::ProxyAuthRequest& r, const net::ProxyTarget& t,
                             const net::ProxyAppRequest& req) { return serveFileRequest(t, r.session, req); };
  popts.app_sockets["/kasm/audio"] = [this](const net::ProxyAuthRequest& r, const net::ProxyTarget& t,
                                            std::shared_ptr<net::ProxySocket> socket) {
    return openAudio(r, t, std::move(socket));
  };
  popts.app_sockets["/kasm/microphone"] = [this](const net::ProxyAuthRequest& r, const net::ProxyTarget& t,
                                                 std::shared_ptr<net::ProxySocket> socket) {
    return openMicrophone(r, t, std::move(socket));
  };
  if (viewer_ || terminal_) {
    // kasm_url of a desktop opens the viewer page (a terminal's, the terminal page), in a tab or a
    // portal's frame.
    popts.vnc_page = [this](const net::ProxyAuthRequest& r,
                            const net::ProxyTarget& t) -> std::optional<net::ProxyPage> {
      const auto& page = t.protocol == SessionProtocol::kSsh ? terminal_ : viewer_;
      if (!page) return std::nullopt;
      const auto access = rememberedAccess(r.session, t.user);
      return page->render(r.session, r.token, t.access == net::ViewerAccess::kViewOnly, access && access->owner,
                          config_.frame_ancestors);
    };
  }
  // Session pages may be framed by the viewer page, which portals may frame in turn.
  std::string ancestors = " 'self'";
  for (const auto& o : config_.allowed_origins) ancestors += " " + o;
  for (const auto& o : config_.frame_ancestors) ancestors += " " + o;
  popts.content_security_policy =
      std::string(net::kSandboxedContentPolicy.substr(0, net::kSandboxedContentPolicy.find("; frame-ancestors"))) +
      "; frame-ancestors" + ancestors;
  // A desktop nobody touched and nothing changed on for an hour: noVNC reconnects when its user
  // returns, and an abandoned tab stops holding sockets.
  popts.tunnel_idle_timeout = std::chrono::hours(1);
  popts.max_tunnels = 20000;  // The server's max_connections bounds them first (set below).
  KASM_ASSIGN_OR_RETURN(proxy_, net::SessionProxy::create(std::move(popts)));

  net::HttpServerOptions hopts;
  hopts.address = config_.listen_address;
  hopts.port = config_.port;
  hopts.io_threads = config_.io_threads;
  // Each viewer holds two descriptors (browser and desktop): as many as the process may open, less
  // a reserve for the store, the engine and logs, at most 20,000 viewers.
  std::size_t viewers = 20000;
  if (rlimit fds{}; ::getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur != RLIM_INFINITY) {
    viewers = std::min<std::size_t>(viewers, fds.rlim_cur > 512 ? (fds.rlim_cur - 256) / 2 : 128);
  }
  hopts.max_connections = viewers;
  hopts.max_connections_per_address = config_.max_connections_per_address;
  hopts.write_stall_timeout = std::chrono::seconds(config_.write_stall_seconds);
  // A remote agent's answer may carry a downloaded file (base64: 4/3 of the largest transfer).
  hopts.body_limits["/api/agent/v1/result"] = std::size_t{1024} * 1024 * 1024 / 3 * 4 + 64 * 1024;
  if (!config_.plain_http) {
    KASM_ASSIGN_OR_RETURN(auto tls, net::ensureSelfSignedCertificate(config_.data_dir + "/tls"));
    hopts.tls = tls;
  }
  // Agents' calls go to threads of their own straight from the connection: a long poll must not hold
  // the request pool, and a result must get through even while every request thread waits (a
  // launch waits for a start, which may wait for that very result).
  auto on_pool = net::runOnPool(*pool_, routes());
  auto handler = [this, on_pool](net::HttpRequest req, net::Responder respond) {
    if (req.path.rfind("/api/agent/v1/", 0) == 0) {
      auto task = [this, req, respond] { respond(agentApi(req)); };
      if (!agent_pool_->post(task).ok()) respond(net::HttpResponse::json(503, R"({"error_message":"busy"})"));
      return;
    }
    on_pool(std::move(req), std::move(respond));
  };
  // Agents' reverse tunnels: authorized on the agent pool like their other calls.
  net::HttpSocketRoute tunnel_route;
  tunnel_route.pool = agent_pool_.get();
  tunnel_route.max_message = tunnel::kMaxFrame;
  tunnel_route.queue_bytes = 80 * 1024 * 1024;  // 256 streams' windows, and room.
  tunnel_route.open = [this](const net::HttpRequest& req, std::shared_ptr<net::WebSocket> socket) {
    return openAgentTunnel(req, std::move(socket));
  };
  hopts.sockets.emplace("/api/agent/v1/tunnel", std::move(tunnel_route));
  KASM_ASSIGN_OR_RETURN(http_, net::HttpServer::start(hopts, std::move(handler), proxy_));
  logLine("listening", http_->baseUrl());
  // Scale-out: this server's row and the zones it leads (at once when no other server leads them).
  cluster::MembershipOptions mo;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) mo.hostname = host;
  mo.url = http_->baseUrl();
  mo.version = std::string(kasm::version());
  if (!config_.lead_zones.empty()) {
    KASM_ASSIGN_OR_RETURN(auto zones, repo_->list<Zone>());
    for (const auto& name : config_.lead_zones) {
      auto it = std::find_if(zones.begin(), zones.end(), [&](const auto& z) { return z.value.name == name; });
      if (it == zones.end()) return invalidArgument("--lead-zones: no zone is named '" + name + "'");
      mo.zones.push_back(it->value.id);
    }
  }
  mo.id = node_id_;
  membership_ = std::make_unique<cluster::Membership>(*store_, clock_, std::move(mo));
  if (auto beat = membership_->beat(); !beat.ok()) logLine("cluster_beat_failed", beat.error().toString());
  cluster_thread_ = std::thread([this] { clusterLoop(); });
  if (agent_commands_ && local_agent_) local_commands_thread_ = std::thread([this] { serveLocalAgentCommands(); });
  loop_ = std::thread([this] { backgroundLoop(); });
  return {};
}

void ServerApp::stop() {
  if (stopping_.exchange(true)) return;
  if (membership_) membership_->stepDown();
  if (cluster_thread_.joinable()) cluster_thread_.join();
  if (agent_commands_) agent_commands_->stop();
  if (local_commands_thread_.joinable()) local_commands_thread_.join();
  stopAudio();
  if (http_) http_->stop(std::chrono::seconds(5));
  {
    // No remote agent reaches this server any more, so no answer can come: calls still waiting for
    // one fail now, not after the link's call timeout (5 minutes), which the background loop below
    // would wait out when it was reconciling an agent that stopped just before.
    std::lock_guard lock(remote_mutex_);
    for (auto& [id, link] : remote_links_) link->close("the server is stopping");
  }
  if (tunnel_hub_) tunnel_hub_->stop();
  if (loop_.joinable()) loop_.join();
  if (image_puller_) image_puller_->stop();
  if (pool_) pool_->shutdown();
  // Starts in progress on the local engine finish, those on remote agents ended above (their
  // sessions are in the store either way; recover() on the next start completes or fails any that
  // a crash or the stop interrupted).
  if (start_pool_) start_pool_->shutdown();
  if (agent_pool_) agent_pool_->shutdown();
}

std::string ServerApp::url() const {
  return http_ ? http_->baseUrl() : std::string();
}

namespace {
// The value of cookie `name` in a Cookie header ("a=1; b=2").
std::string cookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const auto semi = header.find(';');
    std::string_view part = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    const auto eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name) return std::string(part.substr(eq + 1));
  }
  return {};
}
}  // namespace

net::HttpResponse ServerApp::rest(const net::HttpRequest& req) {
  api::RestRequest r;
  r.method = req.method;
  r.path = req.path;
  r.query = req.query;
  r.body = req.body;
  if (auto c = req.headers.find("cookie")) r.cookie_token = cookieValue(*c, "kasm_auth");
  if (auto c = req.headers.find("x-csrf-token")) r.csrf_token = std::string(*c);
  if (auto a = req.headers.find("authorization")) r.authorization = std::string(*a);
  if (auto t = req.headers.find("content-type")) r.content_type = std::string(*t);
  if (auto k = req.headers.find("idempotency-key")) r.idempotency_key = std::string(*k);
  r.remote_address = req.remote_address;
  r.secure = req.secure;
  auto out = rest_api_->handle(r);
  net::HttpResponse res =
      out.body.empty() ? net::HttpResponse::text(out.status, "") : net::HttpResponse::json(out.status, out.body);
  for (auto& [k, v] : out.headers) res.headers.add(k, v);
  return res;
}

net::HttpResponse ServerApp::dispatch(const net::HttpRequest& req) {
  {
    static constexpr std::string_view kPublic = "/api/public/";
    if (req.path == "/healthz") return net::HttpResponse::text(200, "ok\n");
    if (req.path == "/readyz") {
      if (draining_.load()) return net::HttpResponse::text(503, "draining\n");
      auto ping = store_->ping();
      if (ping.ok()) return net::HttpResponse::text(200, "ready\n");
      // The store's message may name hosts and databases: only for those allowed operations data.
      return net::HttpResponse::text(
          503, opsAllowed(req) ? "store unavailable: " + ping.error().message() + "\n" : "not ready\n");
    }
    if (req.path == "/metrics" && req.method == "GET") {
      if (!opsAllowed(req)) {
        return net::HttpResponse::text(403, "metrics are served to loopback clients or with the ops token\n");
      }
      return metrics();
    }
    if (req.path == "/api/openapi.json" && req.method == "GET") {
      return net::HttpResponse::json(200, rest_api_->openApiDocument());
    }
    if (req.path.rfind("/api/v1/", 0) == 0) return rest(req);
    if (req.path.rfind(kPublic, 0) == 0) {
      if (req.method != "POST") return net::HttpResponse::json(405, R"({"error_message":"use POST"})");
      const std::string verb = req.path.substr(kPublic.size());
      auto auth = req.headers.find("authorization");
      auto idempotency = req.headers.find("idempotency-key");
      auto r = developer_api_->handle(verb, req.body, auth ? *auth : std::string_view(),
                                      idempotency ? *idempotency : std::string_view());
      if (r.content_type != "application/json") {
        net::HttpResponse res = net::HttpResponse::text(r.status, std::move(r.body), r.content_type);
        res.headers.set("Cache-Control", "no-store");
        return res;
      }
      return net::HttpResponse::json(r.status, std::move(r.body));
    }
    if (web_ && req.path.rfind("/api/", 0) != 0) return web_->serve(req);
    if (req.path == "/" && req.method == "GET") {
      return net::HttpResponse::text(200, "kasm-server: the developer API is at /api/public/<verb>\n");
    }
    return net::HttpResponse::json(404, R"({"error_message":"not found"})");
  }
}

bool ServerApp::opsAllowed(const net::HttpRequest& req) const {
  if (config_.ops_access == "open") return true;
  if (!config_.ops_token.empty()) {
    if (auto token = auth::authorizationCredentials(req.headers.find("authorization").value_or(""), "Bearer");
        token && auth::constantTimeEquals(*token, config_.ops_token)) {
      return true;
    }
  }
  if (config_.ops_access == "token") return false;
  return req.remote_address == "127.0.0.1" || req.remote_address == "::1" ||
         req.remote_address.starts_with("::ffff:127.");
}

// The control plane's pages run only this server's scripts, connect only here (and to the session
// origin), and are framed by nobody but the portals the installation names: an injected script or
// a hostile frame gets nothing to work with.
std::string ServerApp::controlPlanePolicy() const {
  std::string sessions = config_.session_origin.empty() ? "" : " " + config_.session_origin;
  std::string session_ws;
  if (!config_.session_origin.empty()) {
    session_ws = " " + std::string(config_.session_origin.starts_with("https://") ? "wss://" : "ws://") +
                 config_.session_origin.substr(config_.session_origin.find("://") + 3);
  }
  std::string ancestors;
  for (const auto& o : config_.frame_ancestors) ancestors += " " + o;
  return "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
         "connect-src 'self'" +
         sessions + session_ws + "; frame-src 'self'" + sessions +
         "; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors" +
         (ancestors.empty() ? " 'none'" : ancestors);
}

void ServerApp::addControlPlaneHeaders(net::HttpResponse& res) const {
  if (!res.headers.contains("Content-Security-Policy")) res.headers.set("Content-Security-Policy", csp_);
  res.headers.set("X-Content-Type-Options", "nosniff");
  res.headers.set("Referrer-Policy", "same-origin");
  if (config_.frame_ancestors.empty()) res.headers.set("X-Frame-Options", "DENY");
}

// Times every request from the handler call to its response, by route class, and counts session
// starts through either API.
net::HttpHandler ServerApp::routes() {
  return [this](net::HttpRequest req, net::Responder respond) {
    std::size_t route = 2;  // web
    if (req.path.rfind("/api/v1/", 0) == 0) {
      route = 0;
    } else if (req.path.rfind("/api/public/", 0) == 0) {
      route = 1;
    } else if (req.path == "/healthz" || req.path == "/readyz" || req.path == "/metrics" ||
               req.path == "/api/openapi.json") {
      route = 3;
    }
    const bool start =
        req.method == "POST" && (req.path == "/api/v1/sessions" || req.path == "/api/public/request_kasm");
    const auto began = std::chrono::steady_clock::now();
    net::HttpResponse res = dispatch(req);
    addControlPlaneHeaders(res);
    latency_[route].observe(std::chrono::steady_clock::now() - began);
    if (start) (res.status < 300 ? session_starts_ok_ : session_starts_refused_).fetch_add(1);
    respond(std::move(res));
  };
}

}  // namespace kasm::server
