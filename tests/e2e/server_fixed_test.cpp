// Fixed servers on kasm-server as a process (SQLite, no Docker): an administrator adds a real VNC
// server (TigerVNC's Xvnc on loopback, started by scripts/services/xvnc.sh) and its workspace over
// REST; users launch it with request_kasm and reach its desktop through the proxy, which answers
// the server's VNC authentication itself. Also: secrets never come back, one session per user and
// the server's limit, a wrong password told to the viewer, a link workspace, and RDP / SSH servers
// reached through kasm-gateway when the test's xrdp and sshd run.

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>

#include "e2e/e2e_support.hpp"
#include "support/services.hpp"

namespace kasm::e2e {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::optional<std::pair<std::string, int>> addressOf(const char* env) {
  const char* v = std::getenv(env);
  if (!v || !*v) return std::nullopt;
  const std::string s(v);
  const auto colon = s.rfind(':');
  return std::make_pair(s.substr(0, colon), std::atoi(s.substr(colon + 1).c_str()));
}

std::string envOr(const char* name, std::string fallback = {}) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : fallback;
}

class FixedServers : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kasm-fixed-e2e-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    pid_ = spawn({KASM_SERVER_BINARY, "--data-dir", dir_.string(), "--http", "--port", "0", "--no-local-agent"}, out,
                 {{"KASM_ADMIN_PASSWORD", "fixed-e2e-password"}, {"KASM_GATEWAY_BIN", KASM_GATEWAY_BINARY}});
    ASSERT_GT(pid_, 0);
    ::close(out[1]);
    out_ = ::fdopen(out[0], "r");
    port_ = readListeningPort(out_, log_);
    ASSERT_GT(port_, 0) << log_;
    const auto key = createApiKeyWithCli(KASM_SERVER_BINARY, {"--data-dir", dir_.string()});
    ASSERT_FALSE(key.key.empty());
    key_ = key.key;
    secret_ = key.secret;
    bearer_ = "Authorization: Bearer " + key.key + ":" + key.secret + "\r\n";
    auto zones = rest("GET", "/api/v1/zones");
    ASSERT_EQ(zones.status, 200) << zones.body;
    zone_ = std::string(json::parse(zones.body).as_object()["items"].as_array()[0].as_object()["id"].as_string());
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_) ::fclose(out_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  HttpReply rest(const std::string& method, const std::string& path, const std::string& body = {}) {
    return httpRequest(port_, method, path, body, bearer_);
  }

  json::object verb(const std::string& name, json::object body, int expect = 200) {
    body["api_key"] = key_;
    body["api_key_secret"] = secret_;
    auto r = httpRequest(port_, "POST", "/api/public/" + name, json::serialize(body));
    EXPECT_EQ(r.status, expect) << name << ": " << r.body;
    auto v = json::parse(r.body.empty() ? "{}" : r.body);
    return v.is_object() ? v.as_object() : json::object{};
  }

  std::string createUser(const std::string& name) {
    auto u = verb("create_user", {{"target_user", {{"username", name}}}});
    return std::string(u["user"].as_object()["user_id"].as_string());
  }

  // Adds a server and a workspace for it; returns {server id, workspace id}.
  std::pair<std::string, std::string> addServer(json::object server, const std::string& name) {
    server["friendly_name"] = name;
    server["zone_id"] = zone_;
    auto created = rest("POST", "/api/v1/servers", json::serialize(server));
    EXPECT_EQ(created.status, 201) << created.body;
    const auto sid = std::string(json::parse(created.body).as_object()["id"].as_string());
    json::object ws{{"type", "server"}, {"server_id", sid}, {"friendly_name", name + " desktop"}};
    auto w = rest("POST", "/api/v1/workspaces", json::serialize(ws));
    EXPECT_EQ(w.status, 201) << w.body;
    return {sid, std::string(json::parse(w.body).as_object()["id"].as_string())};
  }

  // Gives the server a wrong password, then lets the proxy's memory of targets (1 s) pass.
  void setWrongPassword(const std::string& server_id) {
    ASSERT_EQ(rest("PATCH", "/api/v1/servers/" + server_id, R"({"connection_password":"wrong-pw"})").status, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  }

  // Opens the session's WebSocket through the proxy, from the kasm_url request_kasm gave.
  int openDesktop(WebSocketProbe& ws, const json::object& launched) {
    const std::string url(launched.at("kasm_url").as_string());
    const auto path = url.substr(url.find("/desktop/"));
    const auto q = path.find("?token=");
    return ws.open(port_, path.substr(0, q) + "websockify" + path.substr(q));
  }

  fs::path dir_;
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  int port_ = 0;
  std::string log_, key_, secret_, bearer_, zone_;
};

// The browser's RFB handshake up to ServerInit; returns the desktop's width and height, or the
// reason the proxy gave.
struct DesktopInit {
  bool ok = false;
  int width = 0, height = 0;
  std::string why;  // When !ok.
};

DesktopInit failed(std::string why) {
  return {false, 0, 0, std::move(why)};
}

DesktopInit rfbToServerInit(WebSocketProbe& ws) {
  if (ws.receiveBytes(12) != "RFB 003.008\n") return failed("no RFB 3.8 greeting");
  if (!ws.send("RFB 003.008\n")) return failed("cannot send the version");
  const std::string count = ws.receiveBytes(1);
  if (count == std::string(1, '\0')) {
    const std::string len = ws.receiveBytes(4);
    if (len.size() != 4) return failed("a failure without a reason");
    const std::size_t n = (static_cast<unsigned char>(len[2]) << 8) | static_cast<unsigned char>(len[3]);
    return failed("refused: " + ws.receiveBytes(n));
  }
  if (count != std::string(1, '\x01') || ws.receiveBytes(1) != std::string(1, '\x01'))
    return failed("the proxy did not offer only security None");
  if (!ws.send(std::string("\x01", 1)) || ws.receiveBytes(4) != std::string(4, '\0'))
    return failed("no SecurityResult OK");
  if (!ws.send(std::string("\x01", 1))) return failed("cannot send ClientInit");
  const std::string init = ws.receiveBytes(24);
  if (init.size() != 24) return failed("no ServerInit");
  const auto u16 = [&](std::size_t at) {
    return (static_cast<unsigned char>(init[at]) << 8) | static_cast<unsigned char>(init[at + 1]);
  };
  const std::size_t name_length = (static_cast<std::size_t>(u16(20)) << 16) | static_cast<std::size_t>(u16(22));
  if (name_length > 4096 || ws.receiveBytes(name_length).size() != name_length) return failed("no desktop name");
  return {true, u16(0), u16(2), {}};
}

TEST_F(FixedServers, VncServerIsOpenedThroughTheProxyWithItsPasswordKeptOnTheServer) {
  const auto vnc = addressOf("KASM_TEST_VNC_ADDR");
  if (!vnc) KASM_SKIP_OR_FAIL("no fixed VNC server (KASM_TEST_VNC_ADDR; scripts/services/xvnc.sh)");
  const std::string password = envOr("KASM_TEST_VNC_PASSWORD");
  auto [server_id, workspace_id] = addServer({{"hostname", vnc->first},
                                              {"port", vnc->second},
                                              {"connection_type", "vnc"},
                                              {"connection_password", password},
                                              {"max_simultaneous_sessions", 2}},
                                             "vnc-host");
  // The password is written, never read back.
  for (const std::string& path : {std::string("/api/v1/servers"), "/api/v1/servers/" + server_id}) {
    auto r = rest("GET", path);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body.find(password), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("sealed"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("\"has_password\":true"), std::string::npos) << r.body;
  }
  const std::string alice = createUser("alice-vnc");
  const std::string bob = createUser("bob-vnc");
  const std::string carol = createUser("carol-vnc");
  auto a = verb("request_kasm", {{"user_id", alice}, {"image_id", workspace_id}});
  ASSERT_TRUE(a.contains("kasm_url")) << json::serialize(a);
  {
    WebSocketProbe ws;
    ASSERT_EQ(openDesktop(ws, a), 101);
    auto init = rfbToServerInit(ws);
    ASSERT_TRUE(init.ok) << init.why;
    EXPECT_EQ(init.width, 1024);
    EXPECT_EQ(init.height, 768);
  }
  // One session per user on a desktop server; the server's own limit for everyone.
  auto again = verb("request_kasm", {{"user_id", alice}, {"image_id", workspace_id}}, 429);
  EXPECT_NE(json::serialize(again).find("already serving you"), std::string::npos) << json::serialize(again);
  auto b = verb("request_kasm", {{"user_id", bob}, {"image_id", workspace_id}});
  ASSERT_TRUE(b.contains("kasm_id"));
  auto c = verb("request_kasm", {{"user_id", carol}, {"image_id", workspace_id}}, 429);
  EXPECT_NE(json::serialize(c).find("at its limit of 2"), std::string::npos) << json::serialize(c);
  // A wrong password on the server: the viewer is told why, it does not get a black screen.
  ASSERT_NO_FATAL_FAILURE(setWrongPassword(server_id));
  {
    WebSocketProbe ws;
    ASSERT_EQ(openDesktop(ws, b), 101);
    auto init = rfbToServerInit(ws);
    ASSERT_FALSE(init.ok);
    EXPECT_NE(init.why.find("refused"), std::string::npos) << init.why;
  }
  // Ending a session frees its place at once.
  verb("destroy_kasm", {{"kasm_id", a["kasm_id"]}, {"user_id", alice}});
  auto c2 = verb("request_kasm", {{"user_id", carol}, {"image_id", workspace_id}});
  EXPECT_TRUE(c2.contains("kasm_id")) << json::serialize(c2);
}

TEST_F(FixedServers, RdpServerIsShownAsADesktopThroughTheGateway) {
  const auto rdp = addressOf("KASM_TEST_XRDP_ADDR");
  if (!rdp) KASM_SKIP_OR_FAIL("no test xrdp (KASM_TEST_XRDP_ADDR; scripts/services/xrdp.sh)");
  auto [server_id, workspace_id] = addServer({{"hostname", rdp->first},
                                              {"port", rdp->second},
                                              {"connection_type", "rdp"},
                                              {"connection_username", envOr("KASM_TEST_XRDP_USER")},
                                              {"connection_password", envOr("KASM_TEST_XRDP_PASSWORD")},
                                              {"certificate_policy", "pin"},
                                              {"max_simultaneous_sessions", 3}},
                                             "rdp-host");
  const std::string alice = createUser("alice-rdp");
  auto a = verb("request_kasm", {{"user_id", alice}, {"image_id", workspace_id}});
  ASSERT_TRUE(a.contains("kasm_url")) << json::serialize(a);
  {
    WebSocketProbe ws;
    ASSERT_EQ(openDesktop(ws, a), 101);
    auto init = rfbToServerInit(ws);
    ASSERT_TRUE(init.ok) << init.why;
    EXPECT_EQ(init.width, 1280);
    EXPECT_EQ(init.height, 800);
    // A full update request is answered with the desktop's pixels (FramebufferUpdate, type 0).
    ASSERT_TRUE(ws.send(std::string("\x03\x00\x00\x00\x00\x00\x05\x00\x03\x20", 10)));
    EXPECT_EQ(ws.receiveBytes(1), std::string(1, '\0'));
  }
  // Wrong credentials: the viewer is told why instead of a login screen or a black one.
  ASSERT_NO_FATAL_FAILURE(setWrongPassword(server_id));
  {
    WebSocketProbe ws;
    ASSERT_EQ(openDesktop(ws, a), 101);
    auto init = rfbToServerInit(ws);
    ASSERT_FALSE(init.ok);
    EXPECT_NE(init.why.find("refused"), std::string::npos) << init.why;
    EXPECT_NE(init.why.find("RDP"), std::string::npos) << init.why;
  }
}

// One frame of the gateway's terminal stream (src/backends/ssh/ssh_frames.hpp): type, payload.
std::pair<int, std::string> readFrame(WebSocketProbe& ws) {
  const std::string head = ws.receiveBytes(5);
  if (head.size() != 5) return {-1, {}};
  const std::size_t n = (static_cast<std::size_t>(static_cast<unsigned char>(head[1])) << 24) |
                        (static_cast<std::size_t>(static_cast<unsigned char>(head[2])) << 16) |
                        (static_cast<std::size_t>(static_cast<unsigned char>(head[3])) << 8) |
                        static_cast<unsigned char>(head[4]);
  return {static_cast<unsigned char>(head[0]), ws.receiveBytes(n)};
}

std::string frame(char type, const std::string& payload) {
  std::string f{type};
  for (int shift = 24; shift >= 0; shift -= 8) f.push_back(static_cast<char>((payload.size() >> shift) & 0xff));
  return f + payload;
}

// Reads frames until one of `type` (returned) or an error / the end (type -1 or 0x84).
std::pair<int, std::string> frameOfType(WebSocketProbe& ws, int type, const std::string& containing = {}) {
  std::string output;
  for (int i = 0; i < 500; ++i) {
    auto f = readFrame(ws);
    if (f.first == -1 || f.first == 0x84) return f;
    if (f.first != type) continue;
    if (containing.empty()) return f;
    output += f.second;
    if (output.find(containing) != std::string::npos) return {type, output};
  }
  return {-1, output};
}

TEST_F(FixedServers, SshServerRunsCommandsThroughTheGateway) {
  const auto ssh = addressOf("KASM_TEST_SSHD_ADDR");
  if (!ssh) KASM_SKIP_OR_FAIL("no test sshd (KASM_TEST_SSHD_ADDR; scripts/services/sshd.sh)");
  const std::string user = envOr("KASM_TEST_SSHD_USER"), password = envOr("KASM_TEST_SSHD_PASSWORD");
  auto [server_id, workspace_id] = addServer({{"hostname", ssh->first},
                                              {"port", ssh->second},
                                              {"connection_type", "ssh"},
                                              {"connection_username", user},
                                              {"connection_password", password},
                                              {"max_simultaneous_sessions", 5}},
                                             "ssh-host");
  const std::string alice = createUser("alice-ssh");
  auto a = verb("request_kasm", {{"user_id", alice}, {"image_id", workspace_id}});
  ASSERT_TRUE(a.contains("kasm_url")) << json::serialize(a);
  {
    WebSocketProbe ws;
    ASSERT_EQ(openDesktop(ws, a), 101);
    auto ready = frameOfType(ws, 0x82);
    ASSERT_EQ(ready.first, 0x82) << ready.second;
    EXPECT_NE(ready.second.find("sha256:"), std::string::npos) << ready.second;
    ASSERT_TRUE(ws.send(frame('\x01', "echo kasm-$((6*7))\n")));
    auto out = frameOfType(ws, 0x81, "kasm-42");
    EXPECT_EQ(out.first, 0x81) << out.second;
  }
  // Terminals are not desktops: the same user may open another one.
  auto again = verb("request_kasm", {{"user_id", alice}, {"image_id", workspace_id}});
  EXPECT_TRUE(again.contains("kasm_id")) << json::serialize(again);
  // A wrong password is told in the terminal, not a silent close.
  ASSERT_NO_FATAL_FAILURE(setWrongPassword(server_id));
  {
    WebSocketProbe ws;
    ASSERT_EQ(openDesktop(ws, a), 101);
    auto refused = frameOfType(ws, 0x82);
    EXPECT_EQ(refused.first, 0x84) << refused.second;
    EXPECT_NE(refused.second.find("authentication failed"), std::string::npos) << refused.second;
    EXPECT_EQ(refused.second.find("wrong-pw"), std::string::npos);
  }
}

TEST_F(FixedServers, AServerWithoutCredentialsUsesWhatTheUserGives) {
  const auto ssh = addressOf("KASM_TEST_SSHD_ADDR");
  if (!ssh) KASM_SKIP_OR_FAIL("no test sshd (KASM_TEST_SSHD_ADDR; scripts/services/sshd.sh)");
  auto [server_id, workspace_id] =
      addServer({{"hostname", ssh->first}, {"port", ssh->second}, {"connection_type", "ssh"}}, "ask-host");
  auto listed = rest("GET", "/api/v1/servers/" + server_id);
  EXPECT_NE(listed.body.find("\"prompts_for_credentials\":true"), std::string::npos) << listed.body;
  const std::string bob = createUser("bob-ssh");
  auto refused = verb("request_kasm", {{"user_id", bob}, {"image_id", workspace_id}}, 400);
  EXPECT_NE(json::serialize(refused).find("asks for your credentials"), std::string::npos);
  auto b = verb("request_kasm",
                {{"user_id", bob},
                 {"image_id", workspace_id},
                 {"connection_info",
                  {{"username", envOr("KASM_TEST_SSHD_USER")}, {"password", envOr("KASM_TEST_SSHD_PASSWORD")}}}});
  ASSERT_TRUE(b.contains("kasm_url")) << json::serialize(b);
  WebSocketProbe ws;
  ASSERT_EQ(openDesktop(ws, b), 101);
  auto ready = frameOfType(ws, 0x82);
  EXPECT_EQ(ready.first, 0x82) << ready.second;
}

TEST_F(FixedServers, LinkWorkspaceOpensItsUrlWithoutASession) {
  json::object ws{{"type", "link"}, {"friendly_name", "Docs"}, {"link_url", "https://docs.example.com/start"}};
  auto w = rest("POST", "/api/v1/workspaces", json::serialize(ws));
  ASSERT_EQ(w.status, 201) << w.body;
  const auto id = std::string(json::parse(w.body).as_object()["id"].as_string());
  const std::string user = createUser("link-user");
  auto r = verb("request_kasm", {{"user_id", user}, {"image_id", id}});
  EXPECT_EQ(r["kasm_url"], "https://docs.example.com/start");
  EXPECT_TRUE(r["kasm_id"].is_null());
  auto sessions = rest("GET", "/api/v1/sessions?all=true");
  EXPECT_EQ(json::parse(sessions.body).as_object()["total"], 0) << sessions.body;
  json::object bad{{"type", "link"}, {"friendly_name", "Bad"}, {"link_url", "javascript:alert(1)"}};
  EXPECT_EQ(rest("POST", "/api/v1/workspaces", json::serialize(bad)).status, 400);
}

TEST_F(FixedServers, AServerThatIsDownIsToldNotHung) {
  // A port nothing listens on: the viewer hears why.
  auto [server_id, workspace_id] = addServer(
      {{"hostname", "127.0.0.1"}, {"port", 1}, {"connection_type", "vnc"}, {"connection_password", "x"}}, "down");
  const std::string user = createUser("down-user");
  auto a = verb("request_kasm", {{"user_id", user}, {"image_id", workspace_id}});
  WebSocketProbe ws;
  EXPECT_EQ(openDesktop(ws, a), 502);
}

}  // namespace
}  // namespace kasm::e2e
