// The Docker backend against the real engine: limits, labels, ports, run-config merge, lifecycle,
// exec, logs, stats and the bad-input cases of issue 4. Every test cleans up what it creates.

#include <poll.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "docker/docker_test_support.hpp"
#include "kasm/agent/local_agent.hpp"

namespace kasm::testing {
namespace {

using spi::ContainerStatus;

// Listens on 127.0.0.1 and forwards every connection to the engine's unix socket, so the tcp://
// transport runs against the real engine without reconfiguring dockerd.
class UnixSocketForwarder {
 public:
  explicit UnixSocketForwarder(std::string socket_path) : socket_path_(std::move(socket_path)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof(a);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~UnixSocketForwarder() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    for (auto& t : pipes_) t.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  void acceptLoop() {
    while (!stopping_) {
      int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) return;
      int engine = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un u{};
      u.sun_family = AF_UNIX;
      std::snprintf(u.sun_path, sizeof(u.sun_path), "%s", socket_path_.c_str());
      if (::connect(engine, reinterpret_cast<sockaddr*>(&u), sizeof(u)) != 0) {
        ::close(client);
        ::close(engine);
        continue;
      }
      pipes_.emplace_back([client, engine] { pump(client, engine); });
    }
  }
  static void pump(int a, int b) {
    pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    bool open[2] = {true, true};
    char buf[16384];
    while (open[0] || open[1]) {
      if (::poll(fds, 2, 1000) < 0) break;
      for (int i = 0; i < 2; ++i) {
        if (!open[i] || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = ::recv(fds[i].fd, buf, sizeof(buf), 0);
        if (n <= 0) {
          open[i] = false;
          fds[i].fd = -1;
          ::shutdown(i == 0 ? b : a, SHUT_WR);
          continue;
        }
        if (::send(i == 0 ? b : a, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) open[0] = open[1] = false;
      }
    }
    ::close(a);
    ::close(b);
  }

  std::string socket_path_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::vector<std::thread> pipes_;
};

class DockerRuntimeTest : public DockerTest {
 protected:
  // True when no container of that name exists.
  bool gone(const std::string& container) {
    auto info = runtime_->inspect(container);
    return !info.ok() && info.error().code() == ErrorCode::kNotFound;
  }
};

TEST_F(DockerRuntimeTest, NegotiatesAnApiVersionWithinBothRanges) {
  std::string v = docker::negotiatedApiVersion(*runtime_);
  ASSERT_FALSE(v.empty());
  EXPECT_GE(v, std::string(docker::kMinApiVersion));
  EXPECT_LE(v, std::string(docker::kMaxApiVersion));
}

TEST_F(DockerRuntimeTest, CapsTheApiVersionAtTheConfiguredMaximum) {
  auto options = docker::DockerOptions::fromEnvironment();
  options.max_api_version = "1.40";
  auto rt = docker::openDockerRuntime(options);
  ASSERT_TRUE(rt.ok()) << rt.error().toString();
  EXPECT_EQ(docker::negotiatedApiVersion(**rt), "1.40");
}

TEST_F(DockerRuntimeTest, ReportsHostResourcesFromInfo) {
  auto host = runtime_->hostResources();
  ASSERT_TRUE(host.ok()) << host.error().toString();
  EXPECT_EQ(host->total.millicores, ::sysconf(_SC_NPROCESSORS_ONLN) * 1000);
  EXPECT_GT(host->total.memory_bytes, 256 * Resources::kMiB);
  EXPECT_FALSE(host->engine_version.empty());
}

TEST_F(DockerRuntimeTest, AppliesQuotaLimitsLabelsAndPublishesOnLoopback) {
  auto s = spec("quota");
  s.resources = {500, 64 * Resources::kMiB, 0};
  s.cpu_allocation = CpuAllocationMethod::kQuotas;
  s.labels["kasm.session_id"] = "s-quota";
  s.environment = {{"KASM_GREETING", "hello"}};
  auto info = runtime_->createAndStart(s);
  ASSERT_TRUE(info.ok()) << info.error().toString();
  EXPECT_EQ(info->status, ContainerStatus::kRunning);
  EXPECT_EQ(info->name, s.name);

  auto inspected = runtime_->inspect(info->id);
  ASSERT_TRUE(inspected.ok());
  EXPECT_EQ(inspected->nano_cpus, 500'000'000);
  EXPECT_EQ(inspected->memory_bytes, 64 * Resources::kMiB);
  EXPECT_EQ(inspected->cpu_shares, 0);
  EXPECT_EQ(inspected->labels.at("kasm.session_id"), "s-quota");
  ASSERT_EQ(inspected->published.rfind("127.0.0.1:", 0), 0u) << inspected->published;

  ASSERT_TRUE(
      agent::waitForTcp(inspected->published, std::chrono::milliseconds(500), std::chrono::milliseconds(50), 100).ok());
  EXPECT_NE(httpGet(inspected->published).find("kasm test page base"), std::string::npos);

  auto env = runtime_->exec(info->id, {{"sh", "-c", "echo $KASM_GREETING"}});
  ASSERT_TRUE(env.ok()) << env.error().toString();
  EXPECT_EQ(env->output, "hello\n");
}

TEST_F(DockerRuntimeTest, SharesMethodSetsCpuSharesNotQuota) {
  auto s = spec("shares");
  s.resources = {1500, 32 * Resources::kMiB, 0};
  s.cpu_allocation = CpuAllocationMethod::kShares;
  auto info = runtime_->createAndStart(s);
  ASSERT_TRUE(info.ok()) << info.error().toString();
  EXPECT_EQ(info->cpu_shares, 1536);
  EXPECT_EQ(info->nano_cpus, 0);
  EXPECT_EQ(info->memory_bytes, 32 * Resources::kMiB);
}

TEST_F(DockerRuntimeTest, MergesTheRunConfigIntoTheCreateBody) {
  auto s = spec("runconfig");
  s.labels["kasm.session_id"] = "keep-me";
  s.run_config_json = R"({
    "Hostname": "kasm-merged",
    "ShmSize": 67108864,
    "HostConfig": {"Memory": 48234496},
    "Labels": {"extra": "yes", "kasm.session_id": "overridden"},
    "Env": ["FROM_RUN_CONFIG=1"]
  })";
  auto info = runtime_->createAndStart(s);
  ASSERT_TRUE(info.ok()) << info.error().toString();
  EXPECT_EQ(info->memory_bytes, 48234496);                   // HostConfig merged.
  EXPECT_EQ(info->labels.at("extra"), "yes");                // Objects merge...
  EXPECT_EQ(info->labels.at("kasm.session_id"), "keep-me");  // ...but kasm's labels win.
  auto hostname = runtime_->exec(info->id, {{"sh", "-c", "cat /etc/hostname; echo $FROM_RUN_CONFIG"}});
  ASSERT_TRUE(hostname.ok());
  EXPECT_EQ(hostname->output, "kasm-merged\n1\n");
  auto shm = runtime_->exec(info->id, {{"sh", "-c", "cat /proc/mounts"}});
  ASSERT_TRUE(shm.ok());
  EXPECT_NE(shm->output.find("/dev/shm tmpfs"), std::string::npos);
  EXPECT_NE(shm->output.find("size=65536k"), std::string::npos) << shm->output;
}

TEST_F(DockerRuntimeTest, InvalidRunConfigJsonIsInvalidArgumentAndCreatesNothing) {
  auto s = spec("badjson");
  s.run_config_json = R"({"HostConfig": {"ShmSize": )";
  auto info = runtime_->createAndStart(s);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(info.error().message().find("run_config_json"), std::string::npos);
  EXPECT_TRUE(gone(s.name));

  s.run_config_json = R"(["not", "an", "object"])";
  auto array = runtime_->createAndStart(s);
  ASSERT_FALSE(array.ok());
  EXPECT_EQ(array.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(gone(s.name));
}

TEST_F(DockerRuntimeTest, MissingImageIsNotFoundAndCreatesNothing) {
  auto s = spec("noimage");
  s.image = "kasm-test/does-not-exist:" + run_id_;
  auto info = runtime_->createAndStart(s);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(gone(s.name));
}

TEST_F(DockerRuntimeTest, ImpossibleMemoryLimitsAreRefusedAndCreateNothing) {
  auto host = runtime_->hostResources();
  ASSERT_TRUE(host.ok());
  auto s = spec("hugemem");
  s.resources.memory_bytes = host->total.memory_bytes * 4;
  auto huge = runtime_->createAndStart(s);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().code(), ErrorCode::kResourceExhausted) << huge.error().toString();
  EXPECT_TRUE(gone(s.name));

  s.resources.memory_bytes = 1 * Resources::kMiB;  // Below the engine's 6 MB minimum.
  auto tiny = runtime_->createAndStart(s);
  ASSERT_FALSE(tiny.ok());
  EXPECT_EQ(tiny.error().code(), ErrorCode::kResourceExhausted) << tiny.error().toString();
  EXPECT_TRUE(gone(s.name));

  s.resources = {host->total.millicores * 2, 0, 0};
  s.cpu_allocation = CpuAllocationMethod::kQuotas;
  auto cpus = runtime_->createAndStart(s);
  ASSERT_FALSE(cpus.ok());
  EXPECT_EQ(cpus.error().code(), ErrorCode::kResourceExhausted) << cpus.error().toString();
  EXPECT_TRUE(gone(s.name));
}

TEST_F(DockerRuntimeTest, GpusThatTheHostLacksFailTheStartAndLeaveNoContainer) {
  // The engine accepts the create and fails the start: the runtime must remove what it created.
  auto s = spec("gpu");
  s.resources.gpus = 1;
  auto info = runtime_->createAndStart(s);
  if (info.ok()) GTEST_SKIP() << "this engine has a GPU driver; the failure path cannot be shown here";
  EXPECT_EQ(info.error().code(), ErrorCode::kResourceExhausted) << info.error().toString();
  EXPECT_TRUE(gone(s.name));
}

TEST_F(DockerRuntimeTest, NameClashIsAlreadyExistsAndKeepsTheFirstContainer) {
  auto s = spec("clash");
  auto first = runtime_->createAndStart(s);
  ASSERT_TRUE(first.ok()) << first.error().toString();
  auto second = runtime_->createAndStart(s);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), ErrorCode::kAlreadyExists);
  auto still = runtime_->inspect(first->id);
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->status, ContainerStatus::kRunning);
}

TEST_F(DockerRuntimeTest, ExecReturnsDemultiplexedOutputAndExitCode) {
  auto info = runtime_->createAndStart(spec("exec"));
  ASSERT_TRUE(info.ok()) << info.error().toString();
  auto r = runtime_->exec(info->id, {{"sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"}});
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_NE(r->output.find("to-stdout\n"), std::string::npos);
  EXPECT_NE(r->output.find("to-stderr\n"), std::string::npos);

  spi::ExecRequest in_dir{{"sh", "-c", "echo $PWD $WHO"}};
  in_dir.workdir = "/www";
  in_dir.environment = {{"WHO", "kasm"}};
  auto dir = runtime_->exec(info->id, in_dir);
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(dir->exit_code, 0);
  EXPECT_EQ(dir->output, "/www kasm\n");

  // Output beyond 1 MiB is cut, and the call still returns the exit code.
  auto big = runtime_->exec(info->id, {{"sh", "-c", "busybox yes | busybox head -c 3000000; exit 0"}});
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->output.size(), 1u << 20);

  auto missing = runtime_->exec(info->id, {{"/no/such/program"}});
  ASSERT_TRUE(missing.ok());
  EXPECT_NE(missing->exit_code, 0);
}

TEST_F(DockerRuntimeTest, PauseAndUnpause) {
  auto info = runtime_->createAndStart(spec("pause"));
  ASSERT_TRUE(info.ok()) << info.error().toString();
  ASSERT_TRUE(runtime_->pause(info->id).ok());
  EXPECT_EQ(runtime_->inspect(info->id)->status, ContainerStatus::kPaused);
  auto exec_paused = runtime_->exec(info->id, {{"true"}});
  ASSERT_FALSE(exec_paused.ok());
  EXPECT_EQ(exec_paused.error().code(), ErrorCode::kFailedPrecondition);
  auto again = runtime_->pause(info->id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(runtime_->unpause(info->id).ok());
  EXPECT_EQ(runtime_->inspect(info->id)->status, ContainerStatus::kRunning);
  EXPECT_NE(httpGet(runtime_->inspect(info->id)->published).find("kasm test page"), std::string::npos);
}

TEST_F(DockerRuntimeTest, StopStartKillAndRemove) {
  auto s = spec("lifecycle");
  s.command = {"sleep", "300"};
  s.port = 0;
  auto info = runtime_->createAndStart(s);
  ASSERT_TRUE(info.ok()) << info.error().toString();
  EXPECT_TRUE(info->published.empty());
  ASSERT_TRUE(runtime_->stop(info->id, std::chrono::seconds(1)).ok());
  EXPECT_EQ(runtime_->inspect(info->id)->status, ContainerStatus::kExited);
  ASSERT_TRUE(runtime_->stop(info->id, std::chrono::seconds(1)).ok());  // Already stopped: fine.
  ASSERT_TRUE(runtime_->start(info->id).ok());
  EXPECT_EQ(runtime_->inspect(info->id)->status, ContainerStatus::kRunning);
  ASSERT_TRUE(runtime_->kill(info->id).ok());
  auto killed = runtime_->inspect(info->id);
  EXPECT_EQ(killed->status, ContainerStatus::kExited);
  EXPECT_EQ(killed->exit_code, 137);
  auto kill_again = runtime_->kill(info->id);
  ASSERT_FALSE(kill_again.ok());
  EXPECT_EQ(kill_again.error().code(), ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(runtime_->remove(info->id).ok());
  EXPECT_TRUE(gone(info->id));
  auto remove_again = runtime_->remove(info->id);
  ASSERT_FALSE(remove_again.ok());
  EXPECT_EQ(remove_again.error().code(), ErrorCode::kNotFound);
  auto start_gone = runtime_->start(info->id);
  ASSERT_FALSE(start_gone.ok());
  EXPECT_EQ(start_gone.error().code(), ErrorCode::kNotFound);
}

TEST_F(DockerRuntimeTest, ListsByEveryGivenLabel) {
  for (const char* group : {"a", "a", "b"}) {
    static int n = 0;
    auto s = spec(std::string("list") + std::to_string(n++));
    s.labels["kasm.test_group"] = group;
    s.port = 0;
    s.command = {"sleep", "300"};
    ASSERT_TRUE(runtime_->createAndStart(s).ok());
  }
  auto a = runtime_->list({{kRunLabel, run_id_}, {"kasm.test_group", "a"}});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size(), 2u);
  for (const auto& c : *a) EXPECT_EQ(c.labels.at("kasm.test_group"), "a");
  auto all = runtime_->list({{kRunLabel, run_id_}});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
  auto none = runtime_->list({{kRunLabel, run_id_}, {"kasm.test_group", "c"}});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(DockerRuntimeTest, ListReportsThePublishedSessionPort) {
  auto info = runtime_->createAndStart(spec("listport"));
  ASSERT_TRUE(info.ok());
  auto listed = runtime_->list({{kRunLabel, run_id_}});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().published, info->published);
  EXPECT_EQ(listed->front().name, info->name);
  EXPECT_EQ(listed->front().status, ContainerStatus::kRunning);
}

TEST_F(DockerRuntimeTest, LogsAndStats) {
  auto s = spec("logs");
  // The engine keeps stdout and stderr apart; their relative order in the merged log is not
  // guaranteed, so the pause puts the last line clearly last.
  s.command = {"sh", "-c", "echo first-line; echo on-stderr >&2; sleep 1; echo last-line; exec sleep 300"};
  s.port = 0;
  s.resources.memory_bytes = 40 * Resources::kMiB;
  auto info = runtime_->createAndStart(s);
  ASSERT_TRUE(info.ok()) << info.error().toString();
  std::string logs;
  for (int i = 0; i < 100 && logs.find("last-line") == std::string::npos; ++i) {
    auto l = runtime_->logs(info->id, 0);
    ASSERT_TRUE(l.ok()) << l.error().toString();
    logs = *l;
    usleep(50'000);
  }
  EXPECT_NE(logs.find("first-line\n"), std::string::npos) << logs;
  EXPECT_NE(logs.find("on-stderr\n"), std::string::npos) << logs;
  EXPECT_EQ(logs.size(), std::string("first-line\non-stderr\nlast-line\n").size());
  auto tail = runtime_->logs(info->id, 1);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, "last-line\n");
  auto stats = runtime_->stats(info->id);
  ASSERT_TRUE(stats.ok()) << stats.error().toString();
  EXPECT_EQ(stats->memory_limit_bytes, 40 * Resources::kMiB);
  EXPECT_GT(stats->memory_used_bytes, 0);
}

TEST_F(DockerRuntimeTest, ADaemonThatDoesNotAnswerIsUnavailable) {
  docker::DockerOptions no_socket;
  no_socket.endpoint = "unix:///tmp/kasm-no-such-docker.sock";
  auto a = docker::openDockerRuntime(no_socket);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), ErrorCode::kUnavailable);

  docker::DockerOptions closed;
  closed.endpoint = "tcp://127.0.0.1:" + std::to_string(closedLoopbackPort());
  auto b = docker::openDockerRuntime(closed);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code(), ErrorCode::kUnavailable);

  docker::DockerOptions bad;
  bad.endpoint = "ftp://nowhere";
  auto c = docker::openDockerRuntime(bad);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(DockerRuntimeTest, SpeaksToAnEngineOverTcp) {
  std::string socket_path = "/var/run/docker.sock";
  std::string host = envOr("DOCKER_HOST");
  if (!host.empty()) {
    if (host.rfind("unix://", 0) != 0) GTEST_SKIP() << "DOCKER_HOST is not a unix socket: " << host;
    socket_path = host.substr(7);
  }
  UnixSocketForwarder forwarder(socket_path);
  docker::DockerOptions options;
  options.endpoint = "tcp://127.0.0.1:" + std::to_string(forwarder.port());
  auto tcp = docker::openDockerRuntime(options);
  ASSERT_TRUE(tcp.ok()) << tcp.error().toString();
  EXPECT_EQ(docker::negotiatedApiVersion(**tcp), docker::negotiatedApiVersion(*runtime_));
  auto info = (*tcp)->createAndStart(spec("tcp"));
  ASSERT_TRUE(info.ok()) << info.error().toString();
  auto r = (*tcp)->exec(info->id, {{"sh", "-c", "echo over-tcp"}});
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(r->output, "over-tcp\n");
  EXPECT_TRUE((*tcp)->remove(info->id).ok());
}

TEST_F(DockerRuntimeTest, SpeaksToAnEngineOverTlsWithAClientCertificate) {
  const std::string endpoint = envOr("KASM_TEST_DOCKER_TLS_ENDPOINT");
  const std::string dir = envOr("KASM_TEST_DOCKER_CERT_DIR");
  if (endpoint.empty() || dir.empty()) {
    KASM_SKIP_OR_FAIL("no TLS endpoint for the engine (KASM_TEST_DOCKER_TLS_ENDPOINT; scripts/test.sh sets it)");
  }
  docker::DockerOptions options;
  options.endpoint = endpoint;
  options.tls = docker::DockerTlsOptions{dir + "/ca.pem", dir + "/cert.pem", dir + "/key.pem", true};
  auto tls = docker::openDockerRuntime(options);
  ASSERT_TRUE(tls.ok()) << tls.error().toString();
  auto info = (*tls)->createAndStart(spec("tls"));
  ASSERT_TRUE(info.ok()) << info.error().toString();
  auto r = (*tls)->exec(info->id, {{"sh", "-c", "echo over-tls"}});
  ASSERT_TRUE(r.ok()) << r.error().toString();
  EXPECT_EQ(r->output, "over-tls\n");
  EXPECT_TRUE((*tls)->remove(info->id).ok());

  // Without the client certificate the endpoint refuses us; with an unknown CA we refuse it.
  auto no_cert = options;
  no_cert.tls->cert_file.clear();
  no_cert.tls->key_file.clear();
  auto refused = docker::openDockerRuntime(no_cert);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnavailable);
  auto wrong_ca = options;
  wrong_ca.tls->ca_file = dir + "/cert.pem";  // Not the CA that signed the server.
  auto untrusted = docker::openDockerRuntime(wrong_ca);
  ASSERT_FALSE(untrusted.ok());
  EXPECT_EQ(untrusted.error().code(), ErrorCode::kUnavailable);
}

TEST_F(DockerRuntimeTest, RemovingAnImageInUseIsFailedPrecondition) {
  auto info = runtime_->createAndStart(spec("inuse"));
  ASSERT_TRUE(info.ok());
  // By id: a tag removal would only untag. The container pins the image.
  auto images = runtime_->listImages();
  ASSERT_TRUE(images.ok());
  std::string id;
  for (const auto& i : *images) {
    if (std::count(i.tags.begin(), i.tags.end(), image_)) id = i.id;
  }
  ASSERT_FALSE(id.empty());
  auto removed = runtime_->removeImage(id);
  ASSERT_FALSE(removed.ok());
  EXPECT_EQ(removed.error().code(), ErrorCode::kFailedPrecondition) << removed.error().toString();
  auto unknown = runtime_->removeImage("kasm-test/never-there:" + run_id_);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace kasm::testing
