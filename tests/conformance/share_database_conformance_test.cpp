// One conformance suite for every spi::ShareDatabase: the in-memory one and Redis must behave the
// same way. "Another" instance stands for a second server of the installation: for memory the same
// object, for Redis a second RedisShareDatabase on the same Redis.

#include <gtest/gtest.h>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "kasm/share/memory_share_database.hpp"
#include "support/services.hpp"
#ifdef KASM_TEST_WITH_REDIS
#include "kasm/share/redis_share_database.hpp"
#include "support/redis_server.hpp"
#endif

namespace kasm {
namespace {

using namespace std::chrono_literals;
using spi::ChatMember;
using spi::ChatMessage;

struct MemoryBackend {
  static constexpr const char* kName = "Memory";
  spi::ShareDatabase* first = nullptr;
  Result<std::unique_ptr<spi::ShareDatabase>> open(const Clock& clock, spi::ShareDatabaseLimits limits, std::string*) {
    auto db = std::make_unique<MemoryShareDatabase>(clock, limits);
    first = db.get();
    return std::unique_ptr<spi::ShareDatabase>(std::move(db));
  }
  spi::ShareDatabase* another() { return first; }
};

#ifdef KASM_TEST_WITH_REDIS
struct RedisBackend {
  static constexpr const char* kName = "Redis";
  RedisShareDatabaseOptions options;
  const Clock* clock = nullptr;
  std::unique_ptr<spi::ShareDatabase> second;
  Result<std::unique_ptr<spi::ShareDatabase>> open(const Clock& c, spi::ShareDatabaseLimits limits,
                                                   std::string* why_not) {
    auto url = testing::redisTestUrl();
    if (!url) {
      *why_not = "KASM_TEST_REDIS_URL is not set (scripts/test.sh starts a Redis server and sets it)";
      return unavailable(*why_not);
    }
    options = {.url = *url, .limits = limits, .key_prefix = testing::uniqueRedisPrefix()};
    // For a rediss:// URL: the CA that signed the test server's certificate.
    if (const char* ca = std::getenv("KASM_TEST_REDIS_CA"); ca && *ca) options.tls_ca_file = ca;
    clock = &c;
    return openRedisShareDatabase(options, c);
  }
  spi::ShareDatabase* another() {
    if (!second) {
      auto db = openRedisShareDatabase(options, *clock);
      EXPECT_TRUE(db.ok()) << db.error().toString();
      if (db.ok()) second = std::move(*db);
    }
    return second.get();
  }
};
#endif

// Collects what a callback receives; waits with a timeout instead of sleeping.
template <class T>
class Inbox {
 public:
  void push(T v) {
    std::lock_guard lk(mu_);
    items_.push_back(std::move(v));
    cv_.notify_all();
  }
  bool waitFor(std::size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return items_.size() >= n; });
  }
  std::vector<T> items() {
    std::lock_guard lk(mu_);
    return items_;
  }
  std::size_t size() {
    std::lock_guard lk(mu_);
    return items_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<T> items_;
};

// "<ms>-<seq>" as a comparable pair.
std::pair<long long, long long> idKey(const std::string& id) {
  long long ms = -1, seq = -1;
  auto dash = id.find('-');
  std::from_chars(id.data(), id.data() + dash, ms);
  if (dash != std::string::npos) std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq);
  return {ms, seq};
}

ChatMessage msg(std::string body, std::string user = "u1") {
  return ChatMessage{.user_id = user, .username = "name-" + user, .body = std::move(body), .at_ms = 1234};
}

template <class Backend>
class ShareDatabaseConformance : public ::testing::Test {
 protected:
  void SetUp() override { open({}); }

  void open(spi::ShareDatabaseLimits limits) {
    db_.reset();
    std::string why;
    auto db = backend_.open(clock_, limits, &why);
    if (!db.ok()) {
      if (!why.empty()) KASM_SKIP_OR_FAIL(why);
      FAIL() << db.error().toString();
    }
    db_ = std::move(db).value();
  }

  ManualClock clock_;
  Backend backend_;
  std::unique_ptr<spi::ShareDatabase> db_;
  SessionId s1_{"session-1"};
  SessionId s2_{"session-2"};
};

struct BackendNames {
  template <class T>
  static std::string GetName(int) {
    return T::kName;
  }
};
#ifdef KASM_TEST_WITH_REDIS
using Backends = ::testing::Types<MemoryBackend, RedisBackend>;
#else
using Backends = ::testing::Types<MemoryBackend>;
#endif
TYPED_TEST_SUITE(ShareDatabaseConformance, Backends, BackendNames);

TYPED_TEST(ShareDatabaseConformance, AppendThenHistoryKeepsOrderAndIdsIncrease) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto m = this->db_->append(this->s1_, msg("m" + std::to_string(i)));
    ASSERT_TRUE(m.ok()) << m.error().toString();
    EXPECT_EQ(m->body, "m" + std::to_string(i));
    ASSERT_FALSE(m->id.empty());
    if (!ids.empty()) EXPECT_LT(idKey(ids.back()), idKey(m->id));
    ids.push_back(m->id);
  }
  auto h = this->db_->history(this->s1_, 100);
  ASSERT_TRUE(h.ok()) << h.error().toString();
  ASSERT_EQ(h->size(), 5u);
  for (int i = 0; i < 5; ++i) {
    auto expected = msg("m" + std::to_string(i));
    expected.id = ids[i];
    EXPECT_EQ((*h)[i], expected);  // Every field round-trips.
  }
  auto newest = this->db_->history(this->s1_, 2);
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(newest->size(), 2u);
  EXPECT_EQ((*newest)[0].body, "m3");
  EXPECT_EQ((*newest)[1].body, "m4");
  auto none = this->db_->history(SessionId("never-used"), 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TYPED_TEST(ShareDatabaseConformance, HistoryKeepsOnlyTheNewestMessagesOfTheLimit) {
  this->open({.history_messages = 500});
  for (int i = 0; i < 510; ++i) ASSERT_TRUE(this->db_->append(this->s1_, msg(std::to_string(i))).ok());
  auto h = this->db_->history(this->s1_, 1000);
  ASSERT_TRUE(h.ok()) << h.error().toString();
  ASSERT_EQ(h->size(), 500u);
  EXPECT_EQ(h->front().body, "10");
  EXPECT_EQ(h->back().body, "509");
  EXPECT_EQ(this->db_->limits().history_messages, 500u);
}

TYPED_TEST(ShareDatabaseConformance, RefusesOversizedBodiesAndEmptySessionIds) {
  const auto max = this->db_->limits().max_body_bytes;
  EXPECT_TRUE(this->db_->append(this->s1_, msg(std::string(max, 'x'))).ok());
  auto big = this->db_->append(this->s1_, msg(std::string(max + 1, 'x')));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code(), ErrorCode::kInvalidArgument);
  auto empty = this->db_->append(SessionId(), msg("x"));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(this->db_->history(SessionId(), 1).error().code(), ErrorCode::kInvalidArgument);
  auto h = this->db_->history(this->s1_, 10);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->size(), 1u);
}

TYPED_TEST(ShareDatabaseConformance, SubscribersReceiveAppendsFromThisAndAnotherServerOnce) {
  Inbox<ChatMessage> inbox;
  auto sub = this->db_->subscribe(this->s1_, [&](const ChatMessage& m) { inbox.push(m); });
  ASSERT_TRUE(sub.ok()) << sub.error().toString();
  auto* other = this->backend_.another();
  ASSERT_NE(other, nullptr);
  auto a = this->db_->append(this->s1_, msg("here"));
  ASSERT_TRUE(a.ok());
  auto b = other->append(this->s1_, msg("there", "u2"));
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(inbox.waitFor(2));
  std::this_thread::sleep_for(100ms);  // Room for a duplicate to show up.
  auto got = inbox.items();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], *a);  // With its id.
  EXPECT_EQ(got[1], *b);
}

TYPED_TEST(ShareDatabaseConformance, CancelStopsDelivery) {
  Inbox<ChatMessage> inbox;
  auto sub = this->db_->subscribe(this->s1_, [&](const ChatMessage& m) { inbox.push(m); });
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(this->db_->append(this->s1_, msg("one")).ok());
  ASSERT_TRUE(inbox.waitFor(1));
  (*sub)->cancel();
  (*sub)->cancel();  // Twice is harmless.
  ASSERT_TRUE(this->db_->append(this->s1_, msg("two")).ok());
  Inbox<ChatMessage> witness;  // A later subscriber proves the message went out.
  auto later = this->db_->subscribe(this->s1_, [&](const ChatMessage& m) { witness.push(m); });
  ASSERT_TRUE(later.ok());
  ASSERT_TRUE(this->db_->append(this->s1_, msg("three")).ok());
  ASSERT_TRUE(witness.waitFor(1));
  EXPECT_EQ(inbox.size(), 1u);
  sub->reset();  // Destroying a cancelled subscription is fine too.
}

TYPED_TEST(ShareDatabaseConformance, CallbacksMayCancelThemselvesAndCallTheDatabase) {
  Inbox<std::size_t> inbox;
  std::unique_ptr<spi::Subscription> self;
  std::mutex self_mu;
  auto sub = this->db_->subscribe(this->s1_, [&](const ChatMessage&) {
    auto h = this->db_->history(this->s1_, 10);  // No deadlock: no lock is held during callbacks.
    std::lock_guard lk(self_mu);
    if (self) self->cancel();
    inbox.push(h.ok() ? h->size() : 0);
  });
  ASSERT_TRUE(sub.ok());
  {
    std::lock_guard lk(self_mu);
    self = std::move(*sub);
  }
  ASSERT_TRUE(this->db_->append(this->s1_, msg("one")).ok());
  ASSERT_TRUE(inbox.waitFor(1));
  ASSERT_TRUE(this->db_->append(this->s1_, msg("two")).ok());
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(inbox.items(), std::vector<std::size_t>{1});
  std::lock_guard lk(self_mu);
  self.reset();
}

TYPED_TEST(ShareDatabaseConformance, SessionsDoNotSeeEachOthersMessages) {
  Inbox<ChatMessage> one, two;
  auto a = this->db_->subscribe(this->s1_, [&](const ChatMessage& m) { one.push(m); });
  auto b = this->db_->subscribe(this->s2_, [&](const ChatMessage& m) { two.push(m); });
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(this->db_->append(this->s1_, msg("for one")).ok());
  ASSERT_TRUE(this->db_->append(this->s2_, msg("for two")).ok());
  ASSERT_TRUE(one.waitFor(1) && two.waitFor(1));
  std::this_thread::sleep_for(100ms);
  ASSERT_EQ(one.size(), 1u);
  ASSERT_EQ(two.size(), 1u);
  EXPECT_EQ(one.items()[0].body, "for one");
  EXPECT_EQ(two.items()[0].body, "for two");
  EXPECT_EQ(this->db_->history(this->s2_, 10)->size(), 1u);
}

TYPED_TEST(ShareDatabaseConformance, PresenceListsMembersUntilTheirTtlPasses) {
  ChatMember alice{.member_id = "m-a", .user_id = "u-a", .username = "alice", .access = "owner"};
  ChatMember bob{.member_id = "m-b", .user_id = "u-b", .username = "bob", .access = "r"};
  ASSERT_TRUE(this->db_->touchMember(this->s1_, bob, 1000ms).ok());
  ASSERT_TRUE(this->db_->touchMember(this->s1_, alice, 5000ms).ok());
  auto all = this->db_->members(this->s1_);
  ASSERT_TRUE(all.ok()) << all.error().toString();
  EXPECT_EQ(*all, (std::vector<ChatMember>{alice, bob}));  // Ordered by member_id.

  this->clock_.advance(999ms);
  EXPECT_EQ(this->db_->members(this->s1_)->size(), 2u);
  this->clock_.advance(1ms);
  EXPECT_EQ(*this->db_->members(this->s1_), std::vector<ChatMember>{alice});

  // A touch refreshes and replaces the member's data; it never lists a member twice.
  bob.access = "rw";
  ASSERT_TRUE(this->db_->touchMember(this->s1_, bob, 1000ms).ok());
  alice.username = "alice2";
  ASSERT_TRUE(this->db_->touchMember(this->s1_, alice, 5000ms).ok());
  EXPECT_EQ(*this->db_->members(this->s1_), (std::vector<ChatMember>{alice, bob}));
  EXPECT_TRUE(this->db_->members(this->s2_)->empty());
  EXPECT_EQ(this->db_->touchMember(this->s1_, ChatMember{}, 1000ms).error().code(), ErrorCode::kInvalidArgument);
}

TYPED_TEST(ShareDatabaseConformance, RemoveMemberTakesOnlyThatMember) {
  ChatMember a{.member_id = "m1", .user_id = "u", .username = "u", .access = "rw"};
  ChatMember b{.member_id = "m2", .user_id = "u", .username = "u", .access = "rw"};  // Same user, other tab.
  ASSERT_TRUE(this->db_->touchMember(this->s1_, a, 10s).ok());
  ASSERT_TRUE(this->db_->touchMember(this->s1_, b, 10s).ok());
  ASSERT_TRUE(this->db_->removeMember(this->s1_, "m1").ok());
  ASSERT_TRUE(this->db_->removeMember(this->s1_, "unknown").ok());
  EXPECT_EQ(*this->db_->members(this->s1_), std::vector<ChatMember>{b});
}

TYPED_TEST(ShareDatabaseConformance, DropSessionForgetsHistoryAndPresenceButKeepsSubscribers) {
  Inbox<ChatMessage> inbox;
  auto sub = this->db_->subscribe(this->s1_, [&](const ChatMessage& m) { inbox.push(m); });
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(this->db_->append(this->s1_, msg("before")).ok());
  ASSERT_TRUE(this->db_->append(this->s2_, msg("other session")).ok());
  ASSERT_TRUE(this->db_->touchMember(this->s1_, {.member_id = "m1"}, 10s).ok());
  ASSERT_TRUE(this->db_->dropSession(this->s1_).ok());
  EXPECT_TRUE(this->db_->history(this->s1_, 10)->empty());
  EXPECT_TRUE(this->db_->members(this->s1_)->empty());
  EXPECT_EQ(this->db_->history(this->s2_, 10)->size(), 1u);
  ASSERT_TRUE(this->db_->append(this->s1_, msg("after")).ok());
  ASSERT_TRUE(inbox.waitFor(2));
  EXPECT_EQ(inbox.items()[1].body, "after");
}

TYPED_TEST(ShareDatabaseConformance, EventsReachEverySubscriberOnEveryServer) {
  Inbox<std::string> a, b, c;
  auto* other = this->backend_.another();
  ASSERT_NE(other, nullptr);
  auto sa = this->db_->subscribeEvents([&](std::string_view e) { a.push(std::string(e)); });
  auto sb = this->db_->subscribeEvents([&](std::string_view e) { b.push(std::string(e)); });
  auto sc = other->subscribeEvents([&](std::string_view e) { c.push(std::string(e)); });
  ASSERT_TRUE(sa.ok() && sb.ok() && sc.ok());
  ASSERT_TRUE(other->publishEvent(R"({"type":"share_revoked"})").ok());
  ASSERT_TRUE(a.waitFor(1) && b.waitFor(1) && c.waitFor(1));
  EXPECT_EQ(a.items()[0], R"({"type":"share_revoked"})");
  (*sb)->cancel();
  ASSERT_TRUE(this->db_->publishEvent("second").ok());
  ASSERT_TRUE(a.waitFor(2) && c.waitFor(2));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(b.size(), 1u);
}

TYPED_TEST(ShareDatabaseConformance, ConcurrentAppendsAllLandWithDistinctIds) {
  constexpr int kThreads = 4, kEach = 25;
  Inbox<ChatMessage> inbox;
  auto sub = this->db_->subscribe(this->s1_, [&](const ChatMessage& m) { inbox.push(m); });
  ASSERT_TRUE(sub.ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        if (!this->db_->append(this->s1_, msg(std::to_string(t) + ":" + std::to_string(i))).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto h = this->db_->history(this->s1_, 1000);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), std::size_t{kThreads * kEach});
  for (std::size_t i = 1; i < h->size(); ++i) EXPECT_LT(idKey((*h)[i - 1].id), idKey((*h)[i].id));
  ASSERT_TRUE(inbox.waitFor(kThreads * kEach));
  auto got = inbox.items();
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].id, (*h)[i].id);  // Delivered in history order.
}

TYPED_TEST(ShareDatabaseConformance, IsAvailableAndNamesItsBackend) {
  EXPECT_TRUE(this->db_->available());
  EXPECT_FALSE(this->db_->backendName().empty());
}

}  // namespace
}  // namespace kasm
