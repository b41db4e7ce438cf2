// Quick start: open the embedded store in a data directory, define a zone, an agent and a
// workspace, and walk a session through its life. Run: kasm_quickstart [DATA_DIR]

#include <cstdio>
#include <kasm/kasm.hpp>
#include <kasm/store/sqlite_store.hpp>
#include <string>

namespace {

template <class T>
T orDie(kasm::Result<T> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, r.error().toString().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

void orDie(kasm::Result<void> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, r.error().toString().c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string data_dir = argc > 1 ? argv[1] : "./kasm-data";
  kasm::SystemClock clock;
  auto store = orDie(kasm::openSqliteStore({.path = data_dir + "/kasm.db"}), "open store");
  kasm::Repository repo(*store);
  std::printf("kasm %s, store %s (schema %d) in %s\n", std::string(kasm::version()).c_str(),
              std::string(store->backendName()).c_str(), store->schemaVersion(), data_dir.c_str());

  kasm::Zone zone;
  zone.id = kasm::ZoneId::generate();
  zone.name = "default-" + zone.id.str().substr(0, 6);
  zone.created_at = clock.now();
  orDie(repo.insert(zone), "create zone");

  kasm::Agent agent;
  agent.id = kasm::AgentId::generate();
  agent.hostname = "localhost";
  agent.zone_id = zone.id;
  agent.reported = kasm::Resources::fromCores(4, 8 * kasm::Resources::kGiB);
  agent.registered_at = clock.now();
  orDie(repo.insert(agent), "register agent");

  kasm::Workspace ws;
  ws.id = kasm::WorkspaceId::generate();
  ws.friendly_name = "Desktop";
  ws.image = "kasm/desktop:latest";
  ws.resources = kasm::Resources::fromCores(1, 2 * kasm::Resources::kGiB);
  ws.created_at = clock.now();
  orDie(repo.insert(ws), "create workspace");

  kasm::Session s;
  s.id = kasm::SessionId::generate();
  s.user_id = kasm::UserId("demo");
  s.workspace_id = ws.id;
  s.zone_id = zone.id;
  s.agent_id = agent.id;
  s.resources = ws.resources;
  s.created_at = clock.now();
  orDie(s.transitionTo(kasm::SessionState::kProvisioning, "placed on " + agent.hostname, clock.now()), "provision");
  auto version = orDie(repo.insert(s), "create session");
  orDie(s.transitionTo(kasm::SessionState::kRunning, "container ready", clock.now()), "run");
  version = orDie(repo.update(s, version), "update session");

  // A stale write (version 1 again) loses: two managers cannot both move the same session.
  auto stale = repo.update(s, 1);
  std::printf("session %s is %s (version %lld); a stale write gets: %s\n", s.id.str().c_str(),
              std::string(kasm::enumName(s.state)).c_str(), static_cast<long long>(version),
              stale.ok() ? "ok?!" : stale.error().toString().c_str());

  auto running = orDie(repo.count<kasm::Session>(kasm::spi::Query().where("state", "running")), "count");
  std::printf("%lld running session(s) in the store\n", static_cast<long long>(running));
  return 0;
}
