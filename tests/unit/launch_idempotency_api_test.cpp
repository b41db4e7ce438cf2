// Idempotent launches through the APIs: POST /api/v1/sessions with the Idempotency-Key header or the
// body's idempotency_key, and the developer API's request_kasm (the header or the body field; an
// anonymous launch finds its user again).

#include <thread>

#include "api/session_start.hpp"
#include "kasm/api/developer_api.hpp"
#include "rest_api_fixture.hpp"

namespace kasm::api::testing_rest {
namespace {

class LaunchIdempotencyApiTest : public RestApiTest {
 protected:
  Reply launch(const Browser& b, json::object body = {}) {
    if (!body.contains("workspace_id")) body["workspace_id"] = "desktop";
    return call("POST", "/api/v1/sessions", json::serialize(body), &b);
  }
  std::size_t storedSessions() { return Repository(*store_).list<Session>()->size(); }
};

TEST_F(LaunchIdempotencyApiTest, TheHeaderMakesARetryAnswerTheFirstSession) {
  const Browser alice = login("alice");
  idempotency_key_ = "3f1c9a52-launch";
  auto first = launch(alice);
  ASSERT_EQ(first.status, 201) << first.raw.body;
  EXPECT_EQ(first.header("Idempotent-Replayed"), "");
  auto retry = launch(alice);
  ASSERT_EQ(retry.status, 200) << retry.raw.body;
  EXPECT_EQ(retry.header("Idempotent-Replayed"), "true");
  EXPECT_EQ(retry.obj().at("id"), first.obj().at("id"));
  EXPECT_EQ(retry.obj().at("state").as_string(), "running");
  EXPECT_TRUE(retry.obj().contains("url")) << "the same shape as a first answer";
  EXPECT_FALSE(retry.obj().contains("launch_key")) << "the stored hash is not shown";
  EXPECT_EQ(link_->provision_calls, 1);
  // Another user's key space is their own.
  auto bobs = launch(login("bob"));
  ASSERT_EQ(bobs.status, 201) << bobs.raw.body;
  EXPECT_NE(bobs.obj().at("id"), first.obj().at("id"));
  EXPECT_EQ(storedSessions(), 2u);
}

TEST_F(LaunchIdempotencyApiTest, TheBodyFieldWorksAndMustAgreeWithTheHeader) {
  const Browser alice = login("alice");
  auto first = launch(alice, {{"idempotency_key", "body-key"}});
  ASSERT_EQ(first.status, 201) << first.raw.body;
  idempotency_key_ = "body-key";
  auto both = launch(alice, {{"idempotency_key", "body-key"}});
  ASSERT_EQ(both.status, 200) << both.raw.body;
  EXPECT_EQ(both.obj().at("id"), first.obj().at("id"));
  idempotency_key_ = "header-key";
  auto differing = launch(alice, {{"idempotency_key", "body-key"}});
  EXPECT_EQ(differing.status, 400) << differing.raw.body;
  idempotency_key_.clear();
  EXPECT_EQ(launch(alice, {{"idempotency_key", 7}}).status, 400);
  EXPECT_EQ(launch(alice, {{"idempotency_key", std::string(256, 'k')}}).status, 400);
  EXPECT_EQ(launch(alice, {{"idempotency_key", "new\nline"}}).status, 400);
  EXPECT_EQ(storedSessions(), 1u);
}

TEST_F(LaunchIdempotencyApiTest, TheSameKeyForAnotherWorkspaceIs409) {
  Workspace w = Repository(*store_).get<Workspace>("desktop")->value;
  w.id = WorkspaceId("terminal");
  ASSERT_TRUE(manager_->upsertWorkspace(w).ok());
  const Browser alice = login("alice");
  idempotency_key_ = "k";
  ASSERT_EQ(launch(alice).status, 201);
  auto other = launch(alice, {{"workspace_id", "terminal"}});
  EXPECT_EQ(other.status, 409) << other.raw.body;
  EXPECT_NE(other.raw.body.find("idempotency key already used for a launch of another workspace"), std::string::npos)
      << other.raw.body;
}

// With a background executor the first answer comes when the session is stored (202) and a replay
// still says it is one.
TEST_F(LaunchIdempotencyApiTest, ABackgroundStartTellsAReplayFromAFirstLaunch) {
  std::vector<std::thread> workers;
  detail::BackgroundExecutor background = [&](std::function<void()> task) {
    workers.emplace_back(std::move(task));
    return true;
  };
  SessionRequest req{UserId("alice"), WorkspaceId("desktop"), ZoneId("east"), {}};
  req.idempotency_key = "bg";
  bool replayed = true;
  auto first = detail::startSession(*manager_, background, req, &replayed);
  ASSERT_TRUE(first.ok()) << first.error().toString();
  EXPECT_FALSE(replayed);
  for (auto& t : workers) t.join();
  workers.clear();
  auto again = detail::startSession(*manager_, background, req, &replayed);
  for (auto& t : workers) t.join();
  ASSERT_TRUE(again.ok()) << again.error().toString();
  EXPECT_TRUE(replayed);
  EXPECT_EQ(again->id, first->id);
  EXPECT_EQ(again->state, SessionState::kRunning);
}

TEST_F(LaunchIdempotencyApiTest, RequestKasmTakesTheKeyAndFindsAnAnonymousUserAgain) {
  (void)addKey("dev", {"admin"}, std::nullopt);
  DeveloperApi dev(*manager_, *store_, clock_, signer_);
  auto requestKasm = [&](json::object body, std::string_view header = {}) {
    body["api_key"] = "dev-key";
    body["api_key_secret"] = "dev-secret";
    body["image_id"] = "desktop";
    auto r = dev.handle("request_kasm", json::serialize(body), {}, header);
    return std::pair{r.status, json::parse(r.body).as_object()};
  };
  auto [s1, first] = requestKasm({{"user_id", "alice"}, {"idempotency_key", "dev-1"}});
  ASSERT_EQ(s1, 200) << json::serialize(first);
  auto [s2, by_header] = requestKasm({{"user_id", "alice"}}, "dev-1");
  ASSERT_EQ(s2, 200) << json::serialize(by_header);
  EXPECT_EQ(by_header.at("kasm_id"), first.at("kasm_id"));
  EXPECT_EQ(requestKasm({{"user_id", "alice"}, {"idempotency_key", "dev-1"}}, "dev-2").first, 400);
  EXPECT_EQ(link_->provision_calls, 1);

  // Without user_id every request makes an anonymous user: with a key, a retry finds the first one.
  const auto users_before = Repository(*store_).list<User>()->size();
  auto [s3, anonymous] = requestKasm({}, "anon-1");
  ASSERT_EQ(s3, 200) << json::serialize(anonymous);
  auto [s4, retried] = requestKasm({}, "anon-1");
  ASSERT_EQ(s4, 200) << json::serialize(retried);
  EXPECT_EQ(retried.at("kasm_id"), anonymous.at("kasm_id"));
  EXPECT_EQ(retried.at("user_id"), anonymous.at("user_id"));
  EXPECT_EQ(Repository(*store_).list<User>()->size(), users_before + 1);
  EXPECT_EQ(link_->provision_calls, 2);
}

}  // namespace
}  // namespace kasm::api::testing_rest
