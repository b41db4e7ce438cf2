// Commands for remote agents through the store (kasm/cluster/agent_commands.hpp).

#include "kasm/cluster/agent_commands.hpp"

#include <boost/json.hpp>
#include <cstdio>
#include <set>

#include "kasm/model/agent.hpp"
#include "kasm/store/repository.hpp"

namespace kasm::cluster {

namespace json = boost::json;

namespace {

constexpr std::string_view kQueued = "queued";
constexpr std::string_view kSent = "sent";
constexpr std::string_view kDone = "done";

std::string pollKey(const AgentId& agent) {
  return "a:" + agent.str();
}
std::string callKey(std::string_view id) {
  return "c:" + std::string(id);
}

// A command handed over that will not be answered where it went: queued again, or failed once it
// was handed over `max_deliveries` times ("... times <why>").
AgentCommandRow handOverAgain(const AgentCommandRow& row, int max_deliveries, std::string_view why) {
  AgentCommandRow again = row;
  if (again.deliveries >= max_deliveries) {
    again.state = std::string(kDone);
    again.result = agent::commandErrorJson(
        unavailable("the command was handed over " + std::to_string(again.deliveries) + " times " + std::string(why)));
  } else {
    again.state = std::string(kQueued);
    again.sent_by = ManagerNodeId();
    again.agent_boot.clear();
  }
  return again;
}

// The relayed link: the JSON protocol of CommandAgentLink, carried by AgentCommands::call().
class RelayedAgentLink final : public agent::CommandAgentLink {
 public:
  RelayedAgentLink(AgentCommands& commands, AgentId agent, UpstreamCheck check)
      : CommandAgentLink(std::move(check)), commands_(commands), agent_(std::move(agent)) {}

 protected:
  Result<std::string> call(std::string command_json, agent::CommandPace pace) override {
    return commands_.call(agent_, std::move(command_json), pace);
  }

 private:
  AgentCommands& commands_;
  AgentId agent_;
};

}  // namespace

// Registers a waiter under `key` for its lifetime; registered before the store is read, so a wake
// between that read and the wait is not lost.
class AgentCommands::Wait {
 public:
  Wait(AgentCommands& owner, std::string key) : owner_(owner) {
    std::lock_guard lock(owner_.mu_);
    it_ = owner_.waiters_.emplace(std::move(key), &waiter_);
  }
  ~Wait() {
    std::lock_guard lock(owner_.mu_);
    owner_.waiters_.erase(it_);
  }
  // Until woken, `until`, or stop(); false once stopped.
  bool until(std::chrono::steady_clock::time_point until) {
    std::unique_lock lock(owner_.mu_);
    waiter_.cv.wait_until(lock, until, [&] { return waiter_.woken || owner_.stopped_; });
    waiter_.woken = false;
    return !owner_.stopped_;
  }

 private:
  AgentCommands& owner_;
  Waiter waiter_;
  std::multimap<std::string, Waiter*>::iterator it_;
};

AgentCommands::AgentCommands(spi::Store& store, Clock& clock, AgentCommandsOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {
  if (options_.node.empty()) options_.node = ManagerNodeId::generate();
}

AgentCommands::~AgentCommands() {
  stop();
}

void AgentCommands::stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  for (auto& [key, w] : waiters_) w->cv.notify_all();
}

void AgentCommands::wake(const std::string& key) {
  std::lock_guard lock(mu_);
  auto [first, last] = waiters_.equal_range(key);
  for (auto it = first; it != last; ++it) {
    it->second->woken = true;
    it->second->cv.notify_all();
  }
}

std::string AgentCommands::agentCommandEvent(const ManagerNodeId& origin, const AgentId& agent) {
  return json::serialize(json::object{{"type", "agent_command"}, {"origin", origin.str()}, {"agent", agent.str()}});
}

std::string AgentCommands::agentResultEvent(const ManagerNodeId& origin, std::string_view id) {
  return json::serialize(json::object{{"type", "agent_result"}, {"origin", origin.str()}, {"id", id}});
}

void AgentCommands::onEvent(std::string_view type, std::string_view subject) {
  if (type == "agent_command") {
    wake(pollKey(AgentId(std::string(subject))));
  } else if (type == "agent_result") {
    wake(callKey(subject));
  }
}

std::shared_ptr<spi::AgentLink> AgentCommands::link(const AgentId& agent,
                                                    agent::CommandAgentLink::UpstreamCheck check_upstream) {
  return std::make_shared<RelayedAgentLink>(*this, agent, std::move(check_upstream));
}

// agent::newCommandId, written as 19 digits, zero-padded, so that the rows' keys sort as the ids.
std::string AgentCommands::newId() {
  const std::uint64_t n = agent::newCommandId(toUnixMillis(clock_.now()));
  char buf[24];
  std::snprintf(buf, sizeof buf, "%019llu", static_cast<unsigned long long>(n));
  return buf;
}

Result<std::string> AgentCommands::call(const AgentId& agent, std::string command_json, agent::CommandPace pace) {
  const Duration answer_within = pace == agent::CommandPace::kQuick
                                     ? std::min(options_.quick_call_timeout, options_.call_timeout)
                                     : options_.call_timeout;
  Repository repo(store_);
  // An agent that does not check in fetches nothing: say so now rather than after a timeout.
  auto a = repo.get<Agent>(agent.str());
  if (!a.ok()) {
    if (a.error().code() == ErrorCode::kNotFound) return unavailable("agent " + agent.str() + " is not registered");
    return a.error();
  }
  if (a->value.status == AgentStatus::kMissing || a->value.status == AgentStatus::kDead ||
      a->value.status == AgentStatus::kPending) {
    return unavailable("agent " + agent.str() + " is " + std::string(enumName(a->value.status)) +
                       ": it fetches no commands");
  }

  AgentCommandRow row;
  row.agent_id = agent;
  row.issuer = options_.node;
  row.state = std::string(kQueued);
  row.command = std::move(command_json);
  row.queued_at = clock_.now();
  row.expires_at = row.queued_at + options_.fetch_timeout + answer_within;
  std::optional<Wait> wait;
  for (int attempt = 0;; ++attempt) {
    row.id = newId();
    wait.emplace(*this, callKey(row.id));
    auto made = repo.insert(row);
    if (made.ok()) break;
    wait.reset();
    if (made.error().code() != ErrorCode::kAlreadyExists || attempt >= 3) return made.error();
  }
  if (options_.publish) options_.publish(agentCommandEvent(options_.node, agent));
  wake(pollKey(agent));

  const auto started = std::chrono::steady_clock::now();
  auto deadline = started + options_.fetch_timeout;
  bool sent = false;
  for (;;) {
    const bool running = wait->until(deadline);
    auto cur = repo.get<AgentCommandRow>(row.id);
    if (!cur.ok()) {
      if (cur.error().code() == ErrorCode::kNotFound)
        return unavailable("the command for agent " + agent.str() + " was dropped");
      if (!running) return unavailable("the server is stopping");
      continue;  // The store is away for a moment: wait on.
    }
    if (cur->value.state == kDone) {
      (void)repo.remove<AgentCommandRow>(row.id);
      return std::move(cur->value.result);
    }
    if (cur->value.state == kSent && !sent) {
      // Handed over (seen at the latest when fetch_timeout ends): now the agent's answer counts.
      sent = true;
      deadline = std::chrono::steady_clock::now() + answer_within;
    }
    if (!running || std::chrono::steady_clock::now() >= deadline) {
      // Give up; a late result then finds no row. Only this version: if a server claimed it just
      // now, wait for what it brings.
      auto gone = repo.remove<AgentCommandRow>(row.id, cur->version);
      if (!gone.ok() && gone.error().code() == ErrorCode::kAborted && running) continue;
      if (!running) return unavailable("the server is stopping");
      const auto waited = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started);
      return unavailable(sent ? "agent " + agent.str() + " did not answer within " + std::to_string(waited.count()) +
                                    " s"
                              : "no server handed the command to agent " + agent.str() + " within " +
                                    std::to_string(waited.count()) + " s (is it polling?)");
    }
  }
}

Result<std::optional<agent::AgentCommand>> AgentCommands::claim(const AgentId& agent, const std::string& boot_id) {
  Repository repo(store_);
  spi::Query q;
  q.where("agent_id", agent.str()).where("state", std::string(kQueued));
  q.limit = 8;
  KASM_ASSIGN_OR_RETURN(auto queued, repo.list<AgentCommandRow>(q));
  const TimePoint now = clock_.now();
  for (auto& [row, version] : queued) {
    if (row.expires_at <= now) continue;  // Its caller gave up; the sweep removes it.
    AgentCommandRow taken = row;
    taken.state = std::string(kSent);
    taken.sent_by = options_.node;
    taken.sent_at = now;
    taken.agent_boot = boot_id;
    ++taken.deliveries;
    auto w = repo.update(taken, version);
    if (!w.ok()) {
      if (w.error().code() == ErrorCode::kAborted || w.error().code() == ErrorCode::kNotFound)
        continue;  // Lost a race.
      return w.error();
    }
    return std::optional<agent::AgentCommand>(agent::AgentCommand{std::stoull(taken.id), std::move(taken.command)});
  }
  return std::optional<agent::AgentCommand>();
}

Result<std::optional<agent::AgentCommand>> AgentCommands::next(const AgentId& agent, const std::string& boot_id,
                                                               Duration wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  Wait w(*this, pollKey(agent));
  // An agent process polls one at a time: its earlier poll still waiting here was given up (a
  // timeout, a broken connection), and a command it claimed would be lost. It ends.
  std::uint64_t mine = 0;
  {
    std::lock_guard lock(mu_);
    mine = ++latest_poll_[agent.str()];
  }
  wake(pollKey(agent));
  auto superseded = [&] {
    std::lock_guard lock(mu_);
    return latest_poll_[agent.str()] != mine;
  };
  for (;;) {
    if (superseded()) return std::optional<agent::AgentCommand>();
    KASM_ASSIGN_OR_RETURN(auto c, claim(agent, boot_id));
    if (c) return c;
    if (!w.until(deadline) || std::chrono::steady_clock::now() >= deadline) return std::optional<agent::AgentCommand>();
  }
}

Result<int> AgentCommands::redeliver(const AgentId& agent, const std::string& boot_id,
                                     const std::set<std::uint64_t>& received) {
  if (boot_id.empty()) return 0;
  Repository repo(store_);
  spi::Query q;
  q.where("agent_id", agent.str()).where("state", std::string(kSent));
  KASM_ASSIGN_OR_RETURN(auto sent, repo.list<AgentCommandRow>(q));
  int queued = 0;
  for (auto& [row, version] : sent) {
    if (row.agent_boot != boot_id || received.contains(std::stoull(row.id))) continue;
    const AgentCommandRow again = handOverAgain(row, options_.max_deliveries, "and never arrived");
    if (!repo.update(again, version).ok()) continue;  // Answered or taken meanwhile: nothing lost.
    if (again.state == kDone) {
      if (options_.publish) options_.publish(agentResultEvent(options_.node, row.id));
      wake(callKey(row.id));
    } else {
      ++queued;
    }
  }
  return queued;
}

Result<void> AgentCommands::complete(const AgentId& agent, std::uint64_t id, std::string result_json) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%019llu", static_cast<unsigned long long>(id));
  const std::string key(buf);
  Repository repo(store_);
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto cur = repo.get<AgentCommandRow>(key);
    if (!cur.ok() || cur->value.agent_id != agent) {
      if (cur.ok() || cur.error().code() == ErrorCode::kNotFound) return notFound("no call waits for command " + key);
      return cur.error();
    }
    if (cur->value.state == kDone) return {};  // A repeat (delivered twice).
    AgentCommandRow done = cur->value;
    done.state = std::string(kDone);
    done.result = std::move(result_json);
    auto w = repo.update(done, cur->version);
    if (w.ok()) {
      if (options_.publish) options_.publish(agentResultEvent(options_.node, key));
      wake(callKey(key));
      return {};
    }
    if (w.error().code() != ErrorCode::kAborted) return w.error();
    result_json = std::move(done.result);
  }
  return aborted("command " + key + " kept changing");
}

Result<void> AgentCommands::agentRestarted(const AgentId& agent, const std::string& boot_id) {
  Repository repo(store_);
  spi::Query q;
  q.where("agent_id", agent.str()).where("state", std::string(kSent));
  KASM_ASSIGN_OR_RETURN(auto sent, repo.list<AgentCommandRow>(q));
  for (auto& [row, version] : sent) {
    if (row.agent_boot == boot_id) continue;
    AgentCommandRow failed = row;
    failed.state = std::string(kDone);
    failed.result = agent::commandErrorJson(unavailable("the agent restarted while the command was in flight"));
    if (repo.update(failed, version).ok()) {
      if (options_.publish) options_.publish(agentResultEvent(options_.node, row.id));
      wake(callKey(row.id));
    }
  }
  return {};
}

Result<void> AgentCommands::sweep() {
  Repository repo(store_);
  const TimePoint now = clock_.now();
  KASM_ASSIGN_OR_RETURN(auto rows, repo.list<AgentCommandRow>());
  std::optional<std::map<ManagerNodeId, TimePoint>> heartbeats;  // Read once, when needed.
  std::set<std::string> keys;
  for (auto& [row, version] : rows) {
    if (row.expires_at + std::chrono::seconds(10) < now) {
      (void)repo.remove<AgentCommandRow>(row.id, version);  // Its caller gave up (or died) long ago.
      continue;
    }
    if (row.state == kQueued) keys.insert(pollKey(row.agent_id));
    if (row.issuer == options_.node && row.state == kDone) keys.insert(callKey(row.id));
    if (row.state != kSent || row.sent_by == options_.node) continue;
    // Handed over by another server: if that server died meanwhile, the agent may never have had
    // it. Queue it again (the agent runs an id once) or, after max_deliveries, fail it.
    if (!heartbeats) {
      heartbeats.emplace();
      KASM_ASSIGN_OR_RETURN(auto nodes, repo.list<ManagerNode>());
      for (auto& [n, v] : nodes) (*heartbeats)[n.id] = n.heartbeat_at;
    }
    auto hb = heartbeats->find(row.sent_by);
    const bool sender_dead = hb == heartbeats->end() ? row.sent_at + options_.sender_dead_after < now
                                                     : hb->second + options_.sender_dead_after < now;
    if (!sender_dead) continue;
    const AgentCommandRow again = handOverAgain(row, options_.max_deliveries, "without a result");
    if (repo.update(again, version).ok()) {
      if (options_.publish) {
        options_.publish(again.state == kDone ? agentResultEvent(options_.node, row.id)
                                              : agentCommandEvent(options_.node, row.agent_id));
      }
      keys.insert(again.state == kDone ? callKey(row.id) : pollKey(row.agent_id));
    }
  }
  for (const auto& k : keys) wake(k);
  return {};
}

}  // namespace kasm::cluster
