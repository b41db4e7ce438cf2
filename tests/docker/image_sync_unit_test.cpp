// ImageSync logic over a scripted ContainerRuntime double: concurrency bound, backoff schedule,
// re-pull, progress totals and prune policies, without an engine.

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "kasm/agent/image_sync.hpp"

namespace kasm::agent {
namespace {

class ScriptedRuntime final : public spi::ContainerRuntime {
 public:
  std::mutex mu;
  std::map<std::string, std::string> images;  // tag -> id; "" tag entries are dangling ids.
  std::set<std::string> dangling;
  std::set<std::string> in_use;   // Tags whose removal is refused.
  std::set<std::string> failing;  // Pulls that fail with Unavailable.
  std::atomic<int> running{0}, max_running{0}, pulls{0};

  Result<spi::HostResources> hostResources() override { return spi::HostResources{}; }
  Result<spi::ContainerInfo> createAndStart(const spi::ContainerSpec&) override { return internalError("unused"); }
  Result<spi::ContainerInfo> inspect(const std::string&) override { return internalError("unused"); }
  Result<std::vector<spi::ContainerInfo>> list(const std::map<std::string, std::string>&) override {
    return internalError("unused");
  }
  Result<void> stop(const std::string&, Duration) override { return internalError("unused"); }
  Result<void> start(const std::string&) override { return internalError("unused"); }
  Result<void> kill(const std::string&) override { return internalError("unused"); }
  Result<void> pause(const std::string&) override { return internalError("unused"); }
  Result<void> unpause(const std::string&) override { return internalError("unused"); }
  Result<void> remove(const std::string&) override { return internalError("unused"); }
  Result<spi::ExecResult> exec(const std::string&, const spi::ExecRequest&) override { return internalError("unused"); }

  Result<std::vector<spi::ImageInfo>> listImages() override {
    std::lock_guard lock(mu);
    std::vector<spi::ImageInfo> out;
    for (const auto& [tag, id] : images) out.push_back({id, {tag}, 1});
    for (const auto& id : dangling) out.push_back({id, {}, 1});
    return out;
  }
  Result<void> pullImage(const std::string& ref, const std::optional<spi::RegistryCredentials>&,
                         const std::function<void(const spi::PullProgress&)>& on_progress) override {
    int now = ++running;
    for (int seen = max_running; now > seen && !max_running.compare_exchange_weak(seen, now);) {
    }
    ++pulls;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    --running;
    if (failing.count(ref)) return unavailable("registry down");
    if (on_progress) {
      on_progress({"l1", "Downloading", 50, 100});
      on_progress({"l2", "Downloading", 10, 10});
      on_progress({"l1", "Downloading", 100, 100});
    }
    std::lock_guard lock(mu);
    images[ref] = "id-" + ref;
    return okResult();
  }
  Result<void> removeImage(const std::string& ref) override {
    std::lock_guard lock(mu);
    if (in_use.count(ref)) return failedPrecondition("in use");
    if (dangling.erase(ref)) return okResult();
    if (images.erase(ref)) return okResult();
    return notFound("no image " + ref);
  }
  // pruneImages is left to the SPI default (not supported), so ImageSync's fallback is exercised.
};

TEST(ImageSync, NormalizesReferences) {
  EXPECT_EQ(ImageSync::normalizeReference("busybox"), "busybox:latest");
  EXPECT_EQ(ImageSync::normalizeReference("a/b:1"), "a/b:1");
  EXPECT_EQ(ImageSync::normalizeReference("127.0.0.1:5000/a"), "127.0.0.1:5000/a:latest");
  EXPECT_EQ(ImageSync::normalizeReference("a@sha256:00"), "a@sha256:00");
}

TEST(ImageSync, PullsMissingImagesWithBoundedConcurrency) {
  ScriptedRuntime rt;
  rt.images["present:1"] = "id-present";
  ManualClock clock;
  ImageSync sync(rt, clock, {.max_concurrent_pulls = 3});
  std::vector<DesiredImage> desired{{"present:1", std::nullopt}};
  for (int i = 0; i < 9; ++i) desired.push_back({"img" + std::to_string(i) + ":1", std::nullopt});
  sync.setDesired(desired);
  auto report = sync.sync();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->pulled.size(), 9u);
  EXPECT_EQ(rt.pulls.load(), 9);
  EXPECT_LE(rt.max_running.load(), 3);
  EXPECT_GE(rt.max_running.load(), 2);
  for (const auto& s : sync.status()) {
    EXPECT_EQ(s.state, ImageState::kPresent);
    if (s.reference != "present:1") {
      EXPECT_EQ(s.bytes_total, 110);
      EXPECT_EQ(s.bytes_done, 110);
    }
  }
  EXPECT_EQ(sync.presentImages().size(), 10u);
}

TEST(ImageSync, BacksOffExponentiallyUpToTheMaximumAndRecovers) {
  ScriptedRuntime rt;
  rt.failing.insert("flaky:1");
  ManualClock clock;
  ImageSync sync(rt, clock, {.initial_backoff = std::chrono::seconds(1), .max_backoff = std::chrono::seconds(5)});
  sync.setDesired({{"flaky:1", std::nullopt}});
  std::vector<Duration> waits;
  for (int i = 0; i < 5; ++i) {
    auto report = sync.sync();
    ASSERT_TRUE(report.ok());
    ASSERT_EQ(report->failed.size(), 1u);
    auto status = sync.status().at(0);
    EXPECT_EQ(status.failed_attempts, i + 1);
    ASSERT_TRUE(status.next_attempt.has_value());
    waits.push_back(*status.next_attempt - clock.now());
    EXPECT_EQ(sync.sync()->deferred.size(), 1u);  // Not yet.
    clock.advance(waits.back());
  }
  EXPECT_EQ(waits, (std::vector<Duration>{std::chrono::seconds(1), std::chrono::seconds(2), std::chrono::seconds(4),
                                          std::chrono::seconds(5), std::chrono::seconds(5)}));
  rt.failing.clear();
  auto ok = sync.sync();
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->pulled, std::vector<std::string>{"flaky:1"});
  auto status = sync.status().at(0);
  EXPECT_EQ(status.failed_attempts, 0);
  EXPECT_FALSE(status.last_error.has_value());
}

TEST(ImageSync, RepullIgnoresPresenceAndBackoff) {
  ScriptedRuntime rt;
  rt.images["rolling:latest"] = "old";
  ManualClock clock;
  ImageSync sync(rt, clock);
  sync.setDesired({{"rolling", std::nullopt}});
  ASSERT_TRUE(sync.sync()->pulled.empty());
  sync.requestRepull("rolling");
  EXPECT_EQ(sync.sync()->pulled, std::vector<std::string>{"rolling:latest"});
  EXPECT_TRUE(sync.sync()->pulled.empty());
}

TEST(ImageSync, PrunePolicies) {
  ScriptedRuntime rt;
  rt.images = {{"keep:1", "k"}, {"reg/old:1", "o"}, {"reg/used:1", "u"}, {"other/x:1", "x"}};
  rt.dangling = {"sha256:dead"};
  rt.in_use = {"reg/used:1"};
  ManualClock clock;

  ImageSync off(rt, clock, {.prune = spi::PrunePolicy::kOff});
  off.setDesired({{"keep:1", std::nullopt}});
  EXPECT_TRUE(off.sync()->removed.empty());

  ImageSync dangling(rt, clock, {.prune = spi::PrunePolicy::kDangling});
  dangling.setDesired({{"keep:1", std::nullopt}});
  EXPECT_EQ(dangling.sync()->removed, std::vector<std::string>{"sha256:dead"});
  EXPECT_EQ(rt.images.size(), 4u);

  ImageSync scoped(rt, clock, {.prune = spi::PrunePolicy::kAggressive, .prune_prefixes = {"reg/"}});
  scoped.setDesired({{"keep:1", std::nullopt}});
  EXPECT_EQ(scoped.sync()->removed, std::vector<std::string>{"reg/old:1"});  // reg/used:1 is in use.

  ImageSync all(rt, clock, {.prune = spi::PrunePolicy::kAggressive});
  all.setDesired({{"keep:1", std::nullopt}});
  EXPECT_EQ(all.sync()->removed, std::vector<std::string>{"other/x:1"});
  EXPECT_EQ(rt.images.size(), 2u);  // keep:1 and the in-use image.
}

}  // namespace
}  // namespace kasm::agent
