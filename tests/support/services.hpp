#pragma once

// Access to the real services the tests use, started by scripts/test.sh. A test that needs a
// service that is not there is skipped with the reason, unless KASM_REQUIRE_SERVICES=1, when it fails.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace kasm::testing {

// A loopback port nothing listens on now (bound, read and released): for a server a test starts,
// or for a connection that must be refused.
inline int unusedLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool servicesRequired() {
  const char* v = std::getenv("KASM_REQUIRE_SERVICES");
  return v && std::string(v) == "1";
}

// The admin URL of the test PostgreSQL server (KASM_TEST_POSTGRES_URL), if any.
inline std::optional<std::string> postgresAdminUrl() {
  const char* v = std::getenv("KASM_TEST_POSTGRES_URL");
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

// Creates a fresh database on the test server for one test and drops it afterwards.
class ScratchPostgresDatabase {
 public:
  // Returns nullopt (and records why) when no server is configured.
  static std::optional<ScratchPostgresDatabase> create(std::string* why_not);
  ~ScratchPostgresDatabase();
  ScratchPostgresDatabase(ScratchPostgresDatabase&& o) noexcept
      : admin_url_(std::move(o.admin_url_)), name_(std::move(o.name_)), url_(std::move(o.url_)) {
    o.name_.clear();
  }
  ScratchPostgresDatabase& operator=(ScratchPostgresDatabase&& o) noexcept {
    std::swap(admin_url_, o.admin_url_);
    std::swap(name_, o.name_);
    std::swap(url_, o.url_);
    return *this;
  }
  ScratchPostgresDatabase(const ScratchPostgresDatabase&) = delete;

  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }
  // Runs SQL on this database outside the store (to simulate tampering); throws on error.
  void execute(const std::string& sql) const;

 private:
  ScratchPostgresDatabase(std::string admin_url, std::string name, std::string url)
      : admin_url_(std::move(admin_url)), name_(std::move(name)), url_(std::move(url)) {}
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

}  // namespace kasm::testing

// Skips (or fails, in CI) the current test when a service is missing.
#define KASM_SKIP_OR_FAIL(why)                                                   \
  do {                                                                           \
    if (::kasm::testing::servicesRequired()) {                                   \
      FAIL() << "required service missing (KASM_REQUIRE_SERVICES=1): " << (why); \
    } else {                                                                     \
      GTEST_SKIP() << (why);                                                     \
    }                                                                            \
  } while (0)
