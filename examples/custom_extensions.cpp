// Extending kasm by name: a custom ContainerRuntime and a custom PlacementPolicy registered in a
// spi::RuntimeRegistry and a spi::PolicyRegistry next to the built-ins, then chosen by name the way
// a configuration file would, and run under a real Manager with LocalAgents.
//
// The runtime, "loopback", runs no containers at all: each "container" is a loopback TCP listener
// that greets whoever connects, which is all the agent's readiness probe needs. The policy,
// "fill_to_three", packs up to three sessions on an agent before opening the next one.
//
// Run: kasm_custom_extensions [--policy NAME]. The test suite checks its output (ctest
// examples.custom_extensions): six sessions on two agents end up three and three, the first three
// on one agent.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <kasm/agent/local_agent.hpp>
#include <kasm/kasm.hpp>
#include <kasm/manager/manager.hpp>
#include <kasm/spi/registry.hpp>
#include <kasm/store/memory_store.hpp>
#include <kasm/store/repository.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace kasm;

// ---- the custom policy ----------------------------------------------------------------------------
class FillToThreePolicy final : public sched::PlacementPolicy {
 public:
  std::string_view name() const override { return "fill_to_three"; }
  // Higher is better: an agent with fewer than three sessions ranks above every other, fuller ones
  // first; past three, the emptiest agent wins.
  std::int64_t score(const sched::AgentLoad& load) const override {
    return load.session_count < 3 ? 1000 + load.session_count : -load.session_count;
  }
};

// ---- the custom runtime ---------------------------------------------------------------------------
// One "container": a listener on 127.0.0.1 and the thread that answers it.
class Greeter {
 public:
  static Result<std::unique_ptr<Greeter>> open(std::string greeting) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 16) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      if (fd >= 0) ::close(fd);
      return unavailable("loopback: cannot listen on 127.0.0.1");
    }
    return std::unique_ptr<Greeter>(new Greeter(fd, ntohs(a.sin_port), std::move(greeting)));
  }
  ~Greeter() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }

 private:
  Greeter(int fd, std::uint16_t port, std::string greeting) : fd_(fd), port_(port), greeting_(std::move(greeting)) {
    thread_ = std::thread([this] { serve(); });
  }
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      (void)!::write(c, greeting_.data(), greeting_.size());
      ::close(c);
    }
  }
  int fd_;
  std::uint16_t port_;
  std::string greeting_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class LoopbackRuntime final : public spi::ContainerRuntime {
 public:
  explicit LoopbackRuntime(Resources total) : total_(total) {}

  Result<spi::HostResources> hostResources() override { return spi::HostResources{total_, "loopback", "1"}; }

  Result<spi::ContainerInfo> createAndStart(const spi::ContainerSpec& spec) override {
    std::lock_guard lock(mu_);
    for (const auto& [id, c] : containers_) {
      if (c.info.name == spec.name) return alreadyExists("loopback: container name '" + spec.name + "' is in use");
    }
    KASM_ASSIGN_OR_RETURN(auto greeter, Greeter::open("hello from " + spec.name + "\n"));
    Container c;
    c.info.id = "loop-" + std::to_string(++next_id_);
    c.info.name = spec.name;
    c.info.image = spec.image;
    c.info.status = spi::ContainerStatus::kRunning;
    c.info.labels = spec.labels;
    c.info.published = "127.0.0.1:" + std::to_string(greeter->port());
    c.info.memory_bytes = spec.resources.memory_bytes;
    c.greeter = std::move(greeter);
    auto info = c.info;
    containers_.emplace(info.id, std::move(c));
    return info;
  }
  Result<spi::ContainerInfo> inspect(const std::string& id_or_name) override {
    std::lock_guard lock(mu_);
    KASM_ASSIGN_OR_RETURN(Container * c, find(id_or_name));
    return c->info;
  }
  Result<std::vector<spi::ContainerInfo>> list(const std::map<std::string, std::string>& labels) override {
    std::lock_guard lock(mu_);
    std::vector<spi::ContainerInfo> out;
    for (const auto& [id, c] : containers_) {
      bool match = true;
      for (const auto& [k, v] : labels) match = match && c.info.labels.count(k) && c.info.labels.at(k) == v;
      if (match) out.push_back(c.info);
    }
    return out;
  }
  Result<void> stop(const std::string& id, Duration) override { return setStatus(id, spi::ContainerStatus::kExited); }
  Result<void> start(const std::string& id) override { return setStatus(id, spi::ContainerStatus::kRunning); }
  Result<void> kill(const std::string& id) override { return setStatus(id, spi::ContainerStatus::kExited); }
  Result<void> pause(const std::string& id) override { return setStatus(id, spi::ContainerStatus::kPaused); }
  Result<void> unpause(const std::string& id) override { return setStatus(id, spi::ContainerStatus::kRunning); }
  Result<void> remove(const std::string& id) override {
    std::lock_guard lock(mu_);
    KASM_ASSIGN_OR_RETURN(Container * c, find(id));
    containers_.erase(c->info.id);
    return {};
  }
  Result<spi::ExecResult> exec(const std::string& id, const spi::ExecRequest& request) override {
    std::lock_guard lock(mu_);
    KASM_RETURN_IF_ERROR(find(id));
    std::string line;
    for (const auto& arg : request.command) line += (line.empty() ? "" : " ") + arg;
    return spi::ExecResult{0, "loopback ran: " + line + "\n"};
  }
  Result<std::vector<spi::ImageInfo>> listImages() override {
    return std::vector<spi::ImageInfo>{{"sha256:loopback", {"loopback/greeter:1"}, 0}};
  }
  Result<void> pullImage(const std::string&, const std::optional<spi::RegistryCredentials>&,
                         const std::function<void(const spi::PullProgress&)>&) override {
    return {};  // Every image is "present": nothing to download.
  }
  Result<void> removeImage(const std::string& reference) override {
    return failedPrecondition("loopback: image '" + reference + "' cannot be removed");
  }

 private:
  struct Container {
    spi::ContainerInfo info;
    std::unique_ptr<Greeter> greeter;
  };
  Result<Container*> find(const std::string& id_or_name) {
    for (auto& [id, c] : containers_) {
      if (id == id_or_name || c.info.name == id_or_name) return &c;
    }
    return notFound("loopback: no container '" + id_or_name + "'");
  }
  Result<void> setStatus(const std::string& id, spi::ContainerStatus status) {
    std::lock_guard lock(mu_);
    KASM_ASSIGN_OR_RETURN(Container * c, find(id));
    c->info.status = status;
    return {};
  }

  Resources total_;
  std::mutex mu_;
  std::map<std::string, Container> containers_;
  int next_id_ = 0;
};

template <class T>
T orDie(Result<T> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "custom_extensions: %s: %s\n", what, r.error().toString().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

void orDie(Result<void> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "custom_extensions: %s: %s\n", what, r.error().toString().c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string policy_name = "fill_to_three";
  if (argc == 3 && std::string(argv[1]) == "--policy") policy_name = argv[2];

  // Registration: built-ins plus ours, by name.
  spi::PolicyRegistry policies;
  spi::registerBuiltinPolicies(policies);
  orDie(policies.registerFactory(
            "fill_to_three",
            []() -> Result<std::unique_ptr<sched::PlacementPolicy>> { return std::make_unique<FillToThreePolicy>(); }),
        "register policy");
  spi::RuntimeRegistry runtimes;
  orDie(runtimes.registerFactory("loopback",
                                 [](const std::string& config) -> Result<std::unique_ptr<spi::ContainerRuntime>> {
                                   const double cores = config.empty() ? 4.0 : std::atof(config.c_str());
                                   if (cores <= 0) return invalidArgument("loopback: cores must be positive");
                                   return std::make_unique<LoopbackRuntime>(
                                       Resources::fromCores(cores, 8 * Resources::kGiB));
                                 }),
        "register runtime");
  std::string names;
  for (const auto& n : policies.names()) names += " " + n;
  std::printf("policies:%s\n", names.c_str());

  // Selection by name, as configuration would do it.
  std::shared_ptr<const sched::PlacementPolicy> policy = orDie(policies.create(policy_name), "policy");
  auto runtime = orDie(runtimes.create("loopback", "4"), "runtime");
  if (auto unknown = runtimes.create("no-such-runtime", ""); !unknown.ok()) {
    std::printf("unknown runtime: %s\n", std::string(errorCodeName(unknown.error().code())).c_str());
  }

  SystemClock clock;
  SeededRandom random(7);
  auto store = makeMemoryStore();
  ManagerOptions options;
  options.placement_policy_for = [policy](const Zone&) { return policy; };
  options.license = license::LicensePolicy::unlimited();
  Manager manager(*store, clock, random, options);
  orDie(manager.start(), "start");
  Zone zone;
  zone.id = ZoneId("local");
  zone.name = "Local";
  orDie(manager.upsertZone(zone), "zone");
  Workspace greeter;
  greeter.id = WorkspaceId("greeter");
  greeter.friendly_name = "Greeter";
  greeter.image = "loopback/greeter:1";
  greeter.port = 7000;
  greeter.protocol = SessionProtocol::kHttp;
  greeter.resources = Resources::fromCores(0.5, 256 * Resources::kMiB);
  orDie(manager.upsertWorkspace(greeter), "workspace");
  // One user per session: the default group allows each user one session at a time.
  for (int i = 0; i < 6; ++i) {
    User u;
    u.id = UserId("user" + std::to_string(i));
    u.username = u.id.str();
    orDie(Repository(*store).insert(u), "user");
  }

  std::vector<std::shared_ptr<agent::LocalAgent>> links;
  for (const char* id : {"agent-a", "agent-b"}) {
    Agent a;
    a.id = AgentId(id);
    a.hostname = id;
    a.zone_id = zone.id;
    auto reg = orDie(manager.registerAgent(a), "register agent");
    auto link = std::make_shared<agent::LocalAgent>(*runtime, clock, agent::LocalAgentOptions{.agent_id = a.id});
    manager.attachAgentLink(a.id, link);
    auto report = orDie(link->checkIn(), "check-in");
    orDie(manager.checkIn({.agent_id = a.id, .token = reg.token, .reported = report.capacity, .images = report.images}),
          "check-in");
    links.push_back(link);
  }

  std::map<std::string, int> per_agent;
  std::string order;
  std::vector<SessionId> sessions;
  for (int i = 0; i < 6; ++i) {
    auto s = orDie(manager.requestSession({UserId("user" + std::to_string(i)), greeter.id, zone.id, {}}), "request");
    per_agent[s.agent_id->str()]++;
    order += (order.empty() ? "" : " ") + s.agent_id->str();
    sessions.push_back(s.id);
  }
  const auto exec = orDie(manager.execInSession(sessions.front(), {{"uptime"}, "", "", {}, false}), "exec");
  std::printf("policy: %s\n", std::string(policy->name()).c_str());
  std::printf("placements: %s\n", order.c_str());
  std::printf("sessions per agent: %d %d\n", per_agent["agent-a"], per_agent["agent-b"]);
  std::printf("exec: %s", exec.output.c_str());
  for (const auto& id : sessions) orDie(manager.destroySession(id), "destroy");
  std::printf("containers left: %zu\n", orDie(runtime->list({}), "list").size());
  return 0;
}
