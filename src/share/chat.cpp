#include "kasm/share/chat.hpp"

#include <atomic>
#include <boost/json.hpp>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

namespace kasm::share {

namespace json = boost::json;

namespace {

json::object bodyJson(const spi::ChatMessage& m) {
  json::object b;
  b["id"] = m.id;
  b["kind"] = m.kind;
  b["user_id"] = m.user_id;
  b["username"] = m.username;
  b["message"] = m.body;
  b["timestamp"] = m.at_ms;
  return b;
}

std::string errorText(std::string_view text) {
  json::object o;
  o["error"] = text;
  return json::serialize(o);
}
std::string one(std::string_view key, json::value v) {
  json::object o;
  o[key] = std::move(v);
  return json::serialize(o);
}

// A chat line must be text: valid UTF-8 without control characters other than newline and tab.
bool acceptableText(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 && c != '\n' && c != '\t') return false;
      if (c == 0x7f) return false;
      ++i;
      continue;
    }
    const int extra = (c >= 0xC2 && c <= 0xDF) ? 1 : (c >= 0xE0 && c <= 0xEF) ? 2 : (c >= 0xF0 && c <= 0xF4) ? 3 : -1;
    if (extra < 0 || i + static_cast<std::size_t>(extra) >= s.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += static_cast<std::size_t>(extra) + 1;
  }
  return true;
}

}  // namespace

struct Conn;

struct ChatService::Impl : std::enable_shared_from_this<ChatService::Impl> {
  Impl(spi::ShareDatabase& d, const Clock& c, ChatOptions o) : db(d), clock(c), options(o) {}

  spi::ShareDatabase& db;
  const Clock& clock;
  ChatOptions options;

  struct Room {
    std::map<std::uint64_t, std::weak_ptr<Conn>> conns;
    std::unique_ptr<spi::Subscription> sub;
    bool subscribing = false;
  };

  std::mutex mutex;
  std::unordered_map<SessionId, Room> rooms;
  std::uint64_t next_id = 0;

  // The worker: share database calls, in order.
  std::mutex queue_mutex;
  std::condition_variable wake;
  std::deque<std::function<void()>> queue;
  bool stopping = false;
  std::thread worker;

  bool post(std::function<void()> task) {
    {
      std::lock_guard lock(queue_mutex);
      if (stopping || queue.size() >= options.max_queue) return false;
      queue.push_back(std::move(task));
    }
    wake.notify_one();
    return true;
  }

  // The live connections of `session` (every session when nullopt), taken under the lock so that
  // messages go out without it.
  std::vector<std::shared_ptr<Conn>> connections(const std::optional<SessionId>& session);

  void run();
  void refreshPresence();
  void subscribeRoom(const SessionId& session);
  void deliver(const SessionId& session, const std::string& text);
  void broadcastLocal(const std::string& text);
  void sendHistory(const SessionId& session, const std::function<void(std::string)>& send);
  void leave(Conn& c);
};

struct Conn final : ChatConnection, std::enable_shared_from_this<Conn> {
  std::weak_ptr<ChatService::Impl> service;
  SessionId session;
  spi::ChatMember member;
  std::function<void(std::string)> send;
  std::uint64_t id = 0;
  std::atomic<bool> left{false};

  void reply(std::string text) {
    if (!left.load()) send(std::move(text));
  }

  void receive(std::string_view text) override {
    auto svc = service.lock();
    if (!svc || left.load()) return;
    if (text == "ping") {
      reply("pong");
      return;
    }
    boost::system::error_code ec;
    auto parsed = json::parse(text, ec);
    if (ec || !parsed.is_object()) {
      reply(errorText("a chat message is a JSON object or \"ping\""));
      return;
    }
    const auto& o = parsed.get_object();
    if (auto m = o.if_contains("members"); m && m->is_bool() && m->get_bool()) {
      auto self = shared_from_this();
      if (!svc->post([svc, self] {
            auto list = svc->db.members(self->session);
            if (!list.ok()) {
              self->reply(errorText("chat is unavailable: " + list.error().message()));
              return;
            }
            json::array arr;
            for (const auto& mem : *list) {
              json::object e;
              e["user_id"] = mem.user_id;
              e["username"] = mem.username;
              e["access"] = mem.access;
              arr.push_back(std::move(e));
            }
            self->reply(one("members", std::move(arr)));
          })) {
        reply(errorText("the chat is too busy; try again"));
      }
      return;
    }
    if (auto m = o.if_contains("message")) {
      if (!m->is_string()) {
        reply(errorText("message must be a string"));
        return;
      }
      std::string body(m->get_string());
      if (body.empty()) return;
      if (body.size() > svc->options.max_message_bytes) {
        reply(
            errorText("a chat message may have at most " + std::to_string(svc->options.max_message_bytes) + " bytes"));
        return;
      }
      if (!acceptableText(body)) {
        reply(errorText("a chat message must be UTF-8 text"));
        return;
      }
      spi::ChatMessage msg;
      msg.kind = "message";
      msg.user_id = member.user_id;
      msg.username = member.username;  // The authenticated viewer, whatever the message claims.
      msg.body = std::move(body);
      msg.at_ms = toUnixMillis(svc->clock.now());
      auto self = shared_from_this();
      if (!svc->post([svc, self, msg = std::move(msg)]() mutable {
            auto r = svc->db.append(self->session, std::move(msg));
            if (!r.ok()) self->reply(errorText("chat is unavailable: " + r.error().message()));
          })) {
        reply(errorText("the chat is too busy; try again"));
      }
      return;
    }
    reply(errorText("unknown chat message; expected \"ping\", {\"members\": true} or {\"message\": ...}"));
  }

  void leave() override {
    if (left.exchange(true)) return;
    if (auto svc = service.lock()) svc->leave(*this);
  }

  ~Conn() override { leave(); }
};

void ChatService::Impl::run() {
  const Duration refresh = std::max<Duration>(options.presence_ttl / 3, std::chrono::milliseconds(100));
  auto next_refresh = std::chrono::steady_clock::now() + refresh;
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(queue_mutex);
      wake.wait_until(lock, next_refresh, [&] { return stopping || !queue.empty(); });
      if (stopping && queue.empty()) return;
      if (!queue.empty()) {
        task = std::move(queue.front());
        queue.pop_front();
      }
    }
    if (task) {
      try {
        task();
      } catch (...) {
        // A failed chat call costs that call only.
      }
    }
    if (std::chrono::steady_clock::now() >= next_refresh) {
      refreshPresence();
      next_refresh = std::chrono::steady_clock::now() + refresh;
    }
  }
}

std::vector<std::shared_ptr<Conn>> ChatService::Impl::connections(const std::optional<SessionId>& session) {
  std::vector<std::shared_ptr<Conn>> out;
  std::lock_guard lock(mutex);
  auto collect = [&](const Room& room) {
    for (const auto& [id, w] : room.conns) {
      if (auto c = w.lock()) out.push_back(std::move(c));
    }
  };
  if (!session) {
    for (const auto& [s, room] : rooms) collect(room);
  } else if (auto it = rooms.find(*session); it != rooms.end()) {
    collect(it->second);
  }
  return out;
}

void ChatService::Impl::refreshPresence() {
  for (const auto& c : connections(std::nullopt)) (void)db.touchMember(c->session, c->member, options.presence_ttl);
  std::vector<SessionId> unsubscribed;
  {
    std::lock_guard lock(mutex);
    for (const auto& [session, room] : rooms) {
      if (!room.sub && !room.subscribing) unsubscribed.push_back(session);
    }
  }
  // A room whose subscription failed (the share database was down) tries again.
  for (const auto& s : unsubscribed) subscribeRoom(s);
}

// On the worker.
void ChatService::Impl::subscribeRoom(const SessionId& session) {
  {
    std::lock_guard lock(mutex);
    auto it = rooms.find(session);
    if (it == rooms.end() || it->second.sub || it->second.subscribing) return;
    it->second.subscribing = true;
  }
  std::weak_ptr<Impl> weak = weak_from_this();
  auto sub = db.subscribe(session, [weak, session](const spi::ChatMessage& m) {
    if (auto svc = weak.lock()) svc->deliver(session, one("body", bodyJson(m)));
  });
  std::unique_ptr<spi::Subscription> unused;
  {
    std::lock_guard lock(mutex);
    auto it = rooms.find(session);
    if (it == rooms.end()) {
      if (sub.ok()) unused = std::move(*sub);
    } else {
      it->second.subscribing = false;
      if (sub.ok()) it->second.sub = std::move(*sub);
    }
  }
  if (unused) unused->cancel();
}

void ChatService::Impl::deliver(const SessionId& session, const std::string& text) {
  for (const auto& c : connections(session)) c->reply(text);
}

void ChatService::Impl::broadcastLocal(const std::string& text) {
  for (const auto& c : connections(std::nullopt)) c->reply(text);
}

void ChatService::Impl::sendHistory(const SessionId& session, const std::function<void(std::string)>& send) {
  auto history = db.history(session, options.history_on_join);
  if (!history.ok()) {
    json::object o;
    o["status"] = "unavailable";
    o["reason"] = history.error().message();
    send(json::serialize(o));
    return;
  }
  json::array arr;
  for (const auto& m : *history) arr.push_back(bodyJson(m));
  send(one("history", std::move(arr)));
}

void ChatService::Impl::leave(Conn& c) {
  std::unique_ptr<spi::Subscription> ended;
  {
    std::lock_guard lock(mutex);
    auto it = rooms.find(c.session);
    if (it != rooms.end()) {
      it->second.conns.erase(c.id);
      if (it->second.conns.empty()) {
        ended = std::move(it->second.sub);
        rooms.erase(it);
      }
    }
  }
  auto session = c.session;
  // Only what never changes after connect(): access may be changing on the worker.
  struct Leaving {
    std::string member_id, username;
  } member{c.member.member_id, c.member.username};
  auto self = shared_from_this();
  // Cancelling may talk to the share database: on the worker, in order with the room's next subscribe.
  std::shared_ptr<spi::Subscription> sub(ended.release());
  (void)post([self, session, member, sub] {
    if (sub) sub->cancel();
    (void)self->db.removeMember(session, member.member_id);
    spi::ChatMessage m;
    m.kind = "system";
    m.body = member.username + " left";
    m.at_ms = toUnixMillis(self->clock.now());
    (void)self->db.append(session, std::move(m));
  });
}

ChatService::ChatService(spi::ShareDatabase& db, const Clock& clock, ChatOptions options)
    : impl_(std::make_shared<Impl>(db, clock, options)) {
  impl_->worker = std::thread([impl = impl_.get()] { impl->run(); });
  std::weak_ptr<Impl> weak = impl_;
  db.onAvailability([weak](bool available) {
    auto svc = weak.lock();
    if (!svc) return;
    json::object o;
    o["status"] = available ? "available" : "unavailable";
    if (!available) o["reason"] = "the share database cannot be reached; chat comes back by itself";
    svc->broadcastLocal(json::serialize(o));
    if (!available) return;
    // Back: what was missed is in the history.
    for (auto& c : svc->connections(std::nullopt)) {
      (void)svc->post([svc, c] {
        (void)svc->db.touchMember(c->session, c->member, svc->options.presence_ttl);
        svc->sendHistory(c->session, [c](std::string t) { c->reply(std::move(t)); });
      });
    }
  });
}

ChatService::~ChatService() {
  impl_->db.onAvailability(nullptr);
  {
    std::lock_guard lock(impl_->queue_mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->worker.joinable()) impl_->worker.join();
  std::vector<std::unique_ptr<spi::Subscription>> subs;
  {
    std::lock_guard lock(impl_->mutex);
    for (auto& [s, room] : impl_->rooms)
      if (room.sub) subs.push_back(std::move(room.sub));
    impl_->rooms.clear();
  }
  for (auto& s : subs) s->cancel();
}

std::shared_ptr<ChatConnection> ChatService::connect(const SessionId& session, spi::ChatMember member,
                                                     std::function<void(std::string)> send) {
  auto c = std::make_shared<Conn>();
  c->service = impl_;
  c->session = session;
  c->member = std::move(member);
  c->send = std::move(send);
  {
    std::lock_guard lock(impl_->mutex);
    c->id = ++impl_->next_id;
    impl_->rooms[session].conns.emplace(c->id, c);
  }
  auto svc = impl_;
  std::weak_ptr<Conn> weak = c;
  const bool queued = impl_->post([svc, weak, session] {
    auto c = weak.lock();
    if (!c) return;
    svc->subscribeRoom(session);
    (void)svc->db.touchMember(session, c->member, svc->options.presence_ttl);
    svc->sendHistory(session, [c](std::string t) { c->reply(std::move(t)); });
    spi::ChatMessage m;
    m.kind = "system";
    m.body = c->member.username + " joined";
    m.at_ms = toUnixMillis(svc->clock.now());
    (void)svc->db.append(session, std::move(m));
  });
  if (!queued) c->reply(R"({"status":"unavailable","reason":"the chat is too busy"})");
  return c;
}

void ChatService::setAccess(const SessionId& session, std::string_view user_id, std::string access) {
  auto svc = impl_;
  (void)impl_->post([svc, session, user = std::string(user_id), access = std::move(access)] {
    for (auto& c : svc->connections(session)) {
      if (c->member.user_id != user) continue;
      c->member.access = access;
      (void)svc->db.touchMember(session, c->member, svc->options.presence_ttl);
    }
  });
}

void ChatService::endSession(const SessionId& session) {
  auto svc = impl_;
  (void)impl_->post([svc, session] { (void)svc->db.dropSession(session); });
}

}  // namespace kasm::share
