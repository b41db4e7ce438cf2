// The chat of a shared session (kasm::share::ChatService) over the in-process share database:
// Kasm's message shapes, who the author is, what is refused, join and leave notices, members.

#include "kasm/share/chat.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "kasm/share/memory_share_database.hpp"

namespace kasm::share {
namespace {

namespace json = boost::json;

// What one viewer received, waited on with a deadline. The sender shares the inbox's state: the
// chat's delivery thread may still send to a connection after the test's inbox went (ASan found it).
class Inbox {
 public:
  std::function<void(std::string)> sender() {
    return [state = state_](std::string m) {
      std::lock_guard lock(state->mutex);
      state->messages.push_back(std::move(m));
      state->wake.notify_all();
    };
  }
  // The first message (taken, with those before it) that satisfies `want`; nullopt after 5 s.
  std::optional<std::string> take(const std::function<bool(const std::string&)>& want,
                                  std::chrono::milliseconds wait = std::chrono::seconds(5)) {
    auto& st = *state_;
    std::unique_lock lock(st.mutex);
    const auto until = std::chrono::steady_clock::now() + wait;
    for (;;) {
      while (!st.messages.empty()) {
        std::string m = std::move(st.messages.front());
        st.messages.pop_front();
        if (want(m)) return m;
      }
      if (st.wake.wait_until(lock, until) == std::cv_status::timeout && st.messages.empty()) return std::nullopt;
    }
  }
  std::optional<json::object> takeJson(const std::function<bool(const json::object&)>& want,
                                       std::chrono::milliseconds wait = std::chrono::seconds(5)) {
    auto m = take(
        [&](const std::string& text) {
          boost::system::error_code ec;
          auto v = json::parse(text, ec);
          return !ec && v.is_object() && want(v.as_object());
        },
        wait);
    if (!m) return std::nullopt;
    return json::parse(*m).as_object();
  }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<std::string> messages;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

bool bodySays(const json::object& o, std::string_view text) {
  auto* b = o.if_contains("body");
  if (!b || !b->is_object()) return false;
  auto* m = b->as_object().if_contains("message");
  return m && m->is_string() && std::string_view(m->as_string()) == text;
}

spi::ChatMember member(const char* id, const char* user, const char* access) {
  return {id, user, user, access};
}

class ChatTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  MemoryShareDatabase db_{clock_};
  ChatService chat_{db_, clock_};
  const SessionId session_{"s1"};
};

TEST_F(ChatTest, HistoryOnJoinBroadcastToEveryoneAndTheAuthorIsTheViewer) {
  ASSERT_TRUE(db_.append(session_, {"", "message", "u0", "earlier", "before anyone came", 1}).ok());
  Inbox alice, bob;
  auto a = chat_.connect(session_, member("m1", "alice", "owner"), alice.sender());
  auto history = alice.takeJson([](const json::object& o) { return o.contains("history"); });
  ASSERT_TRUE(history);
  ASSERT_EQ(history->at("history").as_array().size(), 1u);
  EXPECT_EQ(history->at("history").as_array()[0].as_object().at("message"), "before anyone came");
  auto b = chat_.connect(session_, member("m2", "bob", "r"), bob.sender());
  ASSERT_TRUE(bob.takeJson([](const json::object& o) { return o.contains("history"); }));
  EXPECT_TRUE(alice.takeJson([](const json::object& o) { return bodySays(o, "bob joined"); }))
      << "a system message when someone joins";

  b->receive(R"({"message":"hi alice","username":"alice"})");
  auto got = alice.takeJson([](const json::object& o) { return bodySays(o, "hi alice"); });
  ASSERT_TRUE(got);
  const auto& body = got->at("body").as_object();
  EXPECT_EQ(body.at("username"), "bob") << "a claimed username is ignored";
  EXPECT_EQ(body.at("user_id"), "bob");
  EXPECT_EQ(body.at("kind"), "message");
  EXPECT_TRUE(bob.takeJson([](const json::object& o) { return bodySays(o, "hi alice"); })) << "the author sees it too";

  // It stays for those who come later.
  Inbox carol;
  auto c = chat_.connect(session_, member("m3", "carol", "r"), carol.sender());
  auto later = carol.takeJson([](const json::object& o) { return o.contains("history"); });
  ASSERT_TRUE(later);
  bool seen = false;
  for (const auto& m : later->at("history").as_array()) seen |= m.as_object().at("message") == "hi alice";
  EXPECT_TRUE(seen);
}

TEST_F(ChatTest, PingMembersAndRefusals) {
  Inbox alice;
  auto a = chat_.connect(session_, member("m1", "alice", "owner"), alice.sender());
  Inbox bob;
  auto b = chat_.connect(session_, member("m2", "bob", "r"), bob.sender());
  a->receive("ping");
  EXPECT_TRUE(alice.take([](const std::string& m) { return m == "pong"; }));
  // Members come from the share database after both joined (the worker runs in order).
  ASSERT_TRUE(bob.takeJson([](const json::object& o) { return o.contains("history"); }));
  a->receive(R"({"members":true})");
  auto members = alice.takeJson([](const json::object& o) { return o.contains("members"); });
  ASSERT_TRUE(members);
  ASSERT_EQ(members->at("members").as_array().size(), 2u);
  chat_.setAccess(session_, "bob", "rw");
  a->receive(R"({"members":true})");
  members = alice.takeJson([](const json::object& o) { return o.contains("members"); });
  ASSERT_TRUE(members);
  std::string bobs;
  for (const auto& m : members->at("members").as_array()) {
    if (m.as_object().at("user_id") == "bob") bobs = std::string(m.as_object().at("access").as_string());
  }
  EXPECT_EQ(bobs, "rw") << "the member list follows a change of access";

  for (const char* bad :
       {"not json", "[1,2]", R"({"message":5})", R"({"what":"ever"})", "{\"message\":\"bell \\u0007\"}"}) {
    a->receive(bad);
    EXPECT_TRUE(alice.takeJson([](const json::object& o) { return o.contains("error"); })) << bad;
  }
  a->receive(json::serialize(json::object{{"message", std::string(5000, 'x')}}));
  EXPECT_TRUE(alice.takeJson([](const json::object& o) { return o.contains("error"); })) << "too long";
  auto history = db_.history(session_, 100);
  ASSERT_TRUE(history.ok());
  for (const auto& m : *history) EXPECT_EQ(m.kind, "system") << m.body;
}

TEST_F(ChatTest, LeavingIsAnnouncedAndEndsPresence) {
  Inbox alice, bob;
  auto a = chat_.connect(session_, member("m1", "alice", "owner"), alice.sender());
  auto b = chat_.connect(session_, member("m2", "bob", "r"), bob.sender());
  ASSERT_TRUE(alice.takeJson([](const json::object& o) { return bodySays(o, "bob joined"); }));
  b->leave();
  b.reset();
  EXPECT_TRUE(alice.takeJson([](const json::object& o) { return bodySays(o, "bob left"); }));
  auto members = db_.members(session_);
  ASSERT_TRUE(members.ok());
  ASSERT_EQ(members->size(), 1u);
  EXPECT_EQ(members->front().user_id, "alice");
  // A viewer who left receives nothing more, and sending does nothing.
  Inbox late;
  auto gone = chat_.connect(session_, member("m3", "carol", "r"), late.sender());
  gone->leave();
  gone->receive(R"({"message":"after leaving"})");
  a->receive(R"({"message":"still here"})");
  ASSERT_TRUE(alice.takeJson([](const json::object& o) { return bodySays(o, "still here"); }));
  EXPECT_FALSE(
      late.takeJson([](const json::object& o) { return bodySays(o, "still here"); }, std::chrono::milliseconds(300)));
  chat_.endSession(session_);
  // endSession is queued behind everything else: wait for its effect.
  for (int i = 0; i < 100 && !db_.history(session_, 10)->empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(db_.history(session_, 10)->empty()) << "the history goes with the session";
}

}  // namespace
}  // namespace kasm::share
