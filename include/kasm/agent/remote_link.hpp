#pragma once

// Remote agents that dial in. A `kasm-agent` on another Docker host connects out to the manager's
// server (so it works behind NAT and firewalls that only allow outbound HTTPS), checks in, and
// long-polls for commands; the server side of each agent is a RemoteAgentLink, which the manager
// uses like any other AgentLink. Commands and results travel as JSON (encodeCommand /
// executeCommand below), so both ends share one codec.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "kasm/core/clock.hpp"
#include "kasm/spi/agent_link.hpp"

namespace kasm::agent {

struct AgentCommand {
  std::uint64_t id = 0;
  std::string json;  // {"op": "provision", ...}: see executeCommand().
};

// How long the agent may take over a command once it has it. A provision may pull an image, and
// an exec, a file transfer or removing a profile runs as long as it runs: they get the link's call
// timeout. Stop, destroy, pause, resume and the listings are quick: a hung agent (its engine
// stuck, say) is given up on after the quick timeout, so a teardown is retried (and its caller
// answered) sooner.
enum class CommandPace { kQuick, kSlow };

// Manager side of the JSON protocol: every AgentLink call becomes a command (executeCommand()
// below reads it), sent by call(), whose answer is decoded here. Subclasses carry commands: to an
// agent polling this process (RemoteAgentLink), or through the store to whichever server of the
// installation it polls (kasm/cluster/agent_commands.hpp).
class CommandAgentLink : public spi::AgentLink {
 public:
  // Decides whether an upstream the agent reports for a session may be used (typically
  // checkUpstream() against the agent's publish_networks, kasm/agent/upstream_policy.hpp).
  using UpstreamCheck = std::function<Result<void>(std::string_view upstream)>;

  // Without `check_upstream`, every reported upstream is refused: a remote agent never chooses
  // where the proxy connects on its own say-so.
  explicit CommandAgentLink(UpstreamCheck check_upstream);

  Result<spi::ProvisionResult> provision(const spi::ProvisionRequest& request) override;
  Result<void> stop(const SessionId& session) override;
  Result<void> destroy(const SessionId& session) override;
  Result<void> pause(const SessionId& session) override;
  Result<void> resume(const SessionId& session) override;
  Result<spi::ExecResult> exec(const SessionId& session, const spi::ExecRequest& request) override;
  Result<std::vector<spi::AgentSessionView>> sessions() override;
  // Files travel base64 in the command and its result, so a transfer is held in memory on both
  // ends: the manager bounds their size.
  Result<void> putFile(const SessionId& session, const std::string& dir, const std::string& name,
                       std::string_view data) override;
  Result<std::string> getFile(const SessionId& session, const std::string& path, std::int64_t max_bytes) override;
  Result<std::vector<spi::FileEntry>> listFiles(const SessionId& session, const std::string& dir) override;
  Result<void> removeProfile(const std::string& profile) override;

 protected:
  // Sends one command and waits for the agent's result JSON ({"ok": ...}); Unavailable when it
  // did not come in time.
  virtual Result<std::string> call(std::string command_json, CommandPace pace) = 0;

 private:
  // A command on one session whose answer carries no value (stop, destroy, pause, resume).
  Result<void> sessionAction(std::string_view op, const SessionId& session);

  UpstreamCheck check_upstream_;
};

// Commands for an agent that long-polls this process. Each AgentLink call queues a command and
// blocks until the agent posts its result or `call_timeout` passes (`quick_timeout` for a quick
// command, see CommandPace; Unavailable: the agent did not answer; the manager then fails or
// retries as for any unreachable agent). Thread-safe.
class RemoteAgentLink final : public CommandAgentLink {
 public:
  // Long polls one agent may have waiting at once (an agent polls one at a time; a restart
  // overlaps two). More would let one agent hold the server's poll threads and starve the others
  // into being declared dead.
  static constexpr std::size_t kMaxWaitingPolls = 2;

  explicit RemoteAgentLink(Duration call_timeout = std::chrono::minutes(5), UpstreamCheck check_upstream = {},
                           Duration quick_timeout = std::chrono::seconds(60));
  ~RemoteAgentLink() override;

  // ---- for the server's agent endpoints ----
  // The next command, waiting up to `wait` (nullopt when none came). Commands whose caller gave
  // up meanwhile are skipped. ResourceExhausted at once when kMaxWaitingPolls calls already wait.
  // With the polling process's `boot_id`: once noteBoot() names another process, the poll ends at
  // once with nothing. That process was replaced (killed, most likely, with its poll still waiting
  // here): a command handed to it would be lost, and its caller held until the next restart or
  // call_timeout. Likewise a poll of the same process that a newer one replaced (the agent gave it
  // up).
  Result<std::optional<AgentCommand>> nextCommand(Duration wait, const std::string& boot_id = {});
  // The polling process `boot_id` lists the commands it holds (see AgentCommands::redeliver, the
  // same for the installation's queue): those handed to it that it does not list never arrived and
  // are queued again, first. Returns how many.
  int redeliver(const std::string& boot_id, const std::set<std::uint64_t>& received);
  // Counts a poll served elsewhere (the installation's command queue) against kMaxWaitingPolls
  // for as long as the returned guard lives; ResourceExhausted when the agent already holds them.
  Result<std::shared_ptr<void>> holdPoll();
  // Delivers the agent's answer to command `id` (the JSON executeCommand() returned). NotFound
  // when no call waits for it (timed out, or a replayed id).
  Result<void> complete(std::uint64_t id, std::string result_json);
  // Fails every waiting call and refuses new ones until reopen() (the agent was replaced or the
  // server stops).
  void close(std::string reason);
  void reopen();
  // The agent's process says who it is at every check-in and poll (a random id per start). A
  // different one than before means the agent restarted: the calls in flight and the commands it
  // had not fetched fail at once with Unavailable (their answers will never come), so the manager
  // retries them now instead of after call_timeout; the polls of the earlier process end (see
  // nextCommand()). An empty id changes nothing. True when the agent restarted (a known id
  // changed): the caller should reconcile it, since a container it was making may now belong to a
  // session that moved on.
  bool noteBoot(const std::string& boot_id);
  // The boot id noted last ("" before any).
  std::string bootId() const;
  // The last time the agent fetched commands (for "is anyone polling?").
  std::chrono::steady_clock::time_point lastPoll() const;

 protected:
  Result<std::string> call(std::string command_json, CommandPace pace) override;

 private:
  struct Pending {
    std::string command;
    bool handed = false;  // To a poll; cleared when queued again.
    std::optional<std::string> result;
    bool abandoned = false;
  };
  Duration call_timeout_;
  Duration quick_timeout_;
  std::size_t waiting_polls_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable commands_ready_;
  std::condition_variable results_ready_;
  std::deque<std::uint64_t> queue_;  // Ids of pending_ not handed over yet.
  std::map<std::uint64_t, std::shared_ptr<Pending>> pending_;
  std::uint64_t next_id_ = 0;
  std::uint64_t polls_ = 0;  // Polls that named their process; the latest is the live one.
  std::optional<std::string> closed_;
  std::string boot_id_;
  std::chrono::steady_clock::time_point last_poll_{};
};

// Agent side: runs one command on `local` (the agent's LocalAgent) and returns the result JSON
// ({"ok": true, "value": ...} or {"ok": false, "code": "not_found", "message": "..."}). Malformed
// commands get an invalid_argument result, never a crash.
std::string executeCommand(spi::AgentLink& local, std::string_view command_json);

// The result JSON of a command that failed with `e` without reaching the agent (as the agent
// itself reports a failure: {"ok": false, "code": ..., "message": ...}).
std::string commandErrorJson(const Error& e);

// A command id no other server process hands out: Unix milliseconds (`unix_ms`) in the high bits,
// so ids sort in the order they were made across servers and restarts, and 20 random bits below;
// always below 2^63, which the protocol's JSON number carries. An agent answers an id it has seen
// in the last minutes with the answer it gave then, so ids must never repeat.
std::uint64_t newCommandId(std::int64_t unix_ms);

}  // namespace kasm::agent
