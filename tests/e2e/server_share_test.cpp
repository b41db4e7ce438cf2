// Session sharing as an installation runs it: two kasm-server processes on one PostgreSQL and one
// Redis (server A with the local agent, server B without), a licence with the sharing feature, a
// stand-in desktop that echoes what reaches it. The owner shares through A; a second user joins
// through B and watches; their input never reaches the desktop until the owner gives them control
// (through A: the change reaches B's proxy through Redis); they chat across the two servers; Redis
// dies and comes back mid-chat without touching the desktop; revoking the share closes the joiner's
// view at once.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "docker/docker_test_support.hpp"
#include "e2e/e2e_support.hpp"
#include "kasm/agent/local_agent.hpp"
#include "kasm/kasm.hpp"
#include "kasm/license/keys.hpp"
#include "kasm/license/text.hpp"
#include "kasm/store/postgres_store.hpp"
#include "support/redis_server.hpp"
#include "support/services.hpp"

namespace kasm {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace e2e;

struct Server {
  pid_t pid = -1;
  FILE* out = nullptr;
  int port = 0;
  std::string log;
};

class ShareE2E : public testing::DockerTest {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);  // A peer that closed is an error to read, not a reason to die.
    testing::DockerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    std::string why;
    pg_ = testing::ScratchPostgresDatabase::create(&why);
    if (!pg_) KASM_SKIP_OR_FAIL(why);
    auto redis = testing::PrivateRedisServer::start(&why);
    if (!redis) KASM_SKIP_OR_FAIL(why);
    redis_.emplace(std::move(*redis));
    dir_ = fs::temp_directory_path() / ("kasm-share-e2e-" + run_id_);
    fs::create_directories(dir_);
    signing_ = std::move(*license::SigningKey::generate());
    std::ofstream(dir_ / "license.pub") << signing_->verifyingKey().toPem();
    {
      auto store = openPostgresStore({.url = pg_->url()});
      ASSERT_TRUE(store.ok()) << store.error().toString();
      Workspace w;
      w.id = WorkspaceId("desktop-echo");
      w.friendly_name = "A stand-in desktop";
      w.image = image_;
      w.port = 5901;
      w.protocol = SessionProtocol::kVnc;
      w.resources = Resources::fromCores(0.5, 64 * Resources::kMiB);
      w.run_config_json = fakeRfbDesktopRunConfig();
      ASSERT_TRUE(Repository(**store).insert(w).ok());
    }
    startServer(a_, {"--data-dir", (dir_ / "a").string()});
    ASSERT_GT(a_.port, 0) << a_.log;
    startServer(b_, {"--data-dir", (dir_ / "b").string(), "--no-local-agent"});
    ASSERT_GT(b_.port, 0) << b_.log;

    const auto key = createApiKeyWithCli(KASM_SERVER_BINARY, {"--database", pg_->url()});
    ASSERT_FALSE(key.key.empty()) << "kasm-server api-key create failed";
    api_key_ = key.key;
    api_secret_ = key.secret;
    bearer_ = "Authorization: Bearer " + key.key + ":" + key.secret + "\r\n";
  }

  void TearDown() override {
    for (Server* s : {&a_, &b_}) {
      if (s->pid > 0) {
        ::kill(s->pid, SIGTERM);
        int status = 0;
        ::waitpid(s->pid, &status, 0);
      }
      if (s->out) ::fclose(s->out);
    }
    // What this installation's agents left, and nothing else: another test may be launching on
    // the same engine meanwhile.
    if (pg_) {
      if (auto store = openPostgresStore({.url = pg_->url()}); store.ok()) {
        if (auto agents = Repository(**store).list<Agent>(); agents.ok()) {
          for (const auto& a : *agents) cleanupLabels({{agent::kAgentIdLabel, a.value.id.str()}});
        }
      }
    }
    testing::DockerTest::TearDown();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  void startServer(Server& s, std::vector<std::string> extra) {
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    std::vector<std::string> args{KASM_SERVER_BINARY,
                                  "--database",
                                  pg_->url(),
                                  "--redis",
                                  redis_->url(),
                                  "--http",
                                  "--port",
                                  "0",
                                  "--license-public-key",
                                  (dir_ / "license.pub").string()};
    for (auto& e : extra) args.push_back(e);
    s.pid = spawn(args, out, {{"KASM_ADMIN_PASSWORD", "e2e-admin-password"}});
    ASSERT_GE(s.pid, 0);
    ::close(out[1]);
    s.out = ::fdopen(out[0], "r");
    s.port = readListeningPort(s.out, s.log);
  }

  json::object verb(const Server& s, const std::string& name, json::object body, int expect = 200) {
    body["api_key"] = api_key_;
    body["api_key_secret"] = api_secret_;
    auto r = httpRequest(s.port, "POST", "/api/public/" + name, json::serialize(body));
    EXPECT_EQ(r.status, expect) << name << ": " << r.body;
    auto v = json::parse(r.body.empty() ? "{}" : r.body);
    return v.is_object() ? v.as_object() : json::object{};
  }

  HttpReply rest(const Server& s, const std::string& method, const std::string& path, const std::string& body = {}) {
    return httpRequest(s.port, method, path, body, bearer_);
  }

  // Installs a licence with the sharing feature for this installation, and lets All Users share.
  void licenseAndAllowSharing() {
    auto inst = rest(a_, "GET", "/api/v1/installation");
    ASSERT_EQ(inst.status, 200) << inst.body;
    license::LicenseDocument d;
    d.activation_id = "share-e2e";
    d.installation_id = std::string(json::parse(inst.body).as_object()["installation_id"].as_string());
    d.id = license::licenseIdFor(d.activation_id, d.installation_id);
    d.customer = "Share test";
    d.type = LicenseType::kConcurrentSessions;
    d.limit = 10;
    d.features = {"sharing"};
    d.issued_at = std::chrono::floor<std::chrono::seconds>(SystemClock().now()) - std::chrono::minutes(1);
    d.not_before = d.issued_at;
    d.expires_at = d.issued_at + std::chrono::hours(24);
    auto text = license::writeLicense(d, *signing_);
    ASSERT_TRUE(text.ok());
    json::object add;
    add["license"] = *text;
    auto added = rest(a_, "POST", "/api/v1/licenses", json::serialize(add));
    ASSERT_EQ(added.status, 201) << added.body;
    auto groups = rest(a_, "GET", "/api/v1/groups");
    ASSERT_EQ(groups.status, 200) << groups.body;
    std::string all;
    const auto listed = json::parse(groups.body);
    for (const auto& g : listed.as_object().at("items").as_array()) {
      if (g.as_object().at("name") == "All Users") all = std::string(g.as_object().at("id").as_string());
    }
    ASSERT_FALSE(all.empty()) << groups.body;
    auto patched = rest(a_, "PATCH", "/api/v1/groups/" + all,
                        R"({"settings":{"allow_sharing":true,"shared_session_full_control":true}})");
    ASSERT_EQ(patched.status, 200) << patched.body;
  }

  std::string createUser(const std::string& name) {
    auto u = verb(a_, "create_user", {{"target_user", {{"username", name}}}});
    return std::string(u["user"].as_object()["user_id"].as_string());
  }

  // Reads chat messages until one satisfies `want` (at most 50 messages).
  static std::optional<json::object> chatUntil(WebSocketProbe& ws,
                                               const std::function<bool(const json::object&)>& want) {
    for (int i = 0; i < 50; ++i) {
      const std::string m = ws.receive();
      if (m.empty()) return std::nullopt;
      if (m == "pong") continue;
      auto v = json::parse(m);
      if (v.is_object() && want(v.as_object())) return v.as_object();
    }
    return std::nullopt;
  }
  static bool isMessage(const json::object& o, std::string_view text) {
    auto* b = o.if_contains("body");
    if (!b || !b->is_object()) return false;
    auto* m = b->as_object().if_contains("message");
    return m && m->is_string() && std::string_view(m->as_string()) == text;
  }
  static bool isStatus(const json::object& o, std::string_view status) {
    auto* s = o.if_contains("status");
    return s && s->is_string() && s->as_string() == status;
  }

  std::optional<testing::ScratchPostgresDatabase> pg_;
  std::optional<testing::PrivateRedisServer> redis_;
  std::optional<license::SigningKey> signing_;
  fs::path dir_;
  Server a_, b_;
  std::string bearer_, api_key_, api_secret_;
};

TEST_F(ShareE2E, TwoServersOneShareViewOnlyEnforcedChatAcrossServersRedisOutageAndRevocation) {
  licenseAndAllowSharing();
  if (HasFatalFailure()) return;
  const std::string owner = createUser("owner@share.test");
  const std::string viewer = createUser("viewer@share.test");

  auto started = verb(a_, "request_kasm", {{"user_id", owner}, {"image_id", "desktop-echo"}, {"enable_sharing", true}});
  ASSERT_TRUE(started["share_id"].is_string()) << json::serialize(started);
  const std::string kasm_id(started["kasm_id"].as_string());
  const std::string share_id(started["share_id"].as_string());
  EXPECT_EQ(share_id.size(), 32u);
  json::object status;
  for (int i = 0; i < 300; ++i) {  // Bounded: 30 s.
    status = verb(a_, "get_kasm_status", {{"kasm_id", kasm_id}, {"user_id", owner}});
    if (status["operational_status"] == "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(status["operational_status"], "running") << json::serialize(status);
  const std::string owner_url(status["kasm_url"].as_string());
  const std::string owner_token = owner_url.substr(owner_url.find("token=") + 6);

  // The viewer joins through the other server.
  auto joined = verb(b_, "join_kasm", {{"share_id", share_id}, {"user_id", viewer}});
  ASSERT_EQ(joined["access"], "r") << json::serialize(joined);
  const std::string viewer_url(joined["kasm_url"].as_string());
  const std::string viewer_token = viewer_url.substr(viewer_url.find("token=") + 6);
  const std::string base = "/desktop/" + kasm_id + "/";

  // Desktops: the owner through A, the viewer through B; each does the RFB handshake with the proxy
  // (security None: neither holds the VNC password).
  WebSocketProbe owner_vnc, viewer_vnc;
  ASSERT_EQ(owner_vnc.open(a_.port, base + "websockify?token=" + owner_token), 101);
  ASSERT_EQ(rfbHandshake(owner_vnc), "");
  ASSERT_EQ(viewer_vnc.open(b_.port, base + "websockify?token=" + viewer_token), 101);
  ASSERT_EQ(rfbHandshake(viewer_vnc), "");
  // The watcher's keys and pointer never reach the desktop; their update requests do.
  ASSERT_TRUE(viewer_vnc.send(rfbKeyEvent(0x61, true) + rfbPointerEvent(4, 4, 1) + rfbUpdateRequest()));
  ASSERT_TRUE(viewer_vnc.send(rfbKeyEvent(0x61, false) + rfbUpdateRequest()));
  EXPECT_EQ(viewer_vnc.receiveBytes(20), rfbUpdateRequest() + rfbUpdateRequest())
      << "only the update requests came back from the desktop";
  // The owner's do.
  ASSERT_TRUE(owner_vnc.send(rfbKeyEvent(0x62, true) + rfbUpdateRequest()));
  EXPECT_EQ(owner_vnc.receiveBytes(18), rfbKeyEvent(0x62, true) + rfbUpdateRequest());

  // Chat across the two servers.
  WebSocketProbe owner_chat, viewer_chat;
  ASSERT_EQ(owner_chat.open(a_.port, base + "kasm/chat?token=" + owner_token), 101);
  ASSERT_EQ(viewer_chat.open(b_.port, base + "kasm/chat?token=" + viewer_token), 101);
  ASSERT_TRUE(chatUntil(owner_chat, [](const json::object& o) { return o.contains("history"); }));
  ASSERT_TRUE(chatUntil(viewer_chat, [](const json::object& o) { return o.contains("history"); }));
  ASSERT_TRUE(owner_chat.send(R"({"message":"hello from A","username":"someone else"})", true));
  auto got = chatUntil(viewer_chat, [](const json::object& o) { return isMessage(o, "hello from A"); });
  ASSERT_TRUE(got) << "a message sent through A arrives through B";
  EXPECT_EQ(got->at("body").as_object().at("username"), "owner@share.test") << "the author is who logged in";
  ASSERT_TRUE(viewer_chat.send(R"({"message":"hello from B"})", true));
  ASSERT_TRUE(chatUntil(owner_chat, [](const json::object& o) { return isMessage(o, "hello from B"); }));
  ASSERT_TRUE(viewer_chat.send(R"({"members":true})", true));
  auto members = chatUntil(viewer_chat, [](const json::object& o) { return o.contains("members"); });
  ASSERT_TRUE(members);
  EXPECT_EQ(members->at("members").as_array().size(), 2u) << json::serialize(*members);

  // The owner gives control through A: B's proxy hears of it through Redis, on the live bridge.
  verb(a_, "set_session_permissions",
       {{"kasm_id", kasm_id},
        {"session_permissions", json::array{json::object{{"user_id", viewer}, {"access", "rw"}}}}});
  std::string echoed;
  for (int i = 0; i < 50 && echoed != rfbKeyEvent(0x63, true) + rfbUpdateRequest(); ++i) {  // Bounded: 5 s.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(viewer_vnc.send(rfbKeyEvent(0x63, true) + rfbUpdateRequest()));
    echoed = viewer_vnc.receiveBytes(10);
    if (echoed == rfbUpdateRequest()) continue;  // Still watching: only the request came back.
    echoed += viewer_vnc.receiveBytes(8);
  }
  EXPECT_EQ(echoed, rfbKeyEvent(0x63, true) + rfbUpdateRequest()) << "control given on A applies on B";

  // Redis dies: chat says so, the desktops carry on; it comes back by itself.
  redis_->kill();
  EXPECT_TRUE(chatUntil(owner_chat, [](const json::object& o) { return isStatus(o, "unavailable"); }));
  ASSERT_TRUE(owner_vnc.send(rfbUpdateRequest()));
  EXPECT_EQ(owner_vnc.receiveBytes(10), rfbUpdateRequest()) << "the desktop does not need Redis";
  ASSERT_TRUE(redis_->restart());
  EXPECT_TRUE(chatUntil(owner_chat, [](const json::object& o) { return isStatus(o, "available"); }));
  EXPECT_TRUE(chatUntil(viewer_chat, [](const json::object& o) { return isStatus(o, "available"); }));
  ASSERT_TRUE(viewer_chat.send(R"({"message":"back again"})", true));
  EXPECT_TRUE(chatUntil(owner_chat, [](const json::object& o) { return isMessage(o, "back again"); }));

  // Revoking the share (through A) closes the joiner's desktop and chat on B; the owner stays.
  verb(a_, "delete_kasm_share_id", {{"kasm_id", kasm_id}});
  EXPECT_EQ(viewer_vnc.receive(), "") << "the joiner's desktop closed";
  EXPECT_FALSE(chatUntil(viewer_chat, [](const json::object&) { return false; })) << "the joiner's chat closed";
  WebSocketProbe again;
  EXPECT_EQ(again.open(b_.port, base + "websockify?token=" + viewer_token), 403);
  ASSERT_TRUE(owner_vnc.send(rfbUpdateRequest()));
  EXPECT_EQ(owner_vnc.receiveBytes(10), rfbUpdateRequest());

  verb(a_, "destroy_kasm", {{"kasm_id", kasm_id}});
}

}  // namespace
}  // namespace kasm
