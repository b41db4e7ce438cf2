// kasm-server as a user runs it: a real process on a free loopback port, SQLite in a temp data
// directory, the local dockerd. Developer API calls go over HTTP; the session page comes through
// the proxy with the session's URL; forged tokens are refused; destroy removes the container.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <boost/json.hpp>
#include <filesystem>

#include "docker/docker_test_support.hpp"
#include "kasm/kasm.hpp"
#include "kasm/store/postgres_store.hpp"
#include "kasm/store/sqlite_store.hpp"

namespace kasm {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

struct HttpReply {
  int status = 0;
  std::string body;
};

// One HTTP/1.0 request to 127.0.0.1:port (loopback only).
HttpReply httpRequest(int port, const std::string& method, const std::string& target, const std::string& body = {}) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  HttpReply reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return reply;
  }
  std::string req = method + " " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
                    "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  (void)::send(fd, req.data(), req.size(), 0);
  std::string raw;
  char buf[8192];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) raw.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (raw.size() > 12) reply.status = std::atoi(raw.substr(9, 3).c_str());
  const auto split = raw.find("\r\n\r\n");
  if (split != std::string::npos) reply.body = raw.substr(split + 4);
  return reply;
}

class ServerProcess : public testing::DockerTest, public ::testing::WithParamInterface<std::string> {
 protected:
  bool usePostgres() const { return GetParam() == "postgres"; }

  // The store flags both the server and the api-key command get.
  std::vector<std::string> storeArgs() const {
    if (usePostgres()) return {"--database", pg_->url(), "--data-dir", dir_.string()};
    return {"--data-dir", dir_.string()};
  }

  void SetUp() override {
    testing::DockerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    dir_ = fs::temp_directory_path() / ("kasm-server-e2e-" + run_id_);
    fs::create_directories(dir_);
    if (usePostgres()) {
      std::string why;
      pg_ = testing::ScratchPostgresDatabase::create(&why);
      if (!pg_) KASM_SKIP_OR_FAIL(why);
    }
    {
      auto store = usePostgres() ? openPostgresStore({.url = pg_->url()})
                                 : openSqliteStore({.path = (dir_ / "kasm.db").string()});
      ASSERT_TRUE(store.ok()) << store.error().toString();
      Workspace w;
      w.id = WorkspaceId("busybox");
      w.friendly_name = "Busybox web";
      w.image = image_;
      w.port = 8080;
      w.protocol = SessionProtocol::kHttp;
      w.resources = Resources::fromCores(0.5, 64 * Resources::kMiB);
      ASSERT_TRUE(Repository(**store).insert(w).ok());
    }
    // The API key, created the way an operator would.
    std::string cmd = std::string(KASM_SERVER_BINARY) + " api-key create --name e2e";
    for (const auto& a : storeArgs()) cmd += " '" + a + "'";
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    char line[1024] = {0};
    ASSERT_NE(std::fgets(line, sizeof line, p), nullptr);
    ASSERT_EQ(::pclose(p), 0);
    auto key = json::parse(line).as_object();
    api_key_ = std::string(key["api_key"].as_string());
    api_secret_ = std::string(key["api_key_secret"].as_string());

    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      std::vector<std::string> args{KASM_SERVER_BINARY};
      for (const auto& a : storeArgs()) args.push_back(a);
      for (const char* a : {"--http", "--port", "0"}) args.emplace_back(a);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(KASM_SERVER_BINARY, argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    output_ = ::fdopen(out[0], "r");
    // Wait for {"event":"listening","detail":"http://127.0.0.1:PORT"}.
    while (std::fgets(line, sizeof line, output_)) {
      std::string l(line);
      log_ += l;
      if (l.find("\"listening\"") != std::string::npos) {
        port_ = std::atoi(l.substr(l.rfind(':') + 1).c_str());
        break;
      }
    }
    ASSERT_GT(port_, 0) << "server did not start:\n" << log_;
    cleanupLabels({{"kasm.managed", "true"}, {"kasm.workspace_id", "busybox"}});
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "server did not stop cleanly";
    }
    if (output_) ::fclose(output_);
    testing::DockerTest::TearDown();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  HttpReply api(const std::string& verb, json::object body) {
    body["api_key"] = api_key_;
    body["api_key_secret"] = api_secret_;
    return httpRequest(port_, "POST", "/api/public/" + verb, json::serialize(body));
  }

  fs::path dir_;
  std::optional<testing::ScratchPostgresDatabase> pg_;
  std::string api_key_, api_secret_, log_;
  pid_t pid_ = -1;
  FILE* output_ = nullptr;
  int port_ = 0;
};

TEST_P(ServerProcess, RequestBrowseThroughTheProxyAndDestroy) {
  EXPECT_EQ(httpRequest(port_, "GET", "/healthz").status, 200);
  EXPECT_EQ(httpRequest(port_, "GET", "/readyz").status, 200);

  auto r = api("request_kasm", {{"image_id", "busybox"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto out = json::parse(r.body).as_object();
  const std::string kasm_id(out["kasm_id"].as_string());
  const std::string url(out["kasm_url"].as_string());

  auto status = api("get_kasm_status", {{"kasm_id", kasm_id}});
  ASSERT_EQ(status.status, 200) << status.body;
  EXPECT_EQ(json::parse(status.body).as_object()["operational_status"].as_string(), "running");

  auto page = httpRequest(port_, "GET", url);
  EXPECT_EQ(page.status, 200) << page.body;

  // A forged token and no token are refused; the session page is not served.
  const std::string forged = "/desktop/" + kasm_id + "/?token=v1~" + kasm_id + "~someone~9999999999999~AAAA";
  EXPECT_EQ(httpRequest(port_, "GET", forged).status, 401);
  EXPECT_EQ(httpRequest(port_, "GET", "/desktop/" + kasm_id + "/").status, 401);
  // Wrong credentials and malformed bodies get clear errors.
  EXPECT_EQ(httpRequest(port_, "POST", "/api/public/get_kasms", R"({"api_key":"x","api_key_secret":"y"})").status, 401);
  EXPECT_EQ(httpRequest(port_, "POST", "/api/public/get_kasms", "{oops").status, 400);

  auto metrics = httpRequest(port_, "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("kasm_sessions{state=\"running\"} 1"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("kasm_agents{status=\"ok\"} 1"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("kasm_proxy_rejected_total 2"), std::string::npos) << metrics.body;

  auto destroyed = api("destroy_kasm", {{"kasm_id", kasm_id}});
  ASSERT_EQ(destroyed.status, 200) << destroyed.body;
  auto left = runtime_->list({{"kasm.session_id", kasm_id}});
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
  EXPECT_NE(httpRequest(port_, "GET", url).status, 200);  // The token outlives the session; the proxy does not.
}

INSTANTIATE_TEST_SUITE_P(Stores, ServerProcess, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kasm
