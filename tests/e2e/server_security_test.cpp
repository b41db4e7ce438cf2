// kasm-server as a process, without Docker (no local agent): the control plane's security headers,
// /metrics restricted to the ops token, and a remote agent (played by the test over the agent
// protocol) that cannot steer the proxy: over-large reports are refused, its polls are bounded,
// and a session whose upstream it reports outside its publish_networks fails.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <thread>

#include "kasm/kasm.hpp"
#include "kasm/store/sqlite_store.hpp"

namespace kasm {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

struct Reply {
  int status = 0;
  std::string head, body;
  std::string header(std::string name) const {
    std::string lower = head;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto at = lower.find("\r\n" + name + ":");
    if (at == std::string::npos) return {};
    const auto start = head.find_first_not_of(' ', at + 3 + name.size());
    return head.substr(start, head.find("\r\n", start) - start);
  }
};

// One HTTP/1.0 request to 127.0.0.1:port.
Reply request(int port, const std::string& method, const std::string& target, const std::string& body = {},
              const std::string& extra = {}) {
  Reply r;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{40, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return r;
  }
  const std::string req = method + " " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
                          extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  (void)::send(fd, req.data(), req.size(), 0);
  std::string raw;
  char buf[8192];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) raw.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (raw.size() > 12) r.status = std::atoi(raw.substr(9, 3).c_str());
  const auto split = raw.find("\r\n\r\n");
  if (split != std::string::npos) {
    r.head = raw.substr(0, split);
    r.body = raw.substr(split + 4);
  }
  return r;
}

class SecuredServer : public ::testing::Test {
 protected:
  void start(std::vector<std::pair<std::string, std::string>> env) {
    dir_ = fs::temp_directory_path() / ("kasm-security-e2e-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    {
      auto store = openSqliteStore({.path = (dir_ / "kasm.db").string()});
      ASSERT_TRUE(store.ok()) << store.error().toString();
      Workspace w;
      w.id = WorkspaceId("web");
      w.friendly_name = "A web workspace";
      w.image = "example/web:1";
      w.port = 8080;
      w.protocol = SessionProtocol::kHttp;
      w.resources = Resources::fromCores(0.5, 64 * Resources::kMiB);
      ASSERT_TRUE(Repository(**store).insert(w).ok());
    }
    env.emplace_back("KASM_ADMIN_PASSWORD", "security-e2e-password");
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
      std::vector<std::string> args{KASM_SERVER_BINARY, "--data-dir", dir_.string(),     "--http",
                                    "--port",           "0",          "--no-local-agent"};
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    output_ = ::fdopen(out[0], "r");
    char line[1024];
    while (std::fgets(line, sizeof line, output_)) {
      const std::string l(line);
      if (l.find("\"listening\"") != std::string::npos) {
        port_ = std::atoi(l.substr(l.rfind(':') + 1).c_str());
        break;
      }
    }
    ASSERT_GT(port_, 0) << "the server did not start";
  }

  void TearDown() override {
    stop_agent_.store(true);
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    for (auto& t : pollers_) t.join();
    if (output_) ::fclose(output_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Cookie and CSRF header fields of the first administrator's login.
  std::string adminAuth() {
    auto login = request(port_, "POST", "/api/v1/auth/login",
                         R"({"username":"admin@kasm.local","password":"security-e2e-password"})");
    EXPECT_EQ(login.status, 200) << login.body;
    const std::string cookie = login.header("set-cookie").substr(0, login.header("set-cookie").find(';'));
    const std::string csrf(json::parse(login.body).as_object()["csrf_token"].as_string());
    return "Cookie: " + cookie + "\r\nX-CSRF-Token: " + csrf + "\r\n";
  }

  // Plays kasm-agent with `threads` pollers (more than the server lets one agent hold): provisions
  // answer with the next of `upstreams`; other commands succeed with nothing.
  void runAgent(const std::string& id, const std::string& token, std::vector<std::string> upstreams, int threads) {
    upstreams_ = std::move(upstreams);
    for (int i = 0; i < threads; ++i) {
      pollers_.emplace_back([this, id, token] {
        const std::string ident = R"("agent_id":")" + id + R"(","token":")" + token + "\"";
        while (!stop_agent_.load()) {
          auto poll = request(port_, "POST", "/api/agent/v1/poll", "{" + ident + "}");
          if (poll.status == 429) {
            ++refused_polls_;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            continue;
          }
          if (poll.status != 200) {
            if (poll.status == 0) return;  // The server is gone.
            continue;
          }
          auto o = json::parse(poll.body).as_object();
          auto command = json::parse(o["command"].as_string()).as_object();
          std::string result = R"({"ok":true,"value":null})";
          const std::string op(command["op"].as_string());
          if (op == "sessions") result = R"({"ok":true,"value":[]})";
          if (op == "provision") {
            std::string upstream;
            {
              std::lock_guard lock(mutex_);
              upstream = upstreams_.at(provisions_++);
            }
            result = json::serialize(json::object{
                {"ok", true},
                {"value", json::object{{"container_id", "c"}, {"container_name", "n"}, {"upstream", upstream}}}});
          }
          request(port_, "POST", "/api/agent/v1/result",
                  "{" + ident + R"(,"id":)" + std::to_string(o["id"].as_int64()) + R"(,"result":)" +
                      json::serialize(json::value(result)) + "}");
        }
      });
    }
  }

  // Registers a remote agent in the first zone, publishing in 10.9.0.0/16: its registration JSON.
  json::object registerAgent(const std::string& auth) {
    auto zones = json::parse(request(port_, "GET", "/api/v1/zones", {}, auth).body).as_object();
    const std::string zone(zones["items"].as_array()[0].as_object()["id"].as_string());
    auto reg =
        request(port_, "POST", "/api/v1/agents",
                json::serialize(json::object{
                    {"hostname", "remote"}, {"zone_id", zone}, {"publish_networks", json::array{"10.9.0.0/16"}}}),
                auth);
    EXPECT_EQ(reg.status, 201) << reg.body;
    return reg.status == 201 ? json::parse(reg.body).as_object() : json::object{};
  }

  // Polls the session (bounded: 15 s) until it leaves requested/provisioning.
  std::string finalState(const std::string& id, const std::string& auth) {
    std::string state;
    for (int i = 0; i < 150; ++i) {
      auto s = request(port_, "GET", "/api/v1/sessions/" + id, {}, auth);
      if (s.status == 200) state = std::string(json::parse(s.body).as_object()["state"].as_string());
      if (state != "requested" && state != "provisioning" && !state.empty()) return state;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return state;
  }

  fs::path dir_;
  pid_t pid_ = -1;
  FILE* output_ = nullptr;
  int port_ = 0;
  std::atomic<bool> stop_agent_{false};
  std::atomic<int> refused_polls_{0};
  std::mutex mutex_;
  std::vector<std::string> upstreams_;
  std::size_t provisions_ = 0;
  std::vector<std::thread> pollers_;
};

TEST_F(SecuredServer, TheControlPlaneSendsItsContentSecurityPolicy) {
  start({});
  auto res = request(port_, "GET", "/healthz");
  ASSERT_EQ(res.status, 200);
  const std::string csp = res.header("Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(res.header("X-Frame-Options"), "DENY");
  EXPECT_EQ(res.header("X-Content-Type-Options"), "nosniff");
}

TEST_F(SecuredServer, FrameAncestorsAreTheConfiguredPortals) {
  start({{"KASM_FRAME_ANCESTORS", "https://portal.example, https://intranet.example:8443"}});
  const std::string csp = request(port_, "GET", "/healthz").header("Content-Security-Policy");
  EXPECT_NE(csp.find("frame-ancestors https://portal.example https://intranet.example:8443"), std::string::npos) << csp;
}

TEST_F(SecuredServer, MetricsNeedTheOpsTokenWhenConfigured) {
  start({{"KASM_OPS_ACCESS", "token"}, {"KASM_OPS_TOKEN", "ops-secret"}});
  EXPECT_EQ(request(port_, "GET", "/metrics").status, 403);
  EXPECT_EQ(request(port_, "GET", "/metrics", {}, "Authorization: Bearer wrong\r\n").status, 403);
  auto ok = request(port_, "GET", "/metrics", {}, "Authorization: Bearer ops-secret\r\n");
  EXPECT_EQ(ok.status, 200);
  EXPECT_NE(ok.body.find("kasm_sessions"), std::string::npos);
  EXPECT_EQ(request(port_, "GET", "/readyz").status, 200) << "readiness itself stays open";
}

TEST_F(SecuredServer, ARemoteAgentCannotSteerTheProxy) {
  start({});
  const std::string auth = adminAuth();
  auto regj = registerAgent(auth);
  ASSERT_FALSE(regj.empty());
  const std::string id(regj["agent"].as_object()["id"].as_string());
  const std::string token(regj["token"].as_string());
  EXPECT_EQ(json::serialize(regj["agent"].as_object()["publish_networks"]), R"(["10.9.0.0/16"])");

  const std::string ident = R"("agent_id":")" + id + R"(","token":")" + token + "\"";
  auto huge = request(port_, "POST", "/api/agent/v1/checkin",
                      "{" + ident + R"(,"reported":{"millicores":1000000000000,"memory_bytes":8589934592,"gpus":0}})");
  EXPECT_EQ(huge.status, 400) << "a host cannot claim a million cores: " << huge.body;
  ASSERT_EQ(request(port_, "POST", "/api/agent/v1/checkin",
                    "{" + ident + R"(,"reported":{"millicores":8000,"memory_bytes":8589934592,"gpus":0}})")
                .status,
            200);

  // The agent reports the metadata service, then the server's loopback, then an address of its
  // network: only the last session runs.
  runAgent(id, token, {"169.254.169.254:80", "127.0.0.1:8443", "10.9.0.7:8080"}, 4);
  for (const char* expected : {"failed", "failed", "running"}) {
    auto s = request(port_, "POST", "/api/v1/sessions", R"({"workspace_id":"web"})", auth);
    ASSERT_LT(s.status, 300) << s.body;
    const std::string sid(json::parse(s.body).as_object()["id"].as_string());
    EXPECT_EQ(finalState(sid, auth), expected) << "session " << sid;
    if (std::string(expected) == "running") break;
    (void)request(port_, "DELETE", "/api/v1/sessions/" + sid, {}, auth);
  }
  EXPECT_GT(refused_polls_.load(), 0) << "four pollers of one agent were all let wait";
}

// A command whose answer never reached the agent (its poll timed out, a balancer lost the
// response) goes out again at the agent's next poll, which lists the commands it holds: the launch
// goes on at once instead of waiting out the call timeout (5 minutes).
TEST_F(SecuredServer, ACommandThatNeverReachedTheAgentGoesOutAgain) {
  start({});
  const std::string auth = adminAuth();
  auto regj = registerAgent(auth);
  ASSERT_FALSE(regj.empty());
  const std::string id(regj["agent"].as_object()["id"].as_string());
  const std::string ident =
      R"("agent_id":")" + id + R"(","token":")" + std::string(regj["token"].as_string()) + R"(","boot_id":"process-1")";
  ASSERT_EQ(request(port_, "POST", "/api/agent/v1/checkin",
                    "{" + ident + R"(,"reported":{"millicores":8000,"memory_bytes":8589934592,"gpus":0}})")
                .status,
            200);
  auto launch = request(port_, "POST", "/api/v1/sessions", R"({"workspace_id":"web"})", auth);
  ASSERT_LT(launch.status, 300) << launch.body;
  const std::string sid(json::parse(launch.body).as_object()["id"].as_string());

  // The first poll's answer is "lost": the agent never runs it.
  auto provisionCommand = [&](const std::string& received) -> std::pair<std::int64_t, std::string> {
    for (int i = 0; i < 3; ++i) {  // Each poll waits 25 s at most for a command.
      auto poll = request(port_, "POST", "/api/agent/v1/poll", "{" + ident + R"(,"received":)" + received + "}");
      if (poll.status == 204) continue;
      EXPECT_EQ(poll.status, 200) << poll.body;
      if (poll.status != 200) return {0, {}};
      auto o = json::parse(poll.body).as_object();
      const std::string command(o["command"].as_string());
      if (command.find(R"("op":"provision")") == std::string::npos) {  // A reconcile's listing.
        (void)request(port_, "POST", "/api/agent/v1/result",
                      "{" + ident + R"(,"id":)" + std::to_string(o["id"].as_int64()) +
                          R"(,"result":"{\"ok\":true,\"value\":[]}"})");
        continue;
      }
      return {o["id"].as_int64(), command};
    }
    return {0, {}};
  };
  auto [first, command] = provisionCommand("[]");
  ASSERT_NE(first, 0);
  EXPECT_EQ(request(port_, "POST", "/api/agent/v1/poll", "{" + ident + R"(,"received":"all"})").status, 400);
  EXPECT_EQ(request(port_, "POST", "/api/agent/v1/poll", "{" + ident + R"(,"received":[-1]})").status, 400);
  // Its next poll lists nothing: the same command, with the same id, comes again at once.
  auto [again, command_again] = provisionCommand("[]");
  EXPECT_EQ(again, first);
  EXPECT_EQ(command_again, command);
  auto answered = request(
      port_, "POST", "/api/agent/v1/result",
      "{" + ident + R"(,"id":)" + std::to_string(again) + R"(,"result":)" +
          json::serialize(json::value(json::serialize(json::object{
              {"ok", true},
              {"value",
               json::object{{"container_id", "c"}, {"container_name", "n"}, {"upstream", "10.9.0.7:8080"}}}}))) +
          "}");
  ASSERT_EQ(answered.status, 200) << answered.body;
  EXPECT_EQ(finalState(sid, auth), "running");
}

}  // namespace
}  // namespace kasm
