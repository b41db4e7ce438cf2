#pragma once

// An in-memory AgentLink for unit tests of the manager: containers are map entries.

#include <functional>
#include <map>
#include <mutex>

#include "kasm/manager/manager.hpp"
#include "kasm/spi/agent_link.hpp"

namespace kasm::testing {

class FakeAgentLink final : public spi::AgentLink {
 public:
  struct Container {
    std::string id;
    spi::ContainerStatus status = spi::ContainerStatus::kRunning;
    Workspace workspace;
    std::string upstream;                            // Like Docker, a new host port on every start.
    std::map<std::string, std::string> environment;  // As given when the container was created.
  };

  Result<spi::ProvisionResult> provision(const spi::ProvisionRequest& r) override {
    std::lock_guard lock(mu_);
    ++provision_calls;
    events.push_back("provision " + r.session_id.str());
    if (fail_provision) return unavailable("fake agent refuses: " + fail_reason);
    auto it = containers.find(r.session_id.str());
    if (it == containers.end()) {
      it = containers
               .emplace(r.session_id.str(), Container{"c-" + r.session_id.str(), spi::ContainerStatus::kRunning,
                                                      r.workspace, nextUpstream(), r.environment})
               .first;
    } else if (it->second.status != spi::ContainerStatus::kRunning) {
      // Provision revives a stopped or paused container; a stopped one gets a new port.
      if (it->second.status == spi::ContainerStatus::kExited) it->second.upstream = nextUpstream();
      it->second.status = spi::ContainerStatus::kRunning;
    }
    return spi::ProvisionResult{it->second.id, "kasm-" + r.session_id.str(), it->second.upstream};
  }
  Result<void> stop(const SessionId& s) override { return setStatus(s, spi::ContainerStatus::kExited); }
  Result<void> destroy(const SessionId& s) override {
    std::lock_guard lock(mu_);
    if (on_destroy) on_destroy();
    if (unreachable) return unavailable("fake agent unreachable");
    ++destroy_calls;
    containers.erase(s.str());
    return {};
  }
  Result<void> pause(const SessionId& s) override { return setStatus(s, spi::ContainerStatus::kPaused); }
  Result<void> resume(const SessionId& s) override {
    std::lock_guard lock(mu_);
    if (unreachable) return unavailable("fake agent unreachable");
    auto it = containers.find(s.str());
    if (it != containers.end() && it->second.status == spi::ContainerStatus::kExited)
      it->second.upstream = nextUpstream();
    if (it != containers.end()) it->second.status = spi::ContainerStatus::kRunning;
    return it == containers.end() ? Result<void>(notFound("no container for " + s.str())) : Result<void>();
  }
  std::string upstreamOf(const SessionId& s) {
    std::lock_guard lock(mu_);
    auto it = containers.find(s.str());
    return it == containers.end() ? std::string() : it->second.upstream;
  }
  std::map<std::string, std::string> environmentOf(const SessionId& s) {
    std::lock_guard lock(mu_);
    auto it = containers.find(s.str());
    return it == containers.end() ? std::map<std::string, std::string>() : it->second.environment;
  }
  Result<spi::ExecResult> exec(const SessionId& s, const spi::ExecRequest& r) override {
    std::lock_guard lock(mu_);
    if (!containers.count(s.str())) return notFound("no container for " + s.str());
    execs.push_back(r.command.back());
    return spi::ExecResult{0, "ran: " + r.command.back()};
  }
  Result<std::vector<spi::AgentSessionView>> sessions() override {
    std::lock_guard lock(mu_);
    if (unreachable) return unavailable("fake agent unreachable");
    std::vector<spi::AgentSessionView> out;
    for (const auto& [id, c] : containers) out.push_back({SessionId(id), c.id, c.status});
    return out;
  }

  // Records the call (in `removed_profiles` and `events`); fails with `fail_remove_profile` when set.
  Result<void> removeProfile(const std::string& profile) override {
    std::lock_guard lock(mu_);
    events.push_back("remove_profile " + profile);
    if (!fail_remove_profile.empty()) return internalError(fail_remove_profile);
    removed_profiles.push_back(profile);
    return {};
  }

  std::size_t count() {
    std::lock_guard lock(mu_);
    return containers.size();
  }
  bool has(const SessionId& s) {
    std::lock_guard lock(mu_);
    return containers.count(s.str()) > 0;
  }
  std::optional<spi::ContainerStatus> status(const SessionId& s) {
    std::lock_guard lock(mu_);
    auto it = containers.find(s.str());
    if (it == containers.end()) return std::nullopt;
    return it->second.status;
  }

  std::map<std::string, Container> containers;
  std::vector<std::string> execs;
  bool fail_provision = false;
  bool unreachable = false;
  std::string fail_reason = "out of disk";
  int provision_calls = 0;
  int destroy_calls = 0;
  std::function<void()> on_destroy;           // Called first in every destroy() (say, to let time pass).
  std::vector<std::string> removed_profiles;  // Profiles removeProfile() removed, in order.
  std::string fail_remove_profile;            // When set, removeProfile() fails with this message.
  std::vector<std::string> events;            // "provision <session>", "remove_profile <profile>".

 private:
  std::string nextUpstream() { return "127.0.0.1:" + std::to_string(40000 + next_port_++); }
  int next_port_ = 1;

  Result<void> setStatus(const SessionId& s, spi::ContainerStatus st) {
    std::lock_guard lock(mu_);
    if (unreachable) return unavailable("fake agent unreachable");
    auto it = containers.find(s.str());
    if (it == containers.end()) return notFound("no container for " + s.str());
    it->second.status = st;
    return {};
  }
  std::mutex mu_;
};

// Registers agent `id` (hostname `id`) in `zone`, attaches `link` and checks it in with `capacity`
// and `images`: an agent ready to take sessions. Empty when it worked, else what failed.
inline std::string connectFakeAgent(Manager& manager, const std::shared_ptr<FakeAgentLink>& link, const std::string& id,
                                    const ZoneId& zone, Resources capacity, std::vector<std::string> images) {
  Agent a;
  a.id = AgentId(id);
  a.hostname = id;
  a.zone_id = zone;
  auto reg = manager.registerAgent(a);
  if (!reg.ok()) return reg.error().toString();
  manager.attachAgentLink(a.id, link);
  AgentCheckIn c;
  c.agent_id = a.id;
  c.token = reg->token;
  c.reported = capacity;
  c.images = std::move(images);
  auto in = manager.checkIn(c);
  return in.ok() ? std::string() : in.error().toString();
}

}  // namespace kasm::testing
