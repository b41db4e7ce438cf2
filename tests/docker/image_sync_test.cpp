// Image pulls and ImageSync against the real engine and a local registry (scripts/test.sh pushes
// KASM_TEST_PULL_IMAGE and KASM_TEST_PULL_IMAGE_B to it and removes them locally).

#include "kasm/agent/image_sync.hpp"

#include <set>

#include "backends/docker/http_transport.hpp"
#include "docker/docker_test_support.hpp"

namespace kasm::testing {
namespace {

using agent::DesiredImage;
using agent::ImageState;
using agent::ImageSync;
using agent::ImageSyncOptions;

class ImagePullTest : public DockerTest {
 protected:
  void SetUp() override {
    DockerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    registry_ = envOr("KASM_TEST_REGISTRY");
    image_a_ = envOr("KASM_TEST_PULL_IMAGE");
    image_b_ = envOr("KASM_TEST_PULL_IMAGE_B");
    if (registry_.empty() || image_a_.empty() || image_b_.empty()) {
      KASM_SKIP_OR_FAIL("no test registry (KASM_TEST_REGISTRY, KASM_TEST_PULL_IMAGE[_B]; scripts/test.sh sets them)");
    }
    // Tests pull for real only if the images are not already here.
    (void)runtime_->removeImage(image_a_);
    (void)runtime_->removeImage(image_b_);
    cleanupImage(image_a_);
    cleanupImage(image_b_);
  }

  std::set<std::string> tags() {
    std::set<std::string> out;
    auto images = runtime_->listImages();
    EXPECT_TRUE(images.ok());
    if (images.ok()) {
      for (const auto& i : *images) out.insert(i.tags.begin(), i.tags.end());
    }
    return out;
  }

  std::string imageId(const std::string& tag) {
    auto images = runtime_->listImages();
    if (!images.ok()) return {};
    for (const auto& i : *images) {
      if (std::count(i.tags.begin(), i.tags.end(), tag)) return i.id;
    }
    return {};
  }

  bool hasImageId(const std::string& id) {
    auto images = runtime_->listImages();
    if (!images.ok()) return false;
    return std::any_of(images->begin(), images->end(), [&](const spi::ImageInfo& i) { return i.id == id; });
  }

  std::string unreachableImage() { return "127.0.0.1:" + std::to_string(closedLoopbackPort()) + "/kasm-test/x:1"; }

  std::string registry_, image_a_, image_b_;
};

TEST_F(ImagePullTest, PullStreamsPerLayerProgress) {
  std::vector<spi::PullProgress> events;
  auto pulled = runtime_->pullImage(image_a_, std::nullopt, [&](const spi::PullProgress& p) { events.push_back(p); });
  ASSERT_TRUE(pulled.ok()) << pulled.error().toString();
  EXPECT_TRUE(tags().count(image_a_));
  bool saw_bytes = false, saw_complete = false;
  for (const auto& e : events) {
    if (e.total > 0 && e.current > 0 && !e.layer.empty()) saw_bytes = true;
    if (e.status == "Pull complete") saw_complete = true;
    EXPECT_LE(e.current, e.total == 0 ? e.current : e.total);
  }
  EXPECT_TRUE(saw_bytes) << "no Downloading event with bytes among " << events.size();
  EXPECT_TRUE(saw_complete);
}

TEST_F(ImagePullTest, PullSendsCredentials) {
  // The test registry runs without authentication and ignores them; the engine must accept them.
  spi::RegistryCredentials credentials{"kasm", "secret", registry_};
  auto pulled = runtime_->pullImage(image_b_, credentials, nullptr);
  ASSERT_TRUE(pulled.ok()) << pulled.error().toString();
  EXPECT_TRUE(tags().count(image_b_));
}

TEST_F(ImagePullTest, CredentialsOpenARegistryThatDemandsThem) {
  const std::string registry = envOr("KASM_TEST_AUTH_REGISTRY");
  if (registry.empty()) KASM_SKIP_OR_FAIL("no password registry (KASM_TEST_AUTH_REGISTRY; scripts/test.sh sets it)");
  // The password registry serves the open one's storage: the same image, behind a password.
  const std::string image = registry + image_a_.substr(image_a_.find('/'));
  cleanupImage(image);

  auto anonymous = runtime_->pullImage(image, std::nullopt, nullptr);
  ASSERT_FALSE(anonymous.ok());
  EXPECT_EQ(anonymous.error().code(), ErrorCode::kUnauthenticated) << anonymous.error().toString();

  spi::RegistryCredentials wrong{envOr("KASM_TEST_AUTH_USER"), "not-the-password", registry};
  auto refused = runtime_->pullImage(image, wrong, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnauthenticated) << refused.error().toString();
  EXPECT_FALSE(tags().count(image));

  spi::RegistryCredentials right{envOr("KASM_TEST_AUTH_USER"), envOr("KASM_TEST_AUTH_PASSWORD"), registry};
  auto pulled = runtime_->pullImage(image, right, nullptr);
  ASSERT_TRUE(pulled.ok()) << pulled.error().toString();
  EXPECT_TRUE(tags().count(image));
}

TEST_F(ImagePullTest, PullFromAnUnreachableRegistryIsUnavailable) {
  auto pulled = runtime_->pullImage(unreachableImage(), std::nullopt, nullptr);
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.error().code(), ErrorCode::kUnavailable) << pulled.error().toString();
}

TEST_F(ImagePullTest, PullOfAnUnknownRepositoryIsNotFound) {
  auto pulled = runtime_->pullImage(registry_ + "/kasm-test/never-pushed:1", std::nullopt, nullptr);
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.error().code(), ErrorCode::kNotFound) << pulled.error().toString();
}

TEST_F(ImagePullTest, SyncPullsWhatIsMissingAndReportsProgress) {
  ManualClock clock;
  std::mutex mu;
  std::vector<agent::ImageSyncEvent> events;
  ImageSync sync(*runtime_, clock, {.max_concurrent_pulls = 2}, [&](const agent::ImageSyncEvent& e) {
    std::lock_guard lock(mu);
    events.push_back(e);
  });
  sync.setDesired({{image_a_, std::nullopt}, {image_b_, std::nullopt}, {image_, std::nullopt}});
  auto report = sync.sync();
  ASSERT_TRUE(report.ok()) << report.error().toString();
  auto expected = std::vector<std::string>{image_a_, image_b_};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(report->pulled, expected);  // The report lists references in order.
  EXPECT_TRUE(report->failed.empty());
  for (const auto& s : sync.status()) {
    EXPECT_EQ(s.state, ImageState::kPresent) << s.reference;
    if (s.reference != image_) {
      EXPECT_GT(s.bytes_total, 0) << s.reference;
      EXPECT_EQ(s.bytes_done, s.bytes_total) << s.reference;
    }
  }
  int pulled_events = 0, progress_events = 0;
  for (const auto& e : events) {
    pulled_events += e.kind == agent::ImageSyncEvent::Kind::kPulled;
    progress_events += e.kind == agent::ImageSyncEvent::Kind::kProgress;
  }
  EXPECT_EQ(pulled_events, 2);
  EXPECT_GT(progress_events, 2);

  // Everything is present: a second pass pulls nothing, until a re-pull is asked for.
  auto again = sync.sync();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->pulled.empty());
  sync.requestRepull(image_a_);
  auto repulled = sync.sync();
  ASSERT_TRUE(repulled.ok());
  EXPECT_EQ(repulled->pulled, std::vector<std::string>{image_a_});
}

TEST_F(ImagePullTest, FailingPullsBackOffOnTheInjectedClock) {
  ManualClock clock;
  ImageSync sync(*runtime_, clock,
                 {.initial_backoff = std::chrono::seconds(10), .max_backoff = std::chrono::seconds(30)});
  const std::string bad = unreachableImage();
  sync.setDesired({{bad, std::nullopt}});

  auto first = sync.sync();
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->failed.size(), 1u);
  EXPECT_EQ(first->failed[0].second.code(), ErrorCode::kUnavailable);
  auto status = sync.status().at(0);
  EXPECT_EQ(status.state, ImageState::kFailed);
  EXPECT_EQ(status.failed_attempts, 1);
  EXPECT_EQ(*status.next_attempt, clock.now() + std::chrono::seconds(10));

  auto early = sync.sync();  // Backoff not elapsed: no attempt.
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(early->deferred, std::vector<std::string>{bad});
  EXPECT_TRUE(early->failed.empty());

  clock.advance(std::chrono::seconds(10));
  auto second = sync.sync();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->failed.size(), 1u);
  EXPECT_EQ(sync.status().at(0).failed_attempts, 2);
  EXPECT_EQ(*sync.status().at(0).next_attempt, clock.now() + std::chrono::seconds(20));
}

TEST_F(ImagePullTest, PruneOffRemovesNothing) {
  ASSERT_TRUE(runtime_->pullImage(image_a_, std::nullopt, nullptr).ok());
  ManualClock clock;
  ImageSync sync(*runtime_, clock, {.prune = spi::PrunePolicy::kOff});
  sync.setDesired({});
  auto report = sync.sync();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->removed.empty());
  EXPECT_TRUE(tags().count(image_a_));
}

TEST_F(ImagePullTest, PruneDanglingRemovesUntaggedImagesOnly) {
  ASSERT_TRUE(runtime_->pullImage(image_a_, std::nullopt, nullptr).ok());
  ASSERT_TRUE(runtime_->pullImage(image_b_, std::nullopt, nullptr).ok());
  const std::string id_a = imageId(image_a_);
  ASSERT_FALSE(id_a.empty());
  // A rolling tag moved: image_a_'s tag now names B's content, so A's image is left dangling.
  // Re-tagging is done with a raw Engine API call, as another client would.
  docker::DockerOptions options = docker::DockerOptions::fromEnvironment();
  auto http = docker::detail::HttpTransport::create(options);
  ASSERT_TRUE(http.ok());
  auto slash = image_a_.rfind('/');
  auto colon = image_a_.rfind(':');
  ASSERT_TRUE(colon > slash);
  docker::detail::HttpRequest tag;
  tag.method = "POST";
  tag.target = "/images/" + image_b_ + "/tag?repo=" + image_a_.substr(0, colon) + "&tag=" + image_a_.substr(colon + 1);
  auto tagged = (*http)->send(tag);
  ASSERT_TRUE(tagged.ok());
  ASSERT_EQ(tagged->status, 201) << tagged->body;
  ASSERT_TRUE(hasImageId(id_a));

  ManualClock clock;
  ImageSync sync(*runtime_, clock, {.prune = spi::PrunePolicy::kDangling});
  sync.setDesired({});
  auto report = sync.sync();
  ASSERT_TRUE(report.ok()) << report.error().toString();
  EXPECT_FALSE(hasImageId(id_a));
  EXPECT_NE(std::find(report->removed.begin(), report->removed.end(), id_a), report->removed.end());
  auto now = tags();
  EXPECT_TRUE(now.count(image_b_));  // Tagged images stay, desired or not.
  EXPECT_TRUE(now.count(image_));
}

TEST_F(ImagePullTest, PruneAggressiveRemovesWhatNoWorkspaceNeedsUnlessInUse) {
  ManualClock clock;
  ImageSync sync(*runtime_, clock,
                 {.prune = spi::PrunePolicy::kAggressive, .prune_prefixes = {registry_ + "/kasm-test/"}});
  sync.setDesired({{image_a_, std::nullopt}, {image_b_, std::nullopt}});
  ASSERT_TRUE(sync.sync().ok());
  ASSERT_TRUE(tags().count(image_a_) && tags().count(image_b_));

  // B leaves the desired set: the next pass removes it, keeps A, and leaves images outside the
  // prefix (the base test image) alone.
  sync.setDesired({{image_a_, std::nullopt}});
  auto report = sync.sync();
  ASSERT_TRUE(report.ok()) << report.error().toString();
  auto now = tags();
  EXPECT_FALSE(now.count(image_b_));
  EXPECT_TRUE(now.count(image_a_));
  EXPECT_TRUE(now.count(image_));
  EXPECT_NE(std::find(report->removed.begin(), report->removed.end(), image_b_), report->removed.end());

  // An image a container uses is kept even when nothing desires it.
  auto s = spec("pinned");
  s.image = image_a_;
  ASSERT_TRUE(runtime_->createAndStart(s).ok());
  sync.setDesired({});
  auto pinned = sync.sync();
  ASSERT_TRUE(pinned.ok()) << pinned.error().toString();
  EXPECT_TRUE(tags().count(image_a_));
}

}  // namespace
}  // namespace kasm::testing
