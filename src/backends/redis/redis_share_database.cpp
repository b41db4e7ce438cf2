#include "kasm/share/redis_share_database.hpp"

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>

#include "backends/redis/redis_pool.hpp"
#include "backends/redis/redis_subscriber.hpp"
#include "share/share_checks.hpp"
#include "share/subscriber_hub.hpp"

namespace kasm {
namespace {

namespace json = boost::json;
using redis::RedisCommand;
using redis::RedisReply;

// Appends to the stream (exactly MAXLEN newest), refreshes its expiry and publishes "<id>\n<json>"
// in one atomic step, so every subscriber learns the id the history will show.
constexpr const char* kAppendScript = R"lua(
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'm', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], id .. '\n' .. ARGV[2])
return id
)lua";

// Drops members whose expiry (the score) is not after now, then returns [member_id, json]...
constexpr const char* kMembersScript = R"lua(
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, m in ipairs(gone) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('HDEL', KEYS[2], m)
end
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local data = redis.call('HGET', KEYS[2], m)
  if data then
    out[#out + 1] = m
    out[#out + 1] = data
  end
end
return out
)lua";

std::string encodeMessage(const spi::ChatMessage& m) {
  return json::serialize(json::object{
      {"kind", m.kind}, {"user_id", m.user_id}, {"username", m.username}, {"body", m.body}, {"at_ms", m.at_ms}});
}

std::string stringField(const json::object& o, const char* name) {
  auto* v = o.if_contains(name);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

Result<spi::ChatMessage> decodeMessage(std::string id, std::string_view text) {
  json::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return dataLoss("redis: a chat message is not a JSON object");
  const auto& o = v.get_object();
  spi::ChatMessage m;
  m.id = std::move(id);
  m.kind = stringField(o, "kind");
  m.user_id = stringField(o, "user_id");
  m.username = stringField(o, "username");
  m.body = stringField(o, "body");
  if (auto* at = o.if_contains("at_ms"); at && at->is_int64()) m.at_ms = at->get_int64();
  return m;
}

std::string encodeMember(const spi::ChatMember& m) {
  return json::serialize(
      json::object{{"member_id", m.member_id}, {"user_id", m.user_id}, {"username", m.username}, {"access", m.access}});
}

Result<spi::ChatMember> decodeMember(std::string_view text) {
  json::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return dataLoss("redis: a chat member is not a JSON object");
  const auto& o = v.get_object();
  return spi::ChatMember{.member_id = stringField(o, "member_id"),
                         .user_id = stringField(o, "user_id"),
                         .username = stringField(o, "username"),
                         .access = stringField(o, "access")};
}

Error replyError(std::string_view what, const RedisReply& r) {
  return unavailable("redis: " + std::string(what) + " failed: " + r.str);
}

class RedisShareDatabase;

// Releases the channel reference after the local subscription has ended.
class RedisSubscription final : public spi::Subscription {
 public:
  RedisSubscription(std::unique_ptr<spi::Subscription> local, std::weak_ptr<redis::RedisSubscriber> subscriber,
                    std::string channel)
      : local_(std::move(local)), subscriber_(std::move(subscriber)), channel_(std::move(channel)) {}
  ~RedisSubscription() override { cancel(); }
  void cancel() override {
    if (done_.exchange(true)) return;
    local_->cancel();
    if (auto s = subscriber_.lock()) s->release(channel_);
  }

 private:
  std::unique_ptr<spi::Subscription> local_;
  std::weak_ptr<redis::RedisSubscriber> subscriber_;
  std::string channel_;
  std::atomic<bool> done_{false};
};

class RedisShareDatabase final : public spi::ShareDatabase {
 public:
  RedisShareDatabase(const RedisShareDatabaseOptions& options, const Clock& clock, redis::RedisEndpoint endpoint,
                     std::shared_ptr<SSL_CTX> tls)
      : options_(options),
        clock_(clock),
        events_channel_(options.key_prefix + "events"),
        pool_(endpoint, tls, options.connect_timeout, options.command_timeout, options.pool_size) {
    subscriber_ = std::make_shared<redis::RedisSubscriber>(
        redis::RedisSubscriber::Settings{.endpoint = std::move(endpoint),
                                         .tls = std::move(tls),
                                         .connect_timeout = options.connect_timeout,
                                         .command_timeout = options.command_timeout},
        [this](const std::string& channel, std::string payload) { onMessage(channel, std::move(payload)); },
        [this](bool available) { hub_.deliverAvailability(available); });
  }

  ~RedisShareDatabase() override {
    // The reading thread calls into the hub: stop it first, even if a subscription still holds it.
    subscriber_->stop();
  }

  bool waitForSubscriber() { return subscriber_->waitUntilAvailable(options_.connect_timeout * 2); }

  std::string_view backendName() const override { return "redis"; }

  Result<spi::ChatMessage> append(const SessionId& session, spi::ChatMessage message) override {
    KASM_RETURN_IF_ERROR(share::checkAppend(session, message, options_.limits));
    const auto body = encodeMessage(message);
    KASM_ASSIGN_OR_RETURN(auto reply, pool_.run({"EVAL", kAppendScript, "1", key(session, ":log"),
                                                 std::to_string(options_.limits.history_messages), body,
                                                 std::to_string(options_.idle_expiry.count()), channelOf(session)}));
    if (reply.type != RedisReply::Type::kString) return replyError("append", reply);
    message.id = std::move(reply.str);
    return message;
  }

  Result<std::vector<spi::ChatMessage>> history(const SessionId& session, std::size_t limit) override {
    KASM_RETURN_IF_ERROR(share::checkSession(session));
    std::vector<spi::ChatMessage> out;
    limit = std::min(limit, options_.limits.history_messages);
    if (limit == 0) return out;
    KASM_ASSIGN_OR_RETURN(auto reply,
                          pool_.run({"XREVRANGE", key(session, ":log"), "+", "-", "COUNT", std::to_string(limit)}));
    if (reply.type != RedisReply::Type::kArray) return replyError("history", reply);
    for (auto it = reply.elements.rbegin(); it != reply.elements.rend(); ++it) {
      // [id, [field, value, ...]]
      if (it->elements.size() != 2) return dataLoss("redis: a chat log entry has an unexpected shape");
      const auto& fields = it->elements[1].elements;
      const RedisReply* body = nullptr;
      for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].str == "m") body = &fields[i + 1];
      }
      if (!body) return dataLoss("redis: a chat log entry has no message");
      KASM_ASSIGN_OR_RETURN(auto m, decodeMessage(it->elements[0].str, body->str));
      out.push_back(std::move(m));
    }
    return out;
  }

  Result<std::unique_ptr<spi::Subscription>> subscribe(const SessionId& session, spi::ChatCallback callback) override {
    KASM_RETURN_IF_ERROR(share::checkSession(session));
    return subscribeChannel(channelOf(session), hub_.addChat(session.str(), std::move(callback)));
  }

  Result<void> touchMember(const SessionId& session, const spi::ChatMember& member, Duration ttl) override {
    KASM_RETURN_IF_ERROR(share::checkMember(session, member, ttl));
    const auto zset = key(session, ":members");
    const auto data = key(session, ":member-data");
    const auto expires = std::to_string(toUnixMillis(clock_.now() + ttl));
    const auto idle = std::to_string(std::max(options_.idle_expiry, ttl).count());
    KASM_ASSIGN_OR_RETURN(auto replies, pool_.run({{"MULTI"},
                                                   {"ZADD", zset, expires, member.member_id},
                                                   {"HSET", data, member.member_id, encodeMember(member)},
                                                   {"PEXPIRE", zset, idle},
                                                   {"PEXPIRE", data, idle},
                                                   {"EXEC"}}));
    return checkTransaction("touchMember", replies);
  }

  Result<void> removeMember(const SessionId& session, std::string_view member_id) override {
    KASM_RETURN_IF_ERROR(share::checkSession(session));
    const std::string id(member_id);
    KASM_ASSIGN_OR_RETURN(
        auto replies,
        pool_.run(
            {{"MULTI"}, {"ZREM", key(session, ":members"), id}, {"HDEL", key(session, ":member-data"), id}, {"EXEC"}}));
    return checkTransaction("removeMember", replies);
  }

  Result<std::vector<spi::ChatMember>> members(const SessionId& session) override {
    KASM_RETURN_IF_ERROR(share::checkSession(session));
    KASM_ASSIGN_OR_RETURN(
        auto reply, pool_.run({"EVAL", kMembersScript, "2", key(session, ":members"), key(session, ":member-data"),
                               std::to_string(toUnixMillis(clock_.now()))}));
    if (reply.type != RedisReply::Type::kArray) return replyError("members", reply);
    std::vector<spi::ChatMember> out;
    for (std::size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
      KASM_ASSIGN_OR_RETURN(auto m, decodeMember(reply.elements[i + 1].str));
      out.push_back(std::move(m));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.member_id < b.member_id; });
    return out;
  }

  Result<void> dropSession(const SessionId& session) override {
    KASM_RETURN_IF_ERROR(share::checkSession(session));
    KASM_ASSIGN_OR_RETURN(
        auto reply, pool_.run({"DEL", key(session, ":log"), key(session, ":members"), key(session, ":member-data")}));
    if (reply.isError()) return replyError("dropSession", reply);
    return {};
  }

  Result<void> publishEvent(std::string_view event) override {
    KASM_ASSIGN_OR_RETURN(auto reply, pool_.run({"PUBLISH", events_channel_, std::string(event)}));
    if (reply.isError()) return replyError("publishEvent", reply);
    return {};
  }

  Result<std::unique_ptr<spi::Subscription>> subscribeEvents(spi::EventCallback callback) override {
    return subscribeChannel(events_channel_, hub_.addEvents(std::move(callback)));
  }

  bool available() const override { return subscriber_->available(); }
  void onAvailability(spi::AvailabilityCallback callback) override {
    hub_.setAvailabilityCallback(std::move(callback));
  }
  const spi::ShareDatabaseLimits& limits() const override { return options_.limits; }

 private:
  // "<prefix>chat:{<session>}" plus `suffix`; the braces are a cluster hash tag.
  std::string key(const SessionId& session, std::string_view suffix) const {
    return options_.key_prefix + "chat:{" + session.str() + "}" + std::string(suffix);
  }
  std::string channelOf(const SessionId& session) const { return key(session, ""); }

  Result<std::unique_ptr<spi::Subscription>> subscribeChannel(const std::string& channel,
                                                              std::unique_ptr<spi::Subscription> local) {
    auto acquired = subscriber_->acquire(channel);
    if (!acquired.ok()) {
      local->cancel();
      return std::move(acquired).error();
    }
    return std::unique_ptr<spi::Subscription>(
        std::make_unique<RedisSubscription>(std::move(local), subscriber_, channel));
  }

  static Result<void> checkTransaction(std::string_view what, const std::vector<RedisReply>& replies) {
    for (const auto& r : replies) {
      if (r.isError()) return replyError(what, r);
    }
    if (replies.back().type != RedisReply::Type::kArray) return unavailable("redis: " + std::string(what) + " aborted");
    return {};
  }

  // On the subscriber's reading thread.
  void onMessage(const std::string& channel, std::string payload) {
    if (channel == events_channel_) {
      hub_.deliverEvent(std::move(payload));
      return;
    }
    const auto head = options_.key_prefix + "chat:{";
    if (!channel.starts_with(head) || !channel.ends_with('}')) return;
    auto session = channel.substr(head.size(), channel.size() - head.size() - 1);
    auto newline = payload.find('\n');
    if (newline == std::string::npos) return;
    auto message = decodeMessage(payload.substr(0, newline), std::string_view(payload).substr(newline + 1));
    if (message.ok()) hub_.deliverChat(session, std::move(*message));
  }

  RedisShareDatabaseOptions options_;
  const Clock& clock_;
  std::string events_channel_;
  redis::RedisPool pool_;
  share::SubscriberHub hub_;
  std::shared_ptr<redis::RedisSubscriber> subscriber_;
};

}  // namespace

Result<std::unique_ptr<spi::ShareDatabase>> openRedisShareDatabase(const RedisShareDatabaseOptions& options,
                                                                   const Clock& clock) {
  KASM_ASSIGN_OR_RETURN(auto endpoint, redis::parseRedisUrl(options.url));
  if (options.limits.history_messages == 0) return invalidArgument("redis: limits.history_messages must be positive");
  if (options.connect_timeout.count() <= 0 || options.command_timeout.count() <= 0) {
    return invalidArgument("redis: the timeouts must be positive");
  }
  std::shared_ptr<SSL_CTX> tls;
  if (endpoint.tls) {
    KASM_ASSIGN_OR_RETURN(tls, redis::makeTlsContext(options.tls_ca_file, options.tls_insecure));
  }
  // One connection first, so a wrong password or an unreachable server is a clear error now.
  KASM_ASSIGN_OR_RETURN(
      auto probe, redis::RedisConnection::open(endpoint, tls.get(), options.connect_timeout, options.command_timeout));
  probe.reset();
  auto db = std::make_unique<RedisShareDatabase>(options, clock, std::move(endpoint), std::move(tls));
  if (!db->waitForSubscriber()) return unavailable("redis: the subscriber connection did not come up");
  return std::unique_ptr<spi::ShareDatabase>(std::move(db));
}

}  // namespace kasm
