#include <atomic>
#include <pqxx/pqxx>
#include <random>

#include "support/services.hpp"

namespace kasm::testing {
namespace {

// Replaces the database name (the URL path) of a postgresql:// URL.
std::string withDatabase(const std::string& url, const std::string& db) {
  const auto scheme = url.find("://");
  const auto slash = url.find('/', scheme + 3);
  const auto query = url.find('?', scheme + 3);
  std::string base =
      url.substr(0, slash == std::string::npos ? (query == std::string::npos ? url.size() : query) : slash);
  std::string tail = query == std::string::npos ? "" : url.substr(query);
  return base + "/" + db + tail;
}

}  // namespace

std::optional<ScratchPostgresDatabase> ScratchPostgresDatabase::create(std::string* why_not) {
  auto admin = postgresAdminUrl();
  if (!admin) {
    *why_not = "KASM_TEST_POSTGRES_URL is not set (scripts/test.sh starts a PostgreSQL server and sets it)";
    return std::nullopt;
  }
  static std::atomic<int> counter{0};
  std::random_device rd;
  const std::string name = "kasm_t_" + std::to_string(rd() % 1000000) + "_" + std::to_string(counter++);
  try {
    pqxx::connection c(*admin);
    pqxx::nontransaction t(c);
    t.exec0("CREATE DATABASE " + name);
  } catch (const std::exception& e) {
    *why_not = std::string("cannot create a scratch database: ") + e.what();
    return std::nullopt;
  }
  return ScratchPostgresDatabase(*admin, name, withDatabase(*admin, name));
}

ScratchPostgresDatabase::~ScratchPostgresDatabase() {
  if (name_.empty()) return;
  try {
    pqxx::connection c(admin_url_);
    pqxx::nontransaction t(c);
    t.exec0("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (...) {
    // A leftover scratch database is harmless: the test server lives in a temp directory.
  }
}

void ScratchPostgresDatabase::execute(const std::string& sql) const {
  pqxx::connection c(url_);
  pqxx::nontransaction t(c);
  t.exec(sql);
}

}  // namespace kasm::testing
