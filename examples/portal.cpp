// A minimal portal that embeds the manager: one workspace, an in-process Docker agent, and Kasm's
// developer API (POST /api/public/<verb>) on kasm::net::HttpServer. An existing Kasm API client can
// launch the workspace with request_kasm and poll get_kasm_status.
//
// Run: kasm_portal [--image IMAGE] [--port PORT] [--run-for SECONDS] [--no-docker]
// It prints its URL and a freshly made admin API key, then serves until SIGINT/SIGTERM, or for
// --run-for seconds (how the test suite runs it: examples/tests/portal_test.py).

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <kasm/agent/local_agent.hpp>
#include <kasm/api/developer_api.hpp>
#include <kasm/auth/access_token.hpp>
#include <kasm/auth/secret.hpp>
#include <kasm/docker/docker_runtime.hpp>
#include <kasm/kasm.hpp>
#include <kasm/manager/manager.hpp>
#include <kasm/net/http_server.hpp>
#include <kasm/store/memory_store.hpp>
#include <kasm/store/repository.hpp>
#include <string>
#include <thread>

namespace {

std::atomic<bool> stop_requested{false};

template <class T>
T orDie(kasm::Result<T> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "portal: %s: %s\n", what, r.error().toString().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

void orDie(kasm::Result<void> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "portal: %s: %s\n", what, r.error().toString().c_str());
    std::exit(1);
  }
}

struct Flags {
  std::string image = "kasm-test/busybox:1";
  int port = 0;
  int run_for_seconds = 0;  // 0 = until a signal.
  bool docker = true;
};

Flags parseFlags(int argc, char** argv) {
  Flags f;
  if (const char* env = std::getenv("KASM_TEST_IMAGE"); env && *env) f.image = env;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "portal: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--image") {
      f.image = next();
    } else if (a == "--port") {
      f.port = std::atoi(next().c_str());
    } else if (a == "--run-for") {
      f.run_for_seconds = std::atoi(next().c_str());
    } else if (a == "--no-docker") {
      f.docker = false;
    } else {
      std::fprintf(stderr, "usage: kasm_portal [--image IMAGE] [--port PORT] [--run-for SECONDS] [--no-docker]\n");
      std::exit(2);
    }
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kasm;
  const Flags flags = parseFlags(argc, argv);
  std::signal(SIGINT, [](int) { stop_requested = true; });
  std::signal(SIGTERM, [](int) { stop_requested = true; });

  SystemClock clock;
  SeededRandom random;
  auto store = makeMemoryStore();
  Repository repo(*store);
  Manager manager(*store, clock, random);
  orDie(manager.start(), "start");

  Zone zone;
  zone.id = ZoneId("local");
  zone.name = "Local";
  orDie(manager.upsertZone(zone), "zone");
  Workspace web;
  web.id = WorkspaceId("web");
  web.friendly_name = "Web";
  web.image = flags.image;
  web.port = 8080;
  web.protocol = SessionProtocol::kHttp;
  web.resources = Resources::fromCores(0.5, 64 * Resources::kMiB);
  orDie(manager.upsertWorkspace(web), "workspace");
  User alice;
  alice.id = UserId("alice");
  alice.username = "alice";
  orDie(repo.insert(alice), "user");

  // The in-process agent, as kasm-server runs it: a LocalAgent over the Docker runtime.
  std::unique_ptr<spi::ContainerRuntime> runtime;
  std::shared_ptr<agent::LocalAgent> local;
  if (flags.docker) {
    auto opened = docker::openDockerRuntime(docker::DockerOptions::fromEnvironment());
    if (!opened.ok()) {
      std::printf("portal: no Docker engine (%s); sessions cannot start\n", opened.error().toString().c_str());
    } else {
      runtime = std::move(opened).value();
      Agent a;
      a.hostname = "localhost";
      a.zone_id = zone.id;
      auto reg = orDie(manager.registerAgent(a), "agent");
      local = std::make_shared<agent::LocalAgent>(*runtime, clock, agent::LocalAgentOptions{.agent_id = reg.agent.id});
      manager.attachAgentLink(reg.agent.id, local);
      auto report = orDie(local->checkIn(), "check-in");
      orDie(manager.checkIn(
                {.agent_id = reg.agent.id, .token = reg.token, .reported = report.capacity, .images = report.images}),
            "check-in");
    }
  }

  // An admin API key for the developer API; the secret is printed once, the store keeps its hash.
  const std::string secret = auth::generateToken();
  ApiKey key;
  key.id = ApiKeyId::generate();
  key.name = "portal";
  key.key = auth::generateToken(8);
  key.secret_hash = auth::hashSecret(secret);
  key.permissions = {std::string(permissions::kAdmin)};
  key.created_at = clock.now();
  orDie(repo.insert(key), "api key");

  auto signer = orDie(auth::AccessTokenSigner::create(auth::generateToken(), clock), "signer");
  api::DeveloperApi developer_api(manager, *store, clock, signer);

  net::HttpServerOptions options;
  options.port = static_cast<std::uint16_t>(flags.port);
  options.handler_threads = 4;  // request_kasm blocks until the container answers.
  auto server =
      orDie(net::HttpServer::start(options,
                                   [&](net::HttpRequest req, net::Responder respond) {
                                     constexpr std::string_view kPublic = "/api/public/";
                                     if (req.method == "POST" && req.path.rfind(kPublic, 0) == 0) {
                                       auto auth = req.headers.find("authorization");
                                       auto r = developer_api.handle(req.path.substr(kPublic.size()), req.body,
                                                                     auth.value_or(""));
                                       return respond(net::HttpResponse::json(r.status, std::move(r.body)));
                                     }
                                     respond(net::HttpResponse::text(200, "kasm portal: POST /api/public/<verb>\n"));
                                   }),
            "listen");
  std::printf("portal: listening %s\n", server->baseUrl().c_str());
  std::printf("portal: api_key=%s api_key_secret=%s\n", key.key.c_str(), secret.c_str());
  std::fflush(stdout);

  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(flags.run_for_seconds);
  while (!stop_requested && (flags.run_for_seconds == 0 || std::chrono::steady_clock::now() < until)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (void)manager.tick();
  }
  server->stop(std::chrono::seconds(5));
  // Sessions end with the portal: remove their containers.
  for (const auto& s : orDie(manager.listSessions(spi::Query().whereIn("state", {"running", "paused"})), "list")) {
    (void)manager.destroySession(s.id, "portal stopped");
  }
  std::printf("portal: stopped\n");
  return 0;
}
