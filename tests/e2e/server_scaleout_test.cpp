// Scale-out on real processes: two kasm-servers on one PostgreSQL. One leads the zone; when it is
// killed (SIGKILL) the other takes the zone over once the lease expires (the time is printed);
// SIGTERM makes a server say "draining" on /readyz and hand its zones over at once before it stops.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "e2e/e2e_support.hpp"
#include "support/services.hpp"

namespace kasm::e2e {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

struct Server {
  pid_t pid = -1;
  FILE* out = nullptr;
  int port = 0;
  std::string log;
};

class ScaleOut : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    pg_ = testing::ScratchPostgresDatabase::create(&why);
    if (!pg_) KASM_SKIP_OR_FAIL(why);
    base_ = fs::temp_directory_path() / ("kasm-scaleout-" + std::to_string(::getpid()));
    fs::create_directories(base_);
  }
  void TearDown() override {
    if (nginx_ > 0) {
      ::kill(nginx_, SIGTERM);
      ::waitpid(nginx_, nullptr, 0);
    }
    for (auto& s : servers_) stopServer(s, SIGKILL);
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  std::vector<std::string> storeArgs(const std::string& name) {
    return {"--database", pg_->url(), "--data-dir", (base_ / name).string()};
  }

  Server& startServer(const std::string& name) {
    int out[2];
    EXPECT_EQ(::pipe(out), 0);
    std::vector<std::string> args{KASM_SERVER_BINARY};
    for (const auto& a : storeArgs(name)) args.push_back(a);
    for (const char* a : {"--http", "--port", "0", "--no-local-agent", "--drain-seconds", "2"}) args.emplace_back(a);
    Server s;
    s.pid = spawn(args, out, {{"KASM_ADMIN_PASSWORD", "scaleout-admin-password"}});
    ::close(out[1]);
    s.out = ::fdopen(out[0], "r");
    s.port = readListeningPort(s.out, s.log);
    servers_.push_back(s);
    return servers_.back();
  }

  static void stopServer(Server& s, int sig) {
    if (s.pid > 0) {
      ::kill(s.pid, sig);
      int status = 0;
      ::waitpid(s.pid, &status, 0);
      s.pid = -1;
    }
    if (s.out) {
      ::fclose(s.out);
      s.out = nullptr;
    }
  }

  // GET /api/v1/managers through `port`: manager id -> the zones it leads (live ones only).
  std::map<std::string, std::vector<std::string>> leaders(int port) {
    std::map<std::string, std::vector<std::string>> out;
    auto r = httpRequest(port, "GET", "/api/v1/managers", {},
                         "Authorization: Bearer " + key_.key + ":" + key_.secret + "\r\n");
    if (r.status != 200) return out;
    const json::value page = json::parse(r.body);
    for (const auto& m : page.as_object().at("items").as_array()) {
      auto& leading = out[std::string(m.as_object().at("id").as_string())];
      for (const auto& z : m.as_object().at("leading").as_array()) leading.emplace_back(z.as_string());
    }
    return out;
  }
  static std::string leaderOf(const std::map<std::string, std::vector<std::string>>& managers) {
    std::string who;
    for (const auto& [id, zones] : managers)
      if (!zones.empty()) who += (who.empty() ? "" : ",") + id;
    return who;
  }

  // nginx (Debian's) with scripts/nginx/kasm-scale-out.conf in front of the two servers, as the
  // documentation says, on a loopback port: its port, or 0 when nginx is not installed.
  int startNginx(int port_a, int port_b) {
    const char* binary = "/usr/sbin/nginx";
    if (::access(binary, X_OK) != 0) return 0;
    std::ifstream in(std::string(KASM_SOURCE_DIR) + "/scripts/nginx/kasm-scale-out.conf");
    std::stringstream text;
    text << in.rdbuf();
    std::string conf = text.str();
    auto replace = [&](const std::string& from, const std::string& to) {
      const auto at = conf.find(from);
      EXPECT_NE(at, std::string::npos) << from;
      if (at != std::string::npos) conf.replace(at, from.size(), to);
    };
    const int port = testing::unusedLoopbackPort();
    replace("10.0.0.11:8443", "127.0.0.1:" + std::to_string(port_a));
    replace("10.0.0.12:8443", "127.0.0.1:" + std::to_string(port_b));
    replace("listen 443 ssl;", "listen 127.0.0.1:" + std::to_string(port) + ";");
    replace("ssl_certificate     /etc/nginx/kasm.crt;", "");
    replace("ssl_certificate_key /etc/nginx/kasm.key;", "");
    const fs::path dir = base_ / "nginx";
    fs::create_directories(dir);
    std::ofstream(dir / "kasm.conf") << conf;
    std::ofstream(dir / "nginx.conf") << "daemon off;\npid " << (dir / "nginx.pid").string() << ";\nerror_log "
                                      << (dir / "error.log").string() << ";\nevents {}\nhttp {\n  access_log off;\n"
                                      << "  client_body_temp_path " << dir.string() << ";\n  proxy_temp_path "
                                      << dir.string() << ";\n  include " << (dir / "kasm.conf").string() << ";\n}\n";
    nginx_ = spawn({binary, "-p", dir.string(), "-c", (dir / "nginx.conf").string()});
    for (int i = 0; i < 100; ++i) {
      if (httpRequest(port, "GET", "/healthz").status == 200) return port;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return 0;
  }

  std::optional<testing::ScratchPostgresDatabase> pg_;
  pid_t nginx_ = -1;
  fs::path base_;
  std::vector<Server> servers_;
  CliApiKey key_;
};

TEST_F(ScaleOut, AKilledPrimaryIsReplacedAndADrainingServerSaysSo) {
  servers_.reserve(4);
  Server& a = startServer("a");
  ASSERT_GT(a.port, 0) << a.log;
  key_ = createApiKeyWithCli(KASM_SERVER_BINARY, storeArgs("a"));
  ASSERT_FALSE(key_.key.empty());
  Server& b = startServer("b");
  ASSERT_GT(b.port, 0) << b.log;

  // Both register; exactly one leads the zone.
  std::map<std::string, std::vector<std::string>> seen;
  for (int i = 0; i < 100 && (seen = leaders(b.port)).size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(seen.size(), 2u) << "both managers register";
  const std::string first = leaderOf(seen);
  ASSERT_FALSE(first.empty());
  ASSERT_EQ(first.find(','), std::string::npos) << "two primaries of one zone: " << first;

  // Kill the primary without warning: the other takes over once the lease expires. Which process
  // leads: its row's url names its port.
  auto urlOf = [&](const std::string& id) {
    auto r = httpRequest(b.port, "GET", "/api/v1/managers/" + id, {},
                         "Authorization: Bearer " + key_.key + ":" + key_.secret + "\r\n");
    return r.status == 200 ? std::string(json::parse(r.body).as_object().at("url").as_string()) : std::string();
  };
  const bool a_leads = urlOf(first).ends_with(":" + std::to_string(a.port));
  Server* primary = a_leads ? &a : &b;
  Server* other = a_leads ? &b : &a;
  // nginx in front, with the documented configuration: both servers answer through it.
  const int lb = startNginx(a.port, b.port);
  if (lb > 0) {
    for (int i = 0; i < 6; ++i) {
      EXPECT_EQ(httpRequest(lb, "GET", "/api/v1/managers", {},
                            "Authorization: Bearer " + key_.key + ":" + key_.secret + "\r\n")
                    .status,
                200);
    }
  } else {
    std::printf("nginx is not installed: the balancer part is left out\n");
  }

  const auto killed_at = Clock::now();
  stopServer(*primary, SIGKILL);
  // Through nginx, nothing fails: requests to the dead server go to the other one.
  if (lb > 0) {
    for (int i = 0; i < 10; ++i) {
      EXPECT_EQ(httpRequest(lb, "GET", "/api/v1/managers", {},
                            "Authorization: Bearer " + key_.key + ":" + key_.secret + "\r\n")
                    .status,
                200)
          << "request " << i << " through nginx after the kill";
    }
  }
  std::string now_leading;
  while (Clock::now() - killed_at < std::chrono::seconds(30)) {
    now_leading = leaderOf(leaders(other->port));
    if (!now_leading.empty() && now_leading != first) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double failover_s = std::chrono::duration<double>(Clock::now() - killed_at).count();
  ASSERT_FALSE(now_leading.empty());
  ASSERT_NE(now_leading, first) << "no takeover within 30 s";
  std::printf("failover after SIGKILL of the primary: %.1f s\n", failover_s);

  // SIGTERM: /readyz says draining while it finishes serving, and the zone is free at once.
  Server& c = startServer("c");
  ASSERT_GT(c.port, 0) << c.log;
  ::kill(other->pid, SIGTERM);
  std::string ready;
  for (int i = 0; i < 50; ++i) {
    ready = httpRequest(other->port, "GET", "/readyz").body;
    if (ready.find("draining") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(ready.find("draining"), std::string::npos) << ready;
  const auto drained_at = Clock::now();
  std::string after;
  while (Clock::now() - drained_at < std::chrono::seconds(10)) {
    after = leaderOf(leaders(c.port));
    if (!after.empty() && after != now_leading) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(after.empty());
  EXPECT_NE(after, now_leading) << "the draining server's zone was not handed over";
  std::printf("handover on SIGTERM: %.1f s\n", std::chrono::duration<double>(Clock::now() - drained_at).count());
  int status = 0;
  ::waitpid(other->pid, &status, 0);
  other->pid = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace kasm::e2e
