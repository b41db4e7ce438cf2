#pragma once

// Commands for remote agents across the servers of an installation. A kasm-agent long-polls one
// server at a time (through a balancer, any of them); the manager that needs it may run in
// another. So in a scale-out installation every command goes through the store: the caller queues
// an AgentCommandRow (kasm/model/cluster.hpp), whichever server the agent polls claims it by
// compare-and-set and hands it over, whichever server receives the result writes it to the row,
// and the caller reads it there. Events on the installation's channel (spi::EventChannel) wake
// the waiting poll and the waiting caller at once; a sweep every second re-reads the store for
// whatever an event missed, so a lost event costs a second, never a command.
//
// Delivery is at least once: a command handed over by a server that died before the agent could
// have it is queued again (the agent runs each id once and answers a repeat with the same result,
// reference-server/agent_main.cpp); a command handed to an agent process that then restarted
// fails at once (Unavailable: the manager retries as for any unreachable agent).
//
// Threading: every method may be called from any thread; call(), next() block.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "kasm/agent/remote_link.hpp"
#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/spi/store.hpp"

namespace kasm::cluster {

struct AgentCommandsOptions {
  ManagerNodeId node;  // This server's (Membership::id()).
  // A caller waits this long for a result once the command was handed over (a provision may pull
  // an image), and `fetch_timeout` for some server to hand it over at all.
  Duration call_timeout = std::chrono::minutes(5);
  Duration quick_call_timeout = std::chrono::seconds(60);  // For quick commands (agent::CommandPace).
  Duration fetch_timeout = std::chrono::seconds(30);
  // A command handed over by a server whose heartbeat is older than this is queued again.
  Duration sender_dead_after = std::chrono::seconds(10);
  // Handed over this many times without a result: it fails.
  int max_deliveries = 3;
  // Tells the other servers (EventChannel::publish); empty in a single process.
  std::function<void(std::string event)> publish;
};

class AgentCommands {
 public:
  AgentCommands(spi::Store& store, Clock& clock, AgentCommandsOptions options);
  ~AgentCommands();
  AgentCommands(const AgentCommands&) = delete;
  AgentCommands& operator=(const AgentCommands&) = delete;

  // ---- the caller's side ----
  // An AgentLink whose commands go through the queue (ManagerOptions::remote_link).
  std::shared_ptr<spi::AgentLink> link(const AgentId& agent, agent::CommandAgentLink::UpstreamCheck check_upstream);
  // Queues one command and waits for its result JSON. Unavailable at once when the agent is not
  // checking in (missing, dead, unknown), when no server handed it over within fetch_timeout, or
  // no result came within call_timeout (quick_call_timeout for a quick command).
  Result<std::string> call(const AgentId& agent, std::string command_json,
                           agent::CommandPace pace = agent::CommandPace::kSlow);

  // ---- the side of the server the agent polls ----
  // Claims the agent's oldest queued command for its process `boot_id`, waiting up to `wait` for
  // one (nullopt when none came, or when a newer poll of the agent came to this server: an agent
  // polls one at a time, so the earlier one was given up).
  Result<std::optional<agent::AgentCommand>> next(const AgentId& agent, const std::string& boot_id, Duration wait);
  // The agent's process `boot_id` polls again and lists the commands it holds (`received`: running,
  // or answered without the answer having reached a server yet). A command handed to that process
  // that it does not list never reached it (the poll that carried it timed out, or a balancer lost
  // the answer): it is queued again now, rather than holding its caller until call_timeout. An
  // agent polls one at a time, so whatever was handed over before this poll was either received or
  // lost. After max_deliveries it fails instead. Returns how many were queued again.
  Result<int> redeliver(const AgentId& agent, const std::string& boot_id, const std::set<std::uint64_t>& received);
  // Stores the agent's result of command `id` (only `agent`'s own commands: NotFound for another's,
  // or for one whose caller gave up). A repeated result is accepted and changes nothing.
  Result<void> complete(const AgentId& agent, std::uint64_t id, std::string result_json);
  // The agent's process is now `boot_id`: commands handed to an earlier one fail (Unavailable).
  Result<void> agentRestarted(const AgentId& agent, const std::string& boot_id);

  // ---- upkeep ----
  // An event another server published: {"type": "agent_command", "agent": ...} or
  // {"type": "agent_result", "id": ...}. Wakes who waits for it here; anything else is ignored.
  void onEvent(std::string_view type, std::string_view subject);
  // Every second or so, on every server: wakes polls whose agents have queued commands and callers
  // whose results came without an event, queues again what dead servers had handed over, and
  // removes rows whose caller has given up.
  Result<void> sweep();
  // Wakes every waiter and makes call() and next() return at once (the server stops).
  void stop();

  static std::string agentCommandEvent(const ManagerNodeId& origin, const AgentId& agent);
  static std::string agentResultEvent(const ManagerNodeId& origin, std::string_view id);

 private:
  struct Waiter {
    std::condition_variable cv;
    bool woken = false;
  };
  class Wait;
  void wake(const std::string& key);
  Result<std::optional<agent::AgentCommand>> claim(const AgentId& agent, const std::string& boot_id);
  std::string newId();

  spi::Store& store_;
  Clock& clock_;
  AgentCommandsOptions options_;
  std::mutex mu_;
  std::multimap<std::string, Waiter*> waiters_;       // "a:<agent>" (polls), "c:<id>" (callers).
  std::map<std::string, std::uint64_t> latest_poll_;  // Per agent: the poll that is live here.
  bool stopped_ = false;
};

}  // namespace kasm::cluster
