#pragma once

// Shared by the docker-labelled tests: a runtime on the test dockerd, the images scripts/test.sh
// prepared, unique names, and cleanup of every container and image a test made.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kasm/core/random.hpp"
#include "kasm/docker/docker_runtime.hpp"
#include "support/services.hpp"

namespace kasm::testing {

inline std::string envOr(const char* name, std::string fallback = {}) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// A loopback port nothing listens on: bound, then closed.
inline std::uint16_t closedLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// GET / over plain HTTP/1.0 from "127.0.0.1:port"; returns the whole answer or "" on failure.
inline std::string httpGet(const std::string& host_port) {
  auto colon = host_port.rfind(':');
  std::string host = host_port.substr(0, colon);
  if (host != "127.0.0.1") return "refusing to connect to " + host;  // Loopback only (network rule).
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(host_port.substr(colon + 1))));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const std::string req = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

// Base fixture: skips (or fails under KASM_REQUIRE_SERVICES=1) when dockerd or the test image is
// missing; removes every container labelled with this test's run label and every image a test
// registered with cleanupImage().
class DockerTest : public ::testing::Test {
 protected:
  static constexpr const char* kRunLabel = "kasm.test_run";

  void SetUp() override {
    auto opened = docker::openDockerRuntime(docker::DockerOptions::fromEnvironment());
    if (!opened.ok()) KASM_SKIP_OR_FAIL("dockerd is not reachable: " + opened.error().toString());
    runtime_ = std::move(opened).value();
    image_ = envOr("KASM_TEST_IMAGE");
    if (image_.empty()) KASM_SKIP_OR_FAIL("KASM_TEST_IMAGE is not set (scripts/test.sh builds it)");
    auto images = runtime_->listImages();
    ASSERT_TRUE(images.ok()) << images.error().toString();
    bool found = false;
    for (const auto& i : *images) found |= std::count(i.tags.begin(), i.tags.end(), image_) > 0;
    if (!found) KASM_SKIP_OR_FAIL("test image " + image_ + " is not on the engine");
    SeededRandom random;
    run_id_ = "kt" + std::to_string(random.next() % 1'000'000'000);
  }

  void TearDown() override {
    if (!runtime_) return;
    for (const auto& labels : cleanup_label_sets_) {
      auto leftovers = runtime_->list(labels);
      if (leftovers.ok()) {
        for (const auto& c : *leftovers) (void)runtime_->remove(c.id);
      }
    }
    auto mine = runtime_->list({{kRunLabel, run_id_}});
    if (mine.ok()) {
      for (const auto& c : *mine) (void)runtime_->remove(c.id);
    }
    for (const auto& image : cleanup_images_) (void)runtime_->removeImage(image);
  }

  // A unique container name for this test.
  std::string name(const std::string& suffix) { return run_id_ + "-" + suffix; }

  // A spec of the test image, labelled for cleanup, serving HTTP on 8080 published on loopback.
  spi::ContainerSpec spec(const std::string& suffix) {
    spi::ContainerSpec s;
    s.name = name(suffix);
    s.image = image_;
    s.labels = {{kRunLabel, run_id_}};
    s.port = 8080;
    s.cpu_allocation = CpuAllocationMethod::kInherit;
    return s;
  }

  void cleanupImage(const std::string& reference) { cleanup_images_.push_back(reference); }
  void cleanupLabels(std::map<std::string, std::string> labels) { cleanup_label_sets_.push_back(std::move(labels)); }

  std::string registryImage(const char* env) { return envOr(env); }

  std::unique_ptr<spi::ContainerRuntime> runtime_;
  std::string image_;
  std::string run_id_;
  std::vector<std::string> cleanup_images_;
  std::vector<std::map<std::string, std::string>> cleanup_label_sets_;
};

}  // namespace kasm::testing
