// Fixed servers and pools: placement (sched::chooseServer), sessions on servers through the manager
// (limits, one per user, assignment, licence, teardown), sealed credentials, and the desktop
// gateway's sealed request and pins.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "auth/vnc_auth.hpp"
#include "kasm/auth/seal.hpp"
#include "kasm/gateway/gateway.hpp"
#include "kasm/kasm.hpp"
#include "kasm/manager/manager.hpp"
#include "kasm/sched/server_choice.hpp"

namespace kasm {
namespace {

Server server(const std::string& id, int max, std::size_t used = 0) {
  Server s;
  s.id = ServerId(id);
  s.friendly_name = id;
  s.hostname = "127.0.0.1";
  s.port = 5901;
  s.zone_id = ZoneId("east");
  s.max_simultaneous_sessions = max;
  for (std::size_t i = 0; i < used; ++i)
    s.slots.push_back({SessionId(id + "-s" + std::to_string(i)), UserId("u" + std::to_string(i))});
  return s;
}

// ---- placement ---------------------------------------------------------------------------------

TEST(ServerChoice, SpreadsEvenlyByShareOfTheLimit) {
  std::vector<Server> pool = {server("a", 4, 2), server("b", 2, 0), server("c", 10, 4)};
  auto i = sched::chooseServer(pool, UserId("me"), "pool P");
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(pool[*i].id, ServerId("b"));
  pool[1].slots.push_back({SessionId("x"), UserId("x")});  // b at 1/2, a at 2/4, c at 4/10.
  i = sched::chooseServer(pool, UserId("me"), "pool P");
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(pool[*i].id, ServerId("c"));
}

TEST(ServerChoice, ExplainsAPoolWithNoRoom) {
  std::vector<Server> pool = {server("a", 2, 2), server("b", 2, 2), server("c", 2, 2)};
  auto i = sched::chooseServer(pool, UserId("me"), "pool Finance");
  ASSERT_FALSE(i.ok());
  EXPECT_EQ(i.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(i.error().message(), "pool Finance: 3 servers, all at their limit of 2");
  pool[0].status = ServerStatus::kDead;
  pool[0].status_reason = "connection refused";
  pool[1].enabled = false;
  i = sched::chooseServer(pool, UserId("me"), "pool Finance");
  ASSERT_FALSE(i.ok());
  EXPECT_EQ(i.error().message(),
            "pool Finance: 3 servers: 1 at their limit of 2, 1 dead (connection refused), 1 disabled");
  std::vector<Server> one = {server("db-1", 1, 1)};
  i = sched::chooseServer(one, UserId("me"), "server db-1");
  ASSERT_FALSE(i.ok());
  EXPECT_EQ(i.error().message(), "server db-1: the server is at its limit of 1");
  EXPECT_EQ(sched::chooseServer({}, UserId("me"), "pool Empty").error().code(), ErrorCode::kFailedPrecondition);
}

TEST(ServerChoice, OneDesktopPerUserButManyTerminals) {
  std::vector<Server> pool = {server("a", 5, 0)};
  pool[0].slots.push_back({SessionId("s"), UserId("me")});
  auto i = sched::chooseServer(pool, UserId("me"), "server a");
  ASSERT_FALSE(i.ok());
  EXPECT_NE(i.error().message().find("already serving you"), std::string::npos);
  pool[0].connection_type = ServerConnectionType::kSsh;
  EXPECT_TRUE(sched::chooseServer(pool, UserId("me"), "server a").ok());
}

TEST(ServerChoice, AssignedServersServeOnlyTheirUserAndComeFirst) {
  std::vector<Server> pool = {server("a", 5, 0), server("b", 5, 3)};
  pool[1].assigned_user_id = UserId("me");
  auto mine = sched::chooseServer(pool, UserId("me"), "pool P");
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(pool[*mine].id, ServerId("b"));  // Though it is the busier one.
  auto other = sched::chooseServer(pool, UserId("you"), "pool P");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(pool[*other].id, ServerId("a"));
  pool[0].enabled = false;
  other = sched::chooseServer(pool, UserId("you"), "pool P");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message().find("1 assigned to another user"), std::string::npos);
}

// ---- the manager -------------------------------------------------------------------------------

class FixedServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = makeMemoryStore();
    repo_ = std::make_unique<Repository>(*store_);
    ManagerOptions o;
    o.session_secret_key = std::string(32, 'k');
    manager_ = std::make_unique<Manager>(*store_, clock_, random_, o);
    ASSERT_TRUE(manager_->start().ok());
    Zone z;
    z.id = ZoneId("east");
    z.name = "East";
    ASSERT_TRUE(manager_->upsertZone(z).ok());
    ServerPool pool;
    pool.id = ServerPoolId("finance");
    pool.name = "Finance";
    ASSERT_TRUE(manager_->upsertServerPool(pool).ok());
    for (const char* name : {"alice", "bob", "carol"}) {
      User u;
      u.id = UserId(name);
      u.username = name;
      ASSERT_TRUE(repo_->insert(u).ok());
    }
    Workspace w;
    w.id = WorkspaceId("finance-desktops");
    w.type = WorkspaceType::kServerPool;
    w.friendly_name = "Finance desktops";
    w.server_pool_id = ServerPoolId("finance");
    ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
  }

  Server addServer(const std::string& id, int max, ServerSecrets secrets = {}) {
    Server s = server(id, max);
    s.pool_id = ServerPoolId("finance");
    s.connection_type = ServerConnectionType::kRdp;
    s.port = 3389;
    s.connection_username = "{sso_username}";
    auto r = manager_->upsertServer(s, secrets);
    EXPECT_TRUE(r.ok()) << r.error().toString();
    return r.ok() ? *r : s;
  }

  Result<Session> launch(const std::string& user, std::string username = "", std::string password = "") {
    SessionRequest req;
    req.user_id = UserId(user);
    req.workspace_id = WorkspaceId("finance-desktops");
    req.connection_username = std::move(username);
    req.connection_password = std::move(password);
    return manager_->requestSession(req);
  }

  Server stored(const std::string& id) { return repo_->get<Server>(id)->value; }

  ManualClock clock_;
  SeededRandom random_{7};
  std::unique_ptr<spi::Store> store_;
  std::unique_ptr<Repository> repo_;
  std::unique_ptr<Manager> manager_;
};

TEST_F(FixedServerTest, SecretsAreSealedAndNeverStoredInClear) {
  addServer("s1", 2, {.password = "hunter2-secret", .private_key = std::nullopt});
  const Server s = stored("s1");
  EXPECT_FALSE(s.connection_password_sealed.empty());
  EXPECT_EQ(s.connection_password_sealed.find("hunter2"), std::string::npos);
  EXPECT_EQ(toJson(s).find("hunter2"), std::string::npos);
  // A write without secrets keeps them; the caller cannot set the sealed field or the slots.
  Server change = s;
  change.friendly_name = "renamed";
  change.connection_password_sealed = "v1.forged";
  change.slots.push_back({SessionId("fake"), UserId("alice")});
  ASSERT_TRUE(manager_->upsertServer(change).ok());
  EXPECT_EQ(stored("s1").connection_password_sealed, s.connection_password_sealed);
  EXPECT_TRUE(stored("s1").slots.empty());
  // An empty secret clears it.
  ASSERT_TRUE(manager_->upsertServer(stored("s1"), {.password = std::string()}).ok());
  EXPECT_TRUE(stored("s1").connection_password_sealed.empty());
}

TEST_F(FixedServerTest, SecretsNeedTheManagersKey) {
  ManagerOptions keyless;
  Manager m(*store_, clock_, random_, keyless);
  Server s = server("s9", 1);
  auto r = m.upsertServer(s, {.password = "x"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(FixedServerTest, PoolSessionsSpreadRespectLimitsAndFreeTheirSlots) {
  addServer("s1", 1, {.password = "pw"});
  addServer("s2", 1, {.password = "pw"});
  auto a = launch("alice");
  ASSERT_TRUE(a.ok()) << a.error().toString();
  EXPECT_EQ(a->state, SessionState::kRunning);
  EXPECT_FALSE(a->agent_id.has_value());
  auto b = launch("bob");
  ASSERT_TRUE(b.ok()) << b.error().toString();
  EXPECT_NE(*a->server_id, *b->server_id);  // Spread.
  auto c = launch("carol");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(c.error().message(), "pool Finance: 2 servers, all at their limit of 1");
  // A session ended frees its slot at once.
  ASSERT_TRUE(manager_->destroySession(a->id).ok());
  EXPECT_TRUE(stored(a->server_id->str()).slots.empty());
  EXPECT_EQ(manager_->getSession(a->id)->state, SessionState::kDestroyed);
  c = launch("carol");
  ASSERT_TRUE(c.ok()) << c.error().toString();
  EXPECT_EQ(*c->server_id, *a->server_id);
  // Stopping a server session ends it too: there is no container to keep.
  ASSERT_TRUE(manager_->stopSession(c->id).ok());
  EXPECT_EQ(manager_->getSession(c->id)->state, SessionState::kDestroyed);
  // A server with sessions cannot be removed; a drained one can.
  EXPECT_EQ(manager_->removeServer(*b->server_id).error().code(), ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(manager_->destroySession(b->id).ok());
  EXPECT_TRUE(manager_->removeServer(*b->server_id).ok());
}

TEST_F(FixedServerTest, ConcurrentLaunchesNeverOverbookAServer) {
  addServer("s1", 3, {.password = "pw"});
  for (int i = 0; i < 12; ++i) {
    User u;
    u.id = UserId("user" + std::to_string(i));
    u.username = u.id.str();
    ASSERT_TRUE(repo_->insert(u).ok());
  }
  std::atomic<int> ok{0}, full{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 12; ++i) {
    threads.emplace_back([&, i] {
      auto r = launch("user" + std::to_string(i));
      (r.ok() ? ok : full)++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 3);
  EXPECT_EQ(full.load(), 9);
  EXPECT_EQ(stored("s1").slots.size(), 3u);
}

TEST_F(FixedServerTest, ServerSessionsCountAgainstTheLicence) {
  // The community edition allows 5 concurrent sessions.
  addServer("big", 100, {.password = "pw"});
  auto ssh = stored("big");
  ssh.connection_type = ServerConnectionType::kSsh;  // Many sessions per user.
  ASSERT_TRUE(manager_->upsertServer(ssh).ok());
  for (int i = 0; i < 6; ++i) {
    User u;
    u.id = UserId("lic" + std::to_string(i));
    u.username = u.id.str();
    ASSERT_TRUE(repo_->insert(u).ok());
  }
  for (int i = 0; i < 5; ++i) {
    auto r = launch("lic" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << i << ": " << r.error().toString();
  }
  auto sixth = launch("lic5");
  ASSERT_FALSE(sixth.ok());
  EXPECT_EQ(sixth.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(sixth.error().message().find("licen"), std::string::npos) << sixth.error().message();
  EXPECT_EQ(stored("big").slots.size(), 5u);
}

TEST_F(FixedServerTest, ConnectionResolvesSsoUsernameAndUnsealsThePassword) {
  addServer("s1", 2, {.password = "pw-1"});
  auto s = launch("alice");
  ASSERT_TRUE(s.ok());
  auto c = manager_->serverConnection(s->id);
  ASSERT_TRUE(c.ok()) << c.error().toString();
  EXPECT_EQ(c->username, "alice");
  EXPECT_EQ(c->password, "pw-1");
  EXPECT_EQ(c->host, "127.0.0.1");
  EXPECT_EQ(c->port, 3389);
  EXPECT_EQ(c->type, ServerConnectionType::kRdp);
  EXPECT_TRUE(c->zone_gateway.empty());
  // A zone can name the gateway near its servers.
  Zone east = repo_->get<Zone>("east")->value;
  east.gateway = "10.0.0.9:4822";
  ASSERT_TRUE(manager_->upsertZone(east).ok());
  EXPECT_EQ(manager_->serverConnection(s->id)->zone_gateway, "10.0.0.9:4822");
}

TEST_F(FixedServerTest, AServerWithoutCredentialsAsksTheUser) {
  Server s = server("ask", 2);
  s.pool_id = ServerPoolId("finance");
  ASSERT_TRUE(manager_->upsertServer(s).ok());
  auto refused = launch("alice");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message().find("asks for your credentials"), std::string::npos);
  auto given = launch("alice", "ALICE\\corp", "typed-secret");
  ASSERT_TRUE(given.ok()) << given.error().toString();
  const auto row = repo_->get<Session>(given->id.str())->value;
  EXPECT_EQ(toJson(row).find("typed-secret"), std::string::npos);
  // Sealed for what a user typed, not as a server's stored credentials.
  EXPECT_TRUE(auth::unseal(std::string(32, 'k'), "session-credentials", row.connection_sealed).ok());
  EXPECT_FALSE(auth::unseal(std::string(32, 'k'), "server-credentials", row.connection_sealed).ok());
  auto c = manager_->serverConnection(given->id);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->username, "ALICE\\corp");
  EXPECT_EQ(c->password, "typed-secret");
}

TEST_F(FixedServerTest, AssignmentAndStatusSteerPlacement) {
  addServer("s1", 5, {.password = "pw"});
  addServer("s2", 5, {.password = "pw"});
  ASSERT_TRUE(manager_->assignUserServer(ServerId("s2"), UserId("alice")).ok());
  EXPECT_EQ(manager_->assignUserServer(ServerId("s2"), UserId("nobody")).error().code(), ErrorCode::kNotFound);
  auto a = launch("alice");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a->server_id, ServerId("s2"));
  // s1 stops answering: missing at once, dead after server_dead_after; neither takes sessions.
  ASSERT_TRUE(manager_->recordServerCheck(ServerId("s1"), true, "").ok());
  clock_.advance(std::chrono::seconds(10));
  auto missing = manager_->recordServerCheck(ServerId("s1"), false, "connection refused");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, ServerStatus::kMissing);
  auto b = launch("bob");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message(),
            "pool Finance: 2 servers: 1 assigned to another user, 1 not answering (connection refused)");
  clock_.advance(std::chrono::minutes(5));
  EXPECT_EQ(manager_->recordServerCheck(ServerId("s1"), false, "timed out")->status, ServerStatus::kDead);
  ASSERT_TRUE(manager_->recordServerCheck(ServerId("s1"), true, "").ok());
  EXPECT_TRUE(launch("bob").ok());
}

TEST_F(FixedServerTest, ConnectionChecksFindWhoAnswers) {
  // One server that listens (a socket of this test) and one on a port nothing listens on.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t len = sizeof a;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  Server up = server("up", 1);
  up.port = ntohs(a.sin_port);
  ASSERT_TRUE(manager_->upsertServer(up).ok());
  const int closed = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in b{};
  b.sin_family = AF_INET;
  b.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(closed, reinterpret_cast<sockaddr*>(&b), sizeof b), 0);
  len = sizeof b;
  ::getsockname(closed, reinterpret_cast<sockaddr*>(&b), &len);
  Server down = server("down", 1);
  down.port = ntohs(b.sin_port);  // Bound, never listening: connections are refused.
  ASSERT_TRUE(manager_->upsertServer(down).ok());
  Server off = server("off", 1);
  off.enabled = false;
  ASSERT_TRUE(manager_->upsertServer(off).ok());
  auto n = manager_->checkServers(std::chrono::seconds(2));
  ASSERT_TRUE(n.ok()) << n.error().toString();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(stored("up").status, ServerStatus::kRunning);
  EXPECT_EQ(stored("down").status, ServerStatus::kMissing);
  EXPECT_NE(stored("down").status_reason.find("refused"), std::string::npos) << stored("down").status_reason;
  EXPECT_EQ(stored("off").status, ServerStatus::kUnknown);  // A disabled server is not checked.
  ::close(listener);
  ::close(closed);
}

// A VNC server in a thread: RFB 3.8, VNC Authentication against `password`, one client at a time.
class FakeVncServer {
 public:
  explicit FakeVncServer(std::string password) : password_(std::move(password)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeVncServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  int logins() const { return logins_.load(); }
  int failures() const { return failures_.load(); }

 private:
  void serve() {
    for (;;) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      timeval tv{3, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      unsigned char buf[64];
      const unsigned char challenge[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
      bool ok = ::send(c, "RFB 003.008\n\x01\x02", 14, MSG_NOSIGNAL) == 14 && ::recv(c, buf, 12, MSG_WAITALL) == 12 &&
                ::recv(c, buf, 1, MSG_WAITALL) == 1 && buf[0] == 2 && ::send(c, challenge, 16, MSG_NOSIGNAL) == 16 &&
                ::recv(c, buf, 16, MSG_WAITALL) == 16;
      const auto expected = auth::detail::vncAuthResponse(password_, challenge);
      ok = ok && std::memcmp(buf, expected.data(), 16) == 0;
      // Counted before the answer that ends the client's check, so the test sees the count once
      // the check returns.
      if (!ok) ++failures_;
      const unsigned char result[4] = {0, 0, 0, static_cast<unsigned char>(ok ? 0 : 1)};
      (void)::send(c, result, 4, MSG_NOSIGNAL);
      if (ok && ::recv(c, buf, 1, MSG_WAITALL) == 1 && buf[0] == 1) {
        const unsigned char init[24] = {0, 8, 0, 8, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0};
        ++logins_;
        (void)::send(c, init, 24, MSG_NOSIGNAL);
      } else if (ok) {
        ++failures_;
      }
      ::close(c);
    }
  }

  std::string password_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<int> logins_{0}, failures_{0};
};

TEST_F(FixedServerTest, VncChecksLogInSoAServerNeverLocksTheProxyOut) {
  FakeVncServer vnc("vnc-pw");
  Server s = server("vnc", 1);
  s.connection_type = ServerConnectionType::kVnc;
  s.port = vnc.port();
  ASSERT_TRUE(manager_->upsertServer(s, {.password = "vnc-pw"}).ok());
  ASSERT_EQ(*manager_->checkServers(std::chrono::seconds(2)), 1);
  EXPECT_EQ(vnc.logins(), 1);
  EXPECT_EQ(stored("vnc").status, ServerStatus::kRunning);
  // A wrong password is found once and not tried again (each try counts against the proxy's
  // address), until the password changes.
  ASSERT_TRUE(manager_->upsertServer(stored("vnc"), {.password = "wrong"}).ok());
  ASSERT_EQ(*manager_->checkServers(std::chrono::seconds(2)), 0);
  ASSERT_EQ(*manager_->checkServers(std::chrono::seconds(2)), 0);
  EXPECT_EQ(vnc.failures(), 1);
  EXPECT_NE(stored("vnc").status_reason.find("refused the stored VNC password"), std::string::npos);
  ASSERT_TRUE(manager_->upsertServer(stored("vnc"), {.password = "vnc-pw"}).ok());
  ASSERT_EQ(*manager_->checkServers(std::chrono::seconds(2)), 1);
  EXPECT_EQ(vnc.logins(), 2);
  // A VNC server whose users give their own password is not checked at all.
  ASSERT_TRUE(manager_->upsertServer(stored("vnc"), {.password = std::string()}).ok());
  ASSERT_EQ(*manager_->checkServers(std::chrono::seconds(2)), 0);
  EXPECT_EQ(vnc.logins() + vnc.failures(), 3);
}

TEST_F(FixedServerTest, LinkWorkspacesStartNoSession) {
  Workspace w;
  w.id = WorkspaceId("docs");
  w.type = WorkspaceType::kLink;
  w.friendly_name = "Docs";
  w.link_url = "javascript:alert(1)";
  EXPECT_FALSE(manager_->upsertWorkspace(w).ok());  // Only http(s) links.
  w.link_url = "https://docs.example.com/";
  ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
  auto r = manager_->requestSession({UserId("alice"), WorkspaceId("docs"), std::nullopt, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
}

// ---- the gateway's request and pins --------------------------------------------------------------

TEST(GatewayRequest, SealedRequestsOpenOnlyUnderTheKeyAndBeforeTheyExpire) {
  const std::string key(40, 'g');
  spi::GatewayRequest r;
  r.protocol = "rdp";
  r.host = "10.0.0.5";
  r.port = 3389;
  r.username = "alice";
  r.password = "secret-pw";
  r.security = "nla";
  const auto now = fromUnixMillis(1'700'000'000'000);
  auto line = gateway::sealRequest(key, r, now);
  ASSERT_TRUE(line.ok());
  EXPECT_TRUE(line->starts_with(gateway::kRequestPrefix));
  EXPECT_EQ(line->back(), '\n');
  EXPECT_EQ(line->find("secret-pw"), std::string::npos);
  auto opened = gateway::openRequest(key, *line, now + std::chrono::seconds(30));
  ASSERT_TRUE(opened.ok()) << opened.error().toString();
  EXPECT_EQ(opened->password, "secret-pw");
  EXPECT_EQ(opened->security, "nla");
  EXPECT_EQ(opened->port, 3389);
  EXPECT_EQ(gateway::openRequest(key, *line, now + std::chrono::minutes(2)).error().code(),
            ErrorCode::kUnauthenticated);
  EXPECT_EQ(gateway::openRequest(std::string(40, 'h'), *line, now).error().code(), ErrorCode::kUnauthenticated);
  std::string tampered = *line;
  tampered[20] = tampered[20] == 'a' ? 'b' : 'a';
  EXPECT_EQ(gateway::openRequest(key, tampered, now).error().code(), ErrorCode::kUnauthenticated);
  EXPECT_FALSE(gateway::openRequest(key, "GET / HTTP/1.1", now).ok());
  r.host.clear();
  EXPECT_EQ(gateway::sealRequest(key, r, now).error().code(), ErrorCode::kInvalidArgument);
}

TEST(GatewayPins, PinOnFirstUseRefuseAChangeAndKeepThemPrivate) {
  const auto dir = std::filesystem::temp_directory_path() / ("kasm-pins-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "pins").string();
  {
    gateway::FilePins pins(path);
    EXPECT_TRUE(pins.check("rdp:h:3389", "sha256:aa").ok());
    EXPECT_TRUE(pins.check("rdp:h:3389", "sha256:aa").ok());
    EXPECT_TRUE(pins.check("ssh:h:22", "sha256:bb").ok());
  }
  gateway::FilePins again(path);  // Read back from the file.
  auto changed = again.check("rdp:h:3389", "sha256:cc");
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(changed.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(changed.error().message().find("sha256:aa"), std::string::npos);
  EXPECT_NE(changed.error().message().find("sha256:cc"), std::string::npos);
  EXPECT_FALSE(again.check("bad key", "sha256:aa").ok());
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::others_all,
            std::filesystem::perms::none);
  std::filesystem::remove_all(dir);
}

class EchoBackend final : public spi::GatewayBackend {
 public:
  std::string_view protocol() const noexcept override { return "echo"; }
  Result<void> serve(const spi::GatewayRequest& request, int fd, spi::GatewayPins&) override {
    const std::string hello = "hello " + request.username + "\n";
    (void)!::write(fd, hello.data(), hello.size());
    char buf[256];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) (void)!::write(fd, buf, static_cast<std::size_t>(n));
    return {};
  }
};

int connectTo(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

std::string readSome(int fd) {
  char buf[256];
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const ssize_t n = ::read(fd, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

TEST(GatewayServer, ServesSealedRequestsWithTheirBackendAndDropsOthers) {
  spi::registerGatewayBackend("echo", [] { return std::make_unique<EchoBackend>(); });
  const auto dir = std::filesystem::temp_directory_path() / ("kasm-gw-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string key(48, 'z');
  auto server = gateway::GatewayServer::start({.key = key, .pins_file = (dir / "pins").string()});
  ASSERT_TRUE(server.ok()) << server.error().toString();
  spi::GatewayRequest r;
  r.protocol = "echo";
  r.host = "127.0.0.1";
  r.port = 1;
  r.username = "alice";
  auto line = gateway::sealRequest(key, r, SystemClock().now());
  ASSERT_TRUE(line.ok());
  const int fd = connectTo((*server)->port());
  // The request and the first stream bytes in one write: the backend still gets the bytes.
  const std::string first = *line + "ping";
  ASSERT_EQ(::write(fd, first.data(), first.size()), static_cast<ssize_t>(first.size()));
  std::string got;
  for (int i = 0; i < 10 && got.find("ping") == std::string::npos; ++i) got += readSome(fd);
  EXPECT_EQ(got, "hello alice\nping");
  // Anything else is closed without a word.
  const int stranger = connectTo((*server)->port());
  const std::string bogus = "KASMGW1 v1.00\n";
  ASSERT_EQ(::write(stranger, bogus.data(), bogus.size()), static_cast<ssize_t>(bogus.size()));
  EXPECT_EQ(readSome(stranger), "");
  ::close(stranger);
  r.protocol = "nope";
  auto unknown = gateway::sealRequest(key, r, SystemClock().now());
  const int third = connectTo((*server)->port());
  ASSERT_EQ(::write(third, unknown->data(), unknown->size()), static_cast<ssize_t>(unknown->size()));
  EXPECT_EQ(readSome(third), "");
  ::close(third);
  // stop() ends live connections too.
  EXPECT_EQ((*server)->activeConnections(), 1u);
  (*server)->stop();
  EXPECT_EQ((*server)->activeConnections(), 0u);
  ::close(fd);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kasm
