// RedisShareDatabase beyond the conformance suite: configuration errors, and outages of a private
// redis-server the tests kill and restart (scripts/test.sh's shared server is never stopped).

#include "kasm/share/redis_share_database.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "support/redis_server.hpp"
#include "support/services.hpp"

namespace kasm {
namespace {

using namespace std::chrono_literals;
using Clock_ = std::chrono::steady_clock;

// Records what arrives and lets the test wait for a condition on it.
class Recorder {
 public:
  void chat(const spi::ChatMessage& m) {
    add([&] { bodies_.push_back(m.body); });
  }
  void availability(bool up) {
    add([&] { availability_.push_back(up); });
  }
  template <class P>
  bool waitUntil(P pred, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return pred(bodies_, availability_); });
  }
  std::vector<bool> availability() {
    std::lock_guard lk(mu_);
    return availability_;
  }

 private:
  template <class F>
  void add(F f) {
    std::lock_guard lk(mu_);
    f();
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> bodies_;
  std::vector<bool> availability_;
};

spi::ChatMessage msg(std::string body) {
  return spi::ChatMessage{.user_id = "u", .username = "u", .body = std::move(body)};
}

class RedisPrivateServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    auto server = testing::PrivateRedisServer::start(&why);
    if (!server) KASM_SKIP_OR_FAIL(why);
    server_.emplace(std::move(*server));
  }
  RedisShareDatabaseOptions options() const {
    return {.url = server_->url(), .key_prefix = testing::uniqueRedisPrefix()};
  }

  std::optional<testing::PrivateRedisServer> server_;
  SystemClock clock_;
  SessionId session_{"s-outage"};
};

TEST(RedisShareDatabaseConfig, BadUrlsAreInvalidArgument) {
  SystemClock clock;
  for (std::string url : {"http://127.0.0.1:6379", "redis://", "redis://127.0.0.1:99999", "redis://127.0.0.1/x"}) {
    auto db = openRedisShareDatabase({.url = url}, clock);
    ASSERT_FALSE(db.ok()) << url;
    EXPECT_EQ(db.error().code(), ErrorCode::kInvalidArgument) << url << ": " << db.error().toString();
  }
}

TEST(RedisShareDatabaseConfig, NothingListeningIsUnavailableQuickly) {
  SystemClock clock;
  // Port 1 on loopback: nothing listens there in the test environment, so the connect is refused.
  const auto start = Clock_::now();
  auto db = openRedisShareDatabase({.url = "redis://127.0.0.1:1/0"}, clock);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code(), ErrorCode::kUnavailable) << db.error().toString();
  EXPECT_LT(Clock_::now() - start, 1500ms);
}

TEST_F(RedisPrivateServerTest, WrongPasswordIsAClearUnauthenticatedError) {
  auto opts = options();
  opts.url = server_->urlWithPassword("not-the-password");
  auto db = openRedisShareDatabase(opts, clock_);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code(), ErrorCode::kUnauthenticated) << db.error().toString();
  EXPECT_NE(db.error().message().find("password"), std::string::npos) << db.error().toString();

  opts.url = "redis://127.0.0.1:" + std::to_string(server_->port()) + "/0";  // No password at all.
  auto none = openRedisShareDatabase(opts, clock_);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), ErrorCode::kUnauthenticated) << none.error().toString();
}

TEST_F(RedisPrivateServerTest, PresenceExpiresInRealTime) {
  auto db = openRedisShareDatabase(options(), clock_);
  ASSERT_TRUE(db.ok()) << db.error().toString();
  ASSERT_TRUE((*db)->touchMember(session_, {.member_id = "m1", .username = "a"}, 300ms).ok());
  EXPECT_EQ((*db)->members(session_)->size(), 1u);
  std::this_thread::sleep_for(400ms);
  EXPECT_TRUE((*db)->members(session_)->empty());
}

TEST_F(RedisPrivateServerTest, ConnectionsKilledByTheServerAreReplacedAndHistoryStays) {
  auto opts = options();
  auto db = openRedisShareDatabase(opts, clock_);
  ASSERT_TRUE(db.ok()) << db.error().toString();
  Recorder rec;
  (*db)->onAvailability([&](bool up) { rec.availability(up); });
  auto sub = (*db)->subscribe(session_, [&](const spi::ChatMessage& m) { rec.chat(m); });
  ASSERT_TRUE(sub.ok()) << sub.error().toString();
  ASSERT_TRUE((*db)->append(session_, msg("before")).ok());

  server_->command({"CLIENT", "KILL", "TYPE", "normal"});
  server_->command({"CLIENT", "KILL", "TYPE", "pubsub"});
  auto h = (*db)->history(session_, 10);  // The pooled connection was closed: a fresh one is used.
  ASSERT_TRUE(h.ok()) << h.error().toString();
  ASSERT_EQ(h->size(), 1u);
  EXPECT_EQ(h->front().body, "before");

  // The subscriber notices, re-subscribes and says so.
  ASSERT_TRUE(rec.waitUntil([](auto&, auto& av) { return av.size() >= 2; }, 5s));
  EXPECT_EQ(rec.availability(), (std::vector<bool>{false, true}));
  ASSERT_TRUE((*db)->append(session_, msg("after")).ok());
  EXPECT_TRUE(rec.waitUntil(
      [](auto& bodies, auto&) { return std::find(bodies.begin(), bodies.end(), "after") != bodies.end(); }, 5s));
}

TEST_F(RedisPrivateServerTest, OutageGivesUnavailableQuicklyAndARestartBringsDeliveryBack) {
  auto opts = options();
  auto a = openRedisShareDatabase(opts, clock_);
  auto b = openRedisShareDatabase(opts, clock_);
  ASSERT_TRUE(a.ok() && b.ok());
  Recorder rec;
  (*a)->onAvailability([&](bool up) { rec.availability(up); });
  auto sub = (*a)->subscribe(session_, [&](const spi::ChatMessage& m) { rec.chat(m); });
  ASSERT_TRUE(sub.ok()) << sub.error().toString();
  ASSERT_TRUE((*b)->append(session_, msg("before")).ok());
  ASSERT_TRUE(rec.waitUntil([](auto& bodies, auto&) { return bodies.size() == 1; }, 5s));

  server_->kill();
  ASSERT_TRUE(rec.waitUntil([](auto&, auto& av) { return !av.empty(); }, 5s));
  EXPECT_EQ(rec.availability(), std::vector<bool>{false});
  EXPECT_FALSE((*a)->available());
  for (auto* db : {a->get(), b->get()}) {
    const auto start = Clock_::now();
    auto r = db->append(session_, msg("during"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable) << r.error().toString();
    EXPECT_EQ(db->history(session_, 10).error().code(), ErrorCode::kUnavailable);
    EXPECT_EQ(db->members(session_).error().code(), ErrorCode::kUnavailable);
    EXPECT_EQ(db->subscribe(SessionId("x"), [](const spi::ChatMessage&) {}).error().code(), ErrorCode::kUnavailable);
    EXPECT_LT(Clock_::now() - start, 3s);
  }

  ASSERT_TRUE(server_->restart());
  ASSERT_TRUE(rec.waitUntil([](auto&, auto& av) { return av.size() >= 2; }, 10s));
  EXPECT_EQ(rec.availability(), (std::vector<bool>{false, true}));
  EXPECT_TRUE((*a)->available());
  ASSERT_TRUE((*b)->append(session_, msg("after")).ok());
  ASSERT_TRUE(rec.waitUntil([](auto& bodies, auto&) { return bodies.size() == 2; }, 5s));
  auto h = (*a)->history(session_, 10);  // The append-only file kept it across the restart.
  ASSERT_TRUE(h.ok()) << h.error().toString();
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ(h->front().body, "before");
}

TEST_F(RedisPrivateServerTest, DestructionDuringAnOutageIsPrompt) {
  auto db = openRedisShareDatabase(options(), clock_);
  ASSERT_TRUE(db.ok());
  auto sub = (*db)->subscribe(session_, [](const spi::ChatMessage&) {});
  ASSERT_TRUE(sub.ok());
  server_->kill();
  std::this_thread::sleep_for(300ms);  // The subscriber is now in its reconnect loop.
  const auto start = Clock_::now();
  db->reset();
  EXPECT_LT(Clock_::now() - start, 1500ms);
  sub->reset();  // Outliving the database is harmless.
}

}  // namespace
}  // namespace kasm
