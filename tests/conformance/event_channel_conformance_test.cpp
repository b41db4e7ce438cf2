// One conformance suite for every spi::EventChannel: the events of a share database (in memory, on
// Redis) and PostgreSQL's LISTEN/NOTIFY must behave the same way. Each test opens two channels on
// one backend, standing for two servers of an installation: for memory two adapters over one
// MemoryShareDatabase, for Redis adapters over two RedisShareDatabases sharing a key prefix, for
// PostgreSQL two channels on one scratch database.
//
// Backends differ only where documented: a NUL byte travels in memory and on Redis, while
// PostgreSQL refuses it (InvalidArgument: NOTIFY payloads are text). PostgreSQL's own cases (a
// listener killed, a server that cannot be reached, channel names, SQL in payloads) follow the
// typed suite, and so does the adapter's availability over a Redis that goes away.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "kasm/share/memory_share_database.hpp"
#include "kasm/share/share_events.hpp"
#include "kasm/store/postgres_events.hpp"
#include "support/services.hpp"
#ifdef KASM_TEST_WITH_REDIS
#include "kasm/share/redis_share_database.hpp"
#include "support/redis_server.hpp"
#endif

namespace kasm {
namespace {

using namespace std::chrono_literals;
using Clock_ = std::chrono::steady_clock;

struct MemoryBackend {
  static constexpr const char* kName = "Memory";
  static constexpr const char* kBackendName = "memory";
  static constexpr bool kCarriesNul = true;
  SystemClock clock;
  std::unique_ptr<MemoryShareDatabase> db;
  Result<std::unique_ptr<spi::EventChannel>> open(std::string*) {
    if (!db) db = std::make_unique<MemoryShareDatabase>(clock);
    return shareDatabaseEvents(*db);
  }
};

#ifdef KASM_TEST_WITH_REDIS
struct RedisBackend {
  static constexpr const char* kName = "Redis";
  static constexpr const char* kBackendName = "redis";
  static constexpr bool kCarriesNul = true;
  SystemClock clock;
  std::string prefix = testing::uniqueRedisPrefix();
  std::vector<std::unique_ptr<spi::ShareDatabase>> dbs;
  Result<std::unique_ptr<spi::EventChannel>> open(std::string* why_not) {
    auto url = testing::redisTestUrl();
    if (!url) {
      *why_not = "KASM_TEST_REDIS_URL is not set (scripts/test.sh starts a Redis server and sets it)";
      return unavailable(*why_not);
    }
    RedisShareDatabaseOptions options{.url = *url, .key_prefix = prefix};
    if (const char* ca = std::getenv("KASM_TEST_REDIS_CA"); ca && *ca) options.tls_ca_file = ca;
    KASM_ASSIGN_OR_RETURN(auto db, openRedisShareDatabase(options, clock));
    dbs.push_back(std::move(db));
    return shareDatabaseEvents(*dbs.back());
  }
};
#endif

struct PostgresBackend {
  static constexpr const char* kName = "Postgres";
  static constexpr const char* kBackendName = "postgresql";
  static constexpr bool kCarriesNul = false;
  std::optional<testing::ScratchPostgresDatabase> db;
  Result<std::unique_ptr<spi::EventChannel>> open(std::string* why_not) {
    if (!db) db = testing::ScratchPostgresDatabase::create(why_not);
    if (!db) return unavailable(*why_not);
    return openPostgresEventChannel({.url = db->url()});
  }
};

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

template <class Pred>
bool waitUntil(Pred pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = Clock_::now() + timeout;
  while (!pred()) {
    if (Clock_::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

spi::EventCallback into(Inbox<std::string>& inbox) {
  return [&inbox](std::string_view e) { inbox.push(std::string(e)); };
}

template <class Backend>
class EventChannelConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto* slot : {&a_, &b_}) {
      std::string why;
      auto channel = backend_.open(&why);
      if (!channel.ok()) {
        if (!why.empty()) KASM_SKIP_OR_FAIL(why);
        FAIL() << channel.error().toString();
      }
      *slot = std::move(channel).value();
    }
    ASSERT_TRUE(waitUntil([&] { return a_->available() && b_->available(); })) << "channels never became available";
  }

  Backend backend_;
  std::unique_ptr<spi::EventChannel> a_;  // "Server A".
  std::unique_ptr<spi::EventChannel> b_;  // "Server B", same backend.
};

struct BackendNames {
  template <class T>
  static std::string GetName(int) {
    return T::kName;
  }
};
#ifdef KASM_TEST_WITH_REDIS
using Backends = ::testing::Types<MemoryBackend, RedisBackend, PostgresBackend>;
#else
using Backends = ::testing::Types<MemoryBackend, PostgresBackend>;
#endif
TYPED_TEST_SUITE(EventChannelConformance, Backends, BackendNames);

TYPED_TEST(EventChannelConformance, NamesItsBackendAndIsAvailable) {
  EXPECT_EQ(this->a_->backendName(), TypeParam::kBackendName);
  EXPECT_TRUE(this->a_->available());
  EXPECT_GE(this->a_->maxEventBytes(), 7999u);
}

TYPED_TEST(EventChannelConformance, EveryEventReachesEverySubscriberOnBothServersOnce) {
  Inbox<std::string> a1, a2, b1;
  auto s1 = this->a_->subscribe(into(a1));
  auto s2 = this->a_->subscribe(into(a2));
  auto s3 = this->b_->subscribe(into(b1));
  ASSERT_TRUE(s1.ok() && s2.ok() && s3.ok());
  ASSERT_TRUE(this->a_->publish(R"({"type":"session_ended","from":"a"})").ok());
  ASSERT_TRUE(this->b_->publish(R"({"type":"session_ended","from":"b"})").ok());
  for (auto* inbox : {&a1, &a2, &b1}) {
    ASSERT_TRUE(inbox->waitFor(2));
  }
  std::this_thread::sleep_for(100ms);  // Room for a duplicate to show up.
  for (auto* inbox : {&a1, &a2, &b1}) {
    auto got = inbox->items();
    std::sort(got.begin(), got.end());  // Two publishers: no order between them.
    EXPECT_EQ(got, (std::vector<std::string>{R"({"type":"session_ended","from":"a"})",
                                             R"({"type":"session_ended","from":"b"})"}));
  }
}

TYPED_TEST(EventChannelConformance, KeepsEachPublishersOrderOverAThousandEvents) {
  constexpr int kEach = 1000;
  Inbox<std::string> on_a, on_b;
  auto sa = this->a_->subscribe(into(on_a));
  auto sb = this->b_->subscribe(into(on_b));
  ASSERT_TRUE(sa.ok() && sb.ok());
  std::atomic<int> failures{0};
  auto publishAll = [&](spi::EventChannel* ch, char who) {
    for (int i = 0; i < kEach; ++i) {
      if (!ch->publish(std::string(1, who) + ":" + std::to_string(i)).ok()) ++failures;
    }
  };
  std::thread ta(publishAll, this->a_.get(), 'a');
  std::thread tb(publishAll, this->b_.get(), 'b');
  ta.join();
  tb.join();
  ASSERT_EQ(failures.load(), 0);
  for (auto* inbox : {&on_a, &on_b}) {
    ASSERT_TRUE(inbox->waitFor(2 * kEach, 30s)) << inbox->size();
    int next[2] = {0, 0};
    for (const auto& e : inbox->items()) {
      const int who = e[0] == 'a' ? 0 : 1;
      ASSERT_EQ(e.substr(2), std::to_string(next[who])) << "out of order: " << e;
      ++next[who];
    }
    EXPECT_EQ(next[0], kEach);
    EXPECT_EQ(next[1], kEach);
  }
}

TYPED_TEST(EventChannelConformance, CancelStopsDeliveryAndWaitsForARunningCallback) {
  std::atomic<bool> entered{false}, left{false};
  Inbox<std::string> others;
  auto sub = this->a_->subscribe([&](std::string_view e) {
    if (e != "slow") return others.push(std::string(e));
    entered = true;
    std::this_thread::sleep_for(300ms);
    left = true;
  });
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(this->b_->publish("slow").ok());
  ASSERT_TRUE(waitUntil([&] { return entered.load(); }));
  (*sub)->cancel();
  EXPECT_TRUE(left.load()) << "cancel() returned while the callback was still running";
  (*sub)->cancel();            // Twice is harmless.
  Inbox<std::string> witness;  // A later subscriber proves the next event went out.
  auto later = this->a_->subscribe(into(witness));
  ASSERT_TRUE(later.ok());
  ASSERT_TRUE(this->b_->publish("after").ok());
  ASSERT_TRUE(witness.waitFor(1));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(others.size(), 0u);
  sub->reset();  // Destroying a cancelled subscription is fine too.
}

TYPED_TEST(EventChannelConformance, CallbacksMayPublishAndCancelThemselves) {
  Inbox<bool> replies;
  Inbox<std::string> witness;
  std::mutex self_mu;
  std::unique_ptr<spi::Subscription> self;
  auto sub = this->a_->subscribe([&](std::string_view e) {
    if (e != "ping") return;
    replies.push(this->a_->publish("pong").ok());  // No deadlock: no lock is held during callbacks.
    std::lock_guard lk(self_mu);
    if (self) self->cancel();
  });
  ASSERT_TRUE(sub.ok());
  {
    std::lock_guard lk(self_mu);
    self = std::move(*sub);
  }
  auto w = this->b_->subscribe(into(witness));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(this->b_->publish("ping").ok());
  ASSERT_TRUE(witness.waitFor(2));
  ASSERT_TRUE(this->b_->publish("ping").ok());  // The subscriber is gone: no second pong.
  ASSERT_TRUE(witness.waitFor(3));
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(witness.items(), (std::vector<std::string>{"ping", "pong", "ping"}));
  EXPECT_EQ(replies.items(), std::vector<bool>{true});
  std::lock_guard lk(self_mu);
  self.reset();
}

TYPED_TEST(EventChannelConformance, AnEventOfMaxEventBytesPassesOneByteMoreIsRefusedAndNotSent) {
  const auto max = this->a_->maxEventBytes();
  Inbox<std::string> inbox;
  auto sub = this->b_->subscribe(into(inbox));
  ASSERT_TRUE(sub.ok());
  std::string largest(max, 'x');
  largest.front() = '<';
  largest.back() = '>';
  auto r = this->a_->publish(largest);
  ASSERT_TRUE(r.ok()) << r.error().toString();
  auto over = this->a_->publish(std::string(max + 1, 'y'));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code(), ErrorCode::kInvalidArgument) << over.error().toString();
  ASSERT_TRUE(this->a_->publish("after").ok());
  ASSERT_TRUE(inbox.waitFor(2));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(inbox.items(), (std::vector<std::string>{largest, "after"}));
}

TYPED_TEST(EventChannelConformance, CarriesAnyTextIntact) {
  const std::vector<std::string> texts = {
      R"({"type":"viewer_changed","name":"O'Brien \"the\" admin","path":"C:\\Users\\x"})",
      "line one\nline two\r\n\ttabbed\\n not a newline",
      "ünïcödé ✓ 日本語 🎉",
      "'); DROP TABLE sessions; -- $1 $$ %s %n ? :name",
      "",
      "  spaces around  ",
  };
  Inbox<std::string> inbox;
  auto sub = this->b_->subscribe(into(inbox));
  ASSERT_TRUE(sub.ok());
  for (const auto& t : texts) ASSERT_TRUE(this->a_->publish(t).ok()) << t;
  const std::string with_nul("before\0after", 12);
  auto nul = this->a_->publish(with_nul);
  if (TypeParam::kCarriesNul) {
    EXPECT_TRUE(nul.ok()) << nul.error().toString();
  } else {
    ASSERT_FALSE(nul.ok());
    EXPECT_EQ(nul.error().code(), ErrorCode::kInvalidArgument) << nul.error().toString();
  }
  ASSERT_TRUE(this->a_->publish("end").ok());
  auto expected = texts;
  if (TypeParam::kCarriesNul) expected.push_back(with_nul);
  expected.push_back("end");
  ASSERT_TRUE(inbox.waitFor(expected.size()));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(inbox.items(), expected);
}

TYPED_TEST(EventChannelConformance, ManySubscribersEachGetEveryEventInOrder) {
  constexpr int kPerServer = 40, kEvents = 20;
  std::vector<std::unique_ptr<Inbox<std::string>>> inboxes;
  std::vector<std::unique_ptr<spi::Subscription>> subs;
  for (auto* ch : {this->a_.get(), this->b_.get()}) {
    for (int i = 0; i < kPerServer; ++i) {
      inboxes.push_back(std::make_unique<Inbox<std::string>>());
      auto s = ch->subscribe(into(*inboxes.back()));
      ASSERT_TRUE(s.ok()) << s.error().toString();
      subs.push_back(std::move(*s));
    }
  }
  std::vector<std::string> expected;
  for (int i = 0; i < kEvents; ++i) {
    expected.push_back("event-" + std::to_string(i));
    ASSERT_TRUE(this->a_->publish(expected.back()).ok());
  }
  for (auto& inbox : inboxes) {
    ASSERT_TRUE(inbox->waitFor(kEvents));
  }
  std::this_thread::sleep_for(50ms);
  for (auto& inbox : inboxes) EXPECT_EQ(inbox->items(), expected);
}

TYPED_TEST(EventChannelConformance, ConcurrentPublishersOnOneChannelAllLandInTheirOrder) {
  constexpr int kThreads = 4, kEach = 50;
  Inbox<std::string> inbox;
  auto sub = this->b_->subscribe(into(inbox));
  ASSERT_TRUE(sub.ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        if (!this->a_->publish(std::to_string(t) + ":" + std::to_string(i)).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(inbox.waitFor(kThreads * kEach, 15s));
  std::vector<int> next(kThreads, 0);
  for (const auto& e : inbox.items()) {
    const int t = e[0] - '0';
    ASSERT_EQ(e.substr(2), std::to_string(next[t])) << e;
    ++next[t];
  }
}

// ---- PostgreSQL's own cases ------------------------------------------------------------------

std::string unreachableUrl() {
  return "postgresql://kasm:s3cret@127.0.0.1:" + std::to_string(testing::unusedLoopbackPort()) + "/kasm";
}

// Without a server: options, and a server that cannot be reached.
TEST(PostgresEventChannelOffline, ChannelNamesMustBePlainLowerCaseIdentifiers) {
  const auto url = unreachableUrl();
  for (const std::string& bad : std::vector<std::string>{"", "Kasm", "1events", "kasm-events", "kasm events",
                                                         "x;DROP TABLE y", "\"q\"", "é", std::string(64, 'a')}) {
    auto ch = openPostgresEventChannel({.url = url, .channel = bad});
    ASSERT_FALSE(ch.ok()) << bad;
    EXPECT_EQ(ch.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  for (const std::string& good : std::vector<std::string>{"kasm_events", "_x", "a1", std::string(63, 'a')}) {
    EXPECT_TRUE(openPostgresEventChannel({.url = url, .channel = good}).ok()) << good;
  }
  EXPECT_EQ(openPostgresEventChannel({.url = ""}).error().code(), ErrorCode::kInvalidArgument);
}

TEST(PostgresEventChannelOffline, PublishWhileUnreachableIsUnavailableQuicklyAndStopsAtOnce) {
  auto start = Clock_::now();
  auto ch = openPostgresEventChannel({.url = unreachableUrl()});
  ASSERT_TRUE(ch.ok()) << ch.error().toString();  // It opens, and keeps trying.
  EXPECT_FALSE((*ch)->available());
  for (int i = 0; i < 3; ++i) {
    auto r = (*ch)->publish("lost");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable) << r.error().toString();
    EXPECT_EQ(r.error().message().find("s3cret"), std::string::npos) << r.error().message();
  }
  EXPECT_LT(Clock_::now() - start, 5s);
  // Too large and NUL are refused before any I/O, whatever the server.
  EXPECT_EQ((*ch)->publish(std::string(kPostgresMaxEventBytes + 1, 'x')).error().code(), ErrorCode::kInvalidArgument);
  std::this_thread::sleep_for(300ms);  // Let the listener get into its backoff.
  start = Clock_::now();
  ch->reset();
  EXPECT_LT(Clock_::now() - start, 1s);
}

class PostgresEventChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    db_ = testing::ScratchPostgresDatabase::create(&why);
    if (!db_) KASM_SKIP_OR_FAIL(why);
  }
  std::unique_ptr<spi::EventChannel> open(PostgresEventOptions options = {}) {
    options.url = db_->url();
    auto ch = openPostgresEventChannel(std::move(options));
    EXPECT_TRUE(ch.ok()) << ch.error().toString();
    if (!ch.ok()) return nullptr;
    EXPECT_TRUE(waitUntil([&] { return (*ch)->available(); }));
    return std::move(*ch);
  }
  std::optional<testing::ScratchPostgresDatabase> db_;
};

TEST_F(PostgresEventChannelTest, AKilledListenerReportsUnavailableThenAvailableAndDeliversAgain) {
  auto a = open();
  auto b = open({.application_name = "kasm-events-b"});
  ASSERT_TRUE(a && b);
  Inbox<bool> availability;
  a->onAvailability([&](bool up) { availability.push(up); });
  Inbox<std::string> inbox;
  auto sub = a->subscribe(into(inbox));
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(b->publish("before").ok());
  ASSERT_TRUE(inbox.waitFor(1));

  // Only A's listener: B's connections and A's publishing connection have other names.
  db_->execute(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE application_name = 'kasm-events' AND datname = current_database()");
  ASSERT_TRUE(availability.waitFor(2, 15s)) << availability.size();
  EXPECT_EQ(availability.items(), (std::vector<bool>{false, true}));
  EXPECT_TRUE(a->available());
  ASSERT_TRUE(b->publish("after").ok());
  ASSERT_TRUE(a->publish("own, after").ok());
  ASSERT_TRUE(inbox.waitFor(3));
  EXPECT_EQ(inbox.items(), (std::vector<std::string>{"before", "after", "own, after"}));
}

TEST_F(PostgresEventChannelTest, APublisherWhoseConnectionWasKilledReconnectsForTheNextEvent) {
  auto a = open();
  ASSERT_TRUE(a);
  Inbox<std::string> inbox;
  auto sub = a->subscribe(into(inbox));
  ASSERT_TRUE(a->publish("one").ok());
  // With a timeout, pg_terminate_backend waits until the backend has gone.
  db_->execute(
      "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
      "WHERE application_name = 'kasm-events-publish' AND datname = current_database()");
  auto r = a->publish("two");
  EXPECT_TRUE(r.ok()) << r.error().toString();
  ASSERT_TRUE(inbox.waitFor(2));
  EXPECT_EQ(inbox.items(), (std::vector<std::string>{"one", "two"}));
}

TEST_F(PostgresEventChannelTest, SqlInPayloadsArrivesIntactAndChannelsAreSeparate) {
  auto a = open();
  auto other = open({.channel = "kasm_other"});
  ASSERT_TRUE(a && other);
  Inbox<std::string> inbox, elsewhere;
  auto sub = a->subscribe(into(inbox));
  auto sub_other = other->subscribe(into(elsewhere));
  const std::vector<std::string> texts = {
      "'; NOTIFY kasm_other, 'injected'; --",
      "$1', $2); SELECT pg_sleep(10); --",
      "$$ $tag$ E'\\x41' U&'\\0041' \\' '' \" \\\\",
      R"(LISTEN kasm_other; UNLISTEN *; COMMIT; ROLLBACK;)",
  };
  for (const auto& t : texts) ASSERT_TRUE(a->publish(t).ok()) << t;
  ASSERT_TRUE(other->publish("for other").ok());
  ASSERT_TRUE(inbox.waitFor(texts.size()));
  ASSERT_TRUE(elsewhere.waitFor(1));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(inbox.items(), texts);
  EXPECT_EQ(elsewhere.items(), std::vector<std::string>{"for other"});
}

// "postgresql://user:password@host:port/db" as "host=... port=... dbname=... user=... password=...".
std::string asKeyValues(const std::string& url) {
  const auto creds = url.find("://") + 3, at = url.find('@'), colon = url.find(':', creds);
  const auto port = url.find(':', at), slash = url.find('/', at);
  return "host=" + url.substr(at + 1, port - at - 1) + " port=" + url.substr(port + 1, slash - port - 1) +
         " dbname=" + url.substr(slash + 1) + " user=" + url.substr(creds, colon - creds) +
         " password=" + url.substr(colon + 1, at - colon - 1);
}

TEST_F(PostgresEventChannelTest, TakesAKeyValueConnectionStringToo) {
  auto ch = openPostgresEventChannel({.url = asKeyValues(db_->url()), .application_name = "kasm 'events' kv"});
  ASSERT_TRUE(ch.ok()) << ch.error().toString();
  ASSERT_TRUE(waitUntil([&] { return (*ch)->available(); }));
  Inbox<std::string> inbox;
  auto sub = (*ch)->subscribe(into(inbox));
  auto r = (*ch)->publish("kv");
  ASSERT_TRUE(r.ok()) << r.error().toString();
  ASSERT_TRUE(inbox.waitFor(1));
  // The quoted application_name reached the server intact (execute() throws on the exception).
  EXPECT_NO_THROW(db_->execute(
      "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'kasm ''events'' kv') "
      "THEN RAISE EXCEPTION 'no listener named so'; END IF; END $$"));
}

TEST_F(PostgresEventChannelTest, InvalidUtf8IsRefusedByTheServerAsInvalidArgument) {
  auto a = open();
  ASSERT_TRUE(a);
  auto r = a->publish("bad \xff\xfe bytes");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << r.error().toString();
  EXPECT_TRUE(a->publish("still fine").ok());  // The connection survived the refusal.
  // The limit counts bytes: 7,999 bytes of two-byte characters and one ASCII byte pass.
  std::string wide;
  while (wide.size() + 2 <= kPostgresMaxEventBytes) wide += "é";
  wide.resize(kPostgresMaxEventBytes, 'x');
  EXPECT_TRUE(a->publish(wide).ok());
}

#ifdef KASM_TEST_WITH_REDIS
// The adapter's availability follows the share database's, without taking its one callback.
TEST(ShareEventsRedis, AvailabilityFollowsTheShareDatabase) {
  std::string why;
  auto server = testing::PrivateRedisServer::start(&why);
  if (!server) KASM_SKIP_OR_FAIL(why);
  SystemClock clock;
  auto db = openRedisShareDatabase({.url = server->url(), .key_prefix = testing::uniqueRedisPrefix()}, clock);
  ASSERT_TRUE(db.ok()) << db.error().toString();
  Inbox<bool> db_availability, availability;
  (*db)->onAvailability([&](bool up) { db_availability.push(up); });  // What ChatService does.
  auto events = shareDatabaseEvents(**db);
  events->onAvailability([&](bool up) { availability.push(up); });
  server->kill();
  ASSERT_TRUE(availability.waitFor(1, 10s));
  EXPECT_FALSE(events->available());
  EXPECT_EQ(events->publish("lost").error().code(), ErrorCode::kUnavailable);
  ASSERT_TRUE(server->restart());
  ASSERT_TRUE(availability.waitFor(2, 15s));
  EXPECT_EQ(availability.items(), (std::vector<bool>{false, true}));
  ASSERT_TRUE(db_availability.waitFor(2, 5s));  // The database's own callback still runs.
  EXPECT_EQ(db_availability.items(), (std::vector<bool>{false, true}));
  Inbox<std::string> inbox;
  auto sub = events->subscribe(into(inbox));
  ASSERT_TRUE(sub.ok()) << sub.error().toString();
  ASSERT_TRUE(events->publish("back").ok());
  ASSERT_TRUE(inbox.waitFor(1));
}
#endif

}  // namespace
}  // namespace kasm
