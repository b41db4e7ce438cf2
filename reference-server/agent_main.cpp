// kasm-agent: runs sessions on this Docker host for a kasm-server elsewhere.
//
// It dials out (HTTPS to the server; nothing listens here), which works behind NAT and firewalls
// that allow outbound connections only: check-ins every few seconds, and a long poll that receives
// the manager's commands (provision, stop, destroy, exec, ...) and posts their results. Session
// ports are published on --publish-host, which the server's proxy must reach; or, with --tunnel,
// which only this agent reaches: the proxy's traffic then rides one WebSocket this agent keeps open
// to the installation (a reverse tunnel, kasm/tunnel), for agents behind NAT.
//
//   kasm-agent --server https://manager:8443 --agent-id ID --token TOKEN
//              [--publish-host ADDR] [--tunnel] [--ca-file PEM | --insecure] [--checkin-seconds N]
// The token comes from `POST /api/v1/agents` (shown once); KASM_AGENT_TOKEN may carry it instead.

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "image_puller.hpp"
#include "kasm/agent/local_agent.hpp"
#include "kasm/agent/remote_link.hpp"
#include "kasm/docker/docker_runtime.hpp"
#include "kasm/model/json.hpp"
#include "kasm/tunnel/tunnel_client.hpp"
#include "kasm/version.hpp"

namespace {

namespace json = boost::json;
using namespace kasm;

std::atomic<bool> g_stop{false};

void onSignal(int) {
  g_stop.store(true);
}

void logLine(const std::string& event, const std::string& detail) {
  json::object o{{"event", event}, {"detail", detail}};
  std::printf("%s\n", json::serialize(o).c_str());
  std::fflush(stdout);
}

struct Config {
  std::string server;
  std::string agent_id;
  std::string token;
  std::string token_file;  // Where a lasting token is kept (--token-file).
  std::string publish_host = "127.0.0.1";
  std::string ca_file;
  bool insecure = false;
  bool tunnel = false;  // --tunnel: session traffic through a reverse tunnel.
  int checkin_seconds = 5;
};

struct Reply {
  long status = 0;
  std::string body;
  std::string error;
};

// Aborts transfers (including a long poll) as soon as the agent is asked to stop.
int abortOnStop(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return g_stop.load() ? 1 : 0;
}

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One POST of a JSON body; each call has its own easy handle (called from several threads).
Reply post(const Config& c, const std::string& path, const std::string& body, long timeout_seconds) {
  Reply r;
  CURL* h = curl_easy_init();
  if (!h) {
    r.error = "curl_easy_init failed";
    return r;
  }
  const std::string url = c.server + path;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_seconds);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, abortOnStop);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  if (!c.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, c.ca_file.c_str());
  if (c.insecure) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    r.error = curl_easy_strerror(rc);
  } else {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return r;
}

std::string usage() {
  return "usage: kasm-agent --server URL --agent-id ID --token TOKEN [--token-file PATH] [--publish-host ADDR]\n"
         "                  [--tunnel] [--ca-file PEM | --insecure] [--checkin-seconds N]\n"
         "With --tunnel, the server's proxy reaches this agent's sessions through a WebSocket the agent keeps\n"
         "open to the server (for agents behind NAT); the agent connects only to its own sessions' ports.\n"
         "The token may also come from KASM_AGENT_TOKEN. With --token-file, a token stored there is used\n"
         "instead, and a single-use registration token (an autoscaled machine's) is exchanged at the first\n"
         "check-in for a lasting one, written there (mode 0600) for the next start.\n";
}

Result<Config> parse(int argc, char** argv) {
  Config c;
  if (const char* t = std::getenv("KASM_AGENT_TOKEN")) c.token = t;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= argc) return invalidArgument(a + " needs a value");
      return std::string(argv[++i]);
    };
    if (a == "--server") {
      KASM_ASSIGN_OR_RETURN(c.server, value());
    } else if (a == "--agent-id") {
      KASM_ASSIGN_OR_RETURN(c.agent_id, value());
    } else if (a == "--token") {
      KASM_ASSIGN_OR_RETURN(c.token, value());
    } else if (a == "--token-file") {
      KASM_ASSIGN_OR_RETURN(c.token_file, value());
    } else if (a == "--publish-host") {
      KASM_ASSIGN_OR_RETURN(c.publish_host, value());
    } else if (a == "--ca-file") {
      KASM_ASSIGN_OR_RETURN(c.ca_file, value());
    } else if (a == "--insecure") {
      c.insecure = true;
    } else if (a == "--tunnel") {
      c.tunnel = true;
    } else if (a == "--checkin-seconds") {
      KASM_ASSIGN_OR_RETURN(std::string n, value());
      c.checkin_seconds = std::max(1, std::atoi(n.c_str()));
    } else if (a == "--help" || a == "-h") {
      return failedPrecondition(usage());
    } else {
      return invalidArgument("unknown option '" + a + "'\n" + usage());
    }
  }
  if (!c.token_file.empty()) {
    std::ifstream in(c.token_file);
    std::string stored;
    if (in && std::getline(in, stored) && !stored.empty()) c.token = stored;
  }
  if (c.server.empty() || c.agent_id.empty() || c.token.empty()) {
    return invalidArgument("--server, --agent-id and --token are required\n" + usage());
  }
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
  return c;
}

// Who this process is: a new id at every start, so the server fails the commands a killed
// process took with it at once instead of waiting for their answers.
const std::string& bootId() {
  static const std::string id = generateIdString();
  return id;
}

// The token in use: the configured one until the server exchanges a registration token.
std::mutex g_token_mu;
std::string g_token;

std::string currentToken(const Config& c) {
  std::lock_guard lock(g_token_mu);
  return g_token.empty() ? c.token : g_token;
}

// Adopts the lasting token the server issued for a registration token, and keeps it in the token
// file (written beside it and renamed, mode 0600) so that the next start uses it.
void adoptToken(const Config& c, const std::string& token) {
  {
    std::lock_guard lock(g_token_mu);
    g_token = token;
  }
  if (c.token_file.empty()) {
    logLine("token_exchanged", "not kept: no --token-file, a restart cannot check in again");
    return;
  }
  const std::string tmp = c.token_file + ".new";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0;
  if (ok) {
    const std::string line = token + "\n";
    ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
    ok = ::close(fd) == 0 && ok;
  }
  ok = ok && ::rename(tmp.c_str(), c.token_file.c_str()) == 0;
  logLine(ok ? "token_exchanged" : "token_file_failed", c.token_file);
}

json::object credentials(const Config& c) {
  return json::object{{"agent_id", c.agent_id}, {"token", currentToken(c)}, {"boot_id", bootId()}};
}

void checkIn(const Config& c, agent::LocalAgent& local, server::ImagePuller* puller) {
  auto report = local.checkIn();
  if (!report.ok()) {
    logLine("checkin_failed", report.error().toString());
    return;
  }
  json::object body = credentials(c);
  body["reported"] = json::parse(toJson(report->capacity));
  json::array images;
  for (const auto& i : report->images) images.emplace_back(i);
  body["images"] = std::move(images);
  body["cpu_utilization"] = report->cpu_utilization;
  body["memory_used_bytes"] = report->memory_used_bytes;
  body["agent_version"] = std::string("kasm-agent ") + std::string(kasm::version());
  auto r = post(c, "/api/agent/v1/checkin", json::serialize(body), 30);
  if (!r.error.empty() || r.status != 200) {
    logLine("checkin_failed", r.error.empty() ? "HTTP " + std::to_string(r.status) + ": " + r.body : r.error);
    return;
  }
  // The answer names the images this host should keep pulled, and a lasting token when this one
  // was a registration token.
  boost::system::error_code ec;
  auto answer = json::parse(r.body, ec);
  if (!ec && answer.is_object()) {
    if (const auto* t = answer.as_object().if_contains("agent_token"); t && t->is_string() && !t->as_string().empty()) {
      adoptToken(c, std::string(t->as_string()));
    }
  }
  const json::value* wanted = !ec && answer.is_object() ? answer.as_object().if_contains("images") : nullptr;
  if (puller && wanted && wanted->is_array()) {
    std::vector<std::string> images;
    for (const auto& i : wanted->as_array()) {
      if (i.is_string() && i.as_string().size() <= 512) images.emplace_back(i.as_string());
    }
    std::sort(images.begin(), images.end());
    puller->setDesired(std::move(images));
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto config = parse(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.error().message().c_str());
    return config.error().code() == ErrorCode::kFailedPrecondition ? 0 : 2;
  }
  const Config c = *config;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  signal(SIGTERM, onSignal);
  signal(SIGINT, onSignal);
  signal(SIGPIPE, SIG_IGN);

  auto runtime = docker::openDockerRuntime(docker::DockerOptions::fromEnvironment());
  if (!runtime.ok()) {
    std::fprintf(stderr, "kasm-agent: no Docker engine: %s\n", runtime.error().toString().c_str());
    return 1;
  }
  auto id = AgentId::parse(c.agent_id, "--agent-id");
  if (!id.ok()) {
    std::fprintf(stderr, "kasm-agent: %s\n", id.error().message().c_str());
    return 2;
  }
  SystemClock clock;
  agent::LocalAgentOptions options;
  options.agent_id = *id;
  options.publish_host = c.publish_host;
  agent::LocalAgent local(**runtime, clock, options);
  logLine("starting", c.server + " as agent " + c.agent_id);

  // Image pulls on a connection of their own (one can take minutes).
  std::unique_ptr<server::ImagePuller> puller;
  if (auto pull_runtime = docker::openDockerRuntime(docker::DockerOptions::fromEnvironment()); pull_runtime.ok()) {
    puller = std::make_unique<server::ImagePuller>(std::shared_ptr<spi::ContainerRuntime>(std::move(*pull_runtime)),
                                                   [](const std::string& e, const std::string& d) { logLine(e, d); });
  }
  // The first check-in comes before the first poll: a registration token is exchanged there, and
  // only the lasting token may poll.
  checkIn(c, local, puller.get());
  std::thread checkins([&] {
    while (!g_stop.load()) {
      for (int i = 0; i < c.checkin_seconds * 10 && !g_stop.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (g_stop.load()) break;
      checkIn(c, local, puller.get());
    }
  });

  // The reverse tunnel: the server asks for connections to this agent's sessions, and only to the
  // addresses its own containers are published on.
  std::unique_ptr<tunnel::TunnelClient> tunnel_client;
  if (c.tunnel) {
    tunnel::TunnelClientOptions to;
    to.server = c.server;
    to.agent = *id;
    to.token = [&c] { return currentToken(c); };
    to.boot_id = bootId();
    to.ca_file = c.ca_file;
    to.insecure = c.insecure;
    // The published ports are listed from the engine at most every 2 s while viewers connect (a
    // desktop opens several streams at once); a target not in the list reads it again at once, so
    // a session started a moment ago is reached without waiting.
    struct Published {
      std::mutex mu;
      std::vector<std::string> addresses;
      std::chrono::steady_clock::time_point read{};
    };
    auto published = std::make_shared<Published>();
    to.allow = [&local, published](std::string_view target) -> Result<void> {
      std::lock_guard lock(published->mu);
      const auto now = std::chrono::steady_clock::now();
      auto listed = [&] {
        return std::find(published->addresses.begin(), published->addresses.end(), target) !=
               published->addresses.end();
      };
      if (now - published->read < std::chrono::seconds(2) && listed()) return {};
      KASM_ASSIGN_OR_RETURN(published->addresses, local.publishedAddresses());
      published->read = now;
      if (listed()) return {};
      return permissionDenied(std::string(target) + " is not a published port of this agent's sessions");
    };
    to.log = [](std::string_view e, std::string_view d) { logLine(std::string(e), std::string(d)); };
    auto started = tunnel::TunnelClient::start(std::move(to));
    if (!started.ok()) {
      std::fprintf(stderr, "kasm-agent: %s\n", started.error().message().c_str());
      return 2;
    }
    tunnel_client = std::move(*started);
  }

  // Commands run concurrently (a slow image pull must not hold up a destroy); finished workers are
  // joined as new ones start.
  std::mutex workers_mutex;
  std::list<std::pair<std::thread, std::shared_ptr<std::atomic<bool>>>> workers;
  auto reap = [&](bool all) {
    std::lock_guard lock(workers_mutex);
    for (auto it = workers.begin(); it != workers.end();) {
      if (all || it->second->load()) {
        it->first.join();
        it = workers.erase(it);
      } else {
        ++it;
      }
    }
  };
  // A command may come twice (a server handed it over, then died before we could have answered it,
  // and another server hands it over again): each id runs once; a repeat of one that finished
  // gets its result again. Ids seen in the last 10 minutes are remembered.
  struct Seen {
    bool done = false;
    bool kept = false;      // `result` holds the answer (a large one, a file, is read again).
    bool answered = false;  // A server took the answer (or we gave up posting it).
    json::value id;
    std::string result;
    std::chrono::steady_clock::time_point at;
  };
  std::mutex seen_mutex;
  std::map<std::string, Seen> seen;
  // Marks a command's answer as taken: it is no longer listed as held in the polls.
  auto answered = [&](const std::string& key) {
    std::lock_guard lock(seen_mutex);
    if (auto it = seen.find(key); it != seen.end()) it->second.answered = true;
  };
  auto postResult = [&c](const json::value& cid, const std::string& result) {
    json::object body = credentials(c);
    body["id"] = cid;
    body["result"] = result;
    // The server may be away for a moment (a restart, a balancer moving us to another): retry for
    // a minute. 404 means nobody waits for it any more.
    for (int attempt = 0; attempt < 12 && !g_stop.load(); ++attempt) {
      auto sent = post(c, "/api/agent/v1/result", json::serialize(body), 30);
      if (sent.error.empty() && (sent.status == 200 || sent.status == 404)) return;
      logLine("result_failed", sent.error.empty() ? "HTTP " + std::to_string(sent.status) : sent.error);
      for (int i = 0; i < 50 && !g_stop.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  };
  int failures = 0;
  while (!g_stop.load()) {
    reap(false);
    // The commands this process holds (running, or answered without a server having taken the
    // answer yet): one the server handed over that is not listed never arrived, and is sent again.
    json::object poll = credentials(c);
    {
      json::array held;
      std::lock_guard lock(seen_mutex);
      for (const auto& [key, s] : seen) {
        if (!s.answered) held.push_back(s.id);
      }
      poll["received"] = std::move(held);
    }
    const auto polled = std::chrono::steady_clock::now();
    auto r = post(c, "/api/agent/v1/poll", json::serialize(poll), 40);
    if (!r.error.empty() || (r.status != 200 && r.status != 204)) {
      if (failures++ % 10 == 0) {
        logLine("poll_failed", r.error.empty() ? "HTTP " + std::to_string(r.status) + ": " + r.body : r.error);
      }
      // A poll that had waited on the server a while ended because that server went away just now
      // (a restart): try again at once, as a new one may already listen. Polls that fail at once
      // back off up to 5 s while the server is away; check-ins report us as soon as it is back.
      if (std::chrono::steady_clock::now() - polled >= std::chrono::seconds(1)) failures = 1;
      const int wait_ms = std::min(5000, 200 * failures);
      for (int i = 0; i < wait_ms / 100 && !g_stop.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    failures = 0;
    if (r.status == 204) continue;
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (ec || !v.is_object() || !v.as_object().contains("id") || !v.as_object().at("command").is_string()) {
      logLine("bad_command", r.body.substr(0, 200));
      continue;
    }
    const auto cid = v.as_object().at("id");
    const std::string command(v.as_object().at("command").as_string());
    const std::string key = json::serialize(cid);
    std::optional<std::string> repeat;
    {
      std::lock_guard lock(seen_mutex);
      const auto now = std::chrono::steady_clock::now();
      std::erase_if(seen, [&](const auto& e) { return e.second.done && now - e.second.at > std::chrono::minutes(10); });
      auto [it, fresh] = seen.try_emplace(key, Seen{.id = cid, .at = now});
      if (!fresh) {
        logLine("command_repeated", key + (it->second.done ? ": answered again" : ": still running"));
        if (!it->second.done) continue;
        it->second.answered = false;
        if (it->second.kept) {
          repeat = it->second.result;
        } else {
          it->second.done = false;  // Its answer was not kept: run it again.
        }
      }
    }
    // Each command in the log, with its outcome and time: what an agent did is otherwise invisible.
    std::string op = "?";
    if (const auto at = command.find(R"("op":")"); at != std::string::npos) {
      const auto end = command.find('"', at + 6);
      if (end != std::string::npos && end - at - 6 <= 32) op = command.substr(at + 6, end - at - 6);
    }
    if (!repeat) logLine("command", key + " " + op);
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::lock_guard lock(workers_mutex);
    workers.emplace_back(
        std::thread([&, cid, key, op, command, repeat, done] {
          const auto began = std::chrono::steady_clock::now();
          std::string result = repeat ? *repeat : agent::executeCommand(local, command);
          if (!repeat) {
            const auto ms =
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began).count();
            logLine("command_done", key + " " + op + (result.starts_with(R"({"ok":true)") ? " ok " : " failed ") +
                                        std::to_string(ms) + " ms");
            // A large answer (a file) is not kept: a repeat reads it again.
            std::lock_guard lock(seen_mutex);
            Seen& s = seen[key];
            s.done = true;
            s.kept = result.size() <= 1024 * 1024;
            s.result = s.kept ? result : std::string();
            s.at = std::chrono::steady_clock::now();
          }
          postResult(cid, result);
          answered(key);
          done->store(true);
        }),
        done);
  }
  logLine("stopping", "");
  if (tunnel_client) tunnel_client->stop();
  checkins.join();
  if (puller) puller->stop();
  reap(true);
  curl_global_cleanup();
  return 0;
}
