#include "support/redis_server.hpp"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "support/services.hpp"

namespace kasm::testing {
namespace {

std::string randomHex(std::size_t n) {
  std::random_device rd;
  std::string out;
  const char* digits = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) out.push_back(digits[rd() % 16]);
  return out;
}

}  // namespace

std::string uniqueRedisPrefix() {
  static std::atomic<int> counter{0};
  return "kasmtest:" + std::to_string(::getpid()) + "-" + randomHex(6) + "-" + std::to_string(counter++) + ":";
}

std::optional<PrivateRedisServer> PrivateRedisServer::start(std::string* why_not) {
  if (::access("/usr/bin/redis-server", X_OK) != 0) {
    *why_not = "/usr/bin/redis-server is not installed (apt-get install redis-server)";
    return std::nullopt;
  }
  PrivateRedisServer s;
  s.dir_ = (std::filesystem::temp_directory_path() / ("kasm-redis-" + randomHex(12))).string();
  std::filesystem::create_directories(s.dir_);
  s.password_ = "pw-" + randomHex(16);
  s.port_ = unusedLoopbackPort();
  if (!s.launch()) {
    *why_not = "the private redis-server did not answer on port " + std::to_string(s.port_);
    return std::nullopt;
  }
  return s;
}

PrivateRedisServer::PrivateRedisServer(PrivateRedisServer&& o) noexcept
    : dir_(std::move(o.dir_)), password_(std::move(o.password_)), port_(o.port_), pid_(o.pid_) {
  o.pid_ = -1;
  o.dir_.clear();
}

PrivateRedisServer::~PrivateRedisServer() {
  kill();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

bool PrivateRedisServer::launch() {
  // Everything the child needs is built before fork(): it must not allocate (other threads may hold
  // the allocator's lock at the fork).
  const std::string port = std::to_string(port_);
  const std::string log = dir_ + "/redis.log";
  std::vector<const char*> argv = {"redis-server", "--port",    port.c_str(),   "--bind",        "127.0.0.1",
                                   "--save",       "",          "--appendonly", "yes",           "--appendfsync",
                                   "always",       "--dir",     dir_.c_str(),   "--requirepass", password_.c_str(),
                                   "--logfile",    log.c_str(), nullptr};
  pid_ = ::fork();
  if (pid_ == 0) {
    ::execv("/usr/bin/redis-server", const_cast<char* const*>(argv.data()));
    ::_exit(127);
  }
  return pid_ > 0 && waitReady();
}

bool PrivateRedisServer::waitReady() const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (command({"PING"}) == "PONG") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

void PrivateRedisServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

bool PrivateRedisServer::restart() {
  kill();
  return launch();
}

std::string PrivateRedisServer::url() const {
  return urlWithPassword(password_);
}

std::string PrivateRedisServer::urlWithPassword(const std::string& password) const {
  return "redis://:" + password + "@127.0.0.1:" + std::to_string(port_) + "/0";
}

std::string PrivateRedisServer::command(const std::vector<std::string>& argv) const {
  timeval tv{1, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
  if (!c || c->err) {
    if (c) redisFree(c);
    return "";
  }
  redisSetTimeout(c, tv);
  std::string out;
  auto run = [&](const std::vector<std::string>& args) -> std::string {
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(args.size()), ptrs.data(), lens.data()));
    if (!r) return "";
    std::string text;
    if (r->type == REDIS_REPLY_INTEGER) {
      text = std::to_string(r->integer);
    } else if (r->type != REDIS_REPLY_ERROR && r->str) {
      text.assign(r->str, r->len);
    }
    freeReplyObject(r);
    return text;
  };
  if (run({"AUTH", password_}) == "OK") out = run(argv);
  redisFree(c);
  return out;
}

}  // namespace kasm::testing
