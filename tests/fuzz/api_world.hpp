#pragma once

// A small installation for the API fuzz targets, built afresh for every input so that a crash
// reproduces from its input alone: a memory store, a manager on a manual clock with one fake agent
// (tests/unit/fake_agent_link.hpp), a zone, two workspaces, the All Users and admin groups, three
// users and three API keys (admin, sessions only, read-only admin).

#include <map>
#include <memory>
#include <set>
#include <string>

#include "kasm/auth/access_token.hpp"
#include "kasm/auth/password.hpp"
#include "kasm/auth/secret.hpp"
#include "kasm/auth/web_session.hpp"
#include "kasm/kasm.hpp"
#include "kasm/manager/manager.hpp"
#include "unit/fake_agent_link.hpp"

namespace kasm::fuzzing {

struct ApiWorld {
  ManualClock clock;
  SeededRandom random{11};
  std::unique_ptr<spi::Store> store = makeMemoryStore();
  std::shared_ptr<testing::FakeAgentLink> link = std::make_shared<testing::FakeAgentLink>();
  auth::AccessTokenSigner signer = auth::AccessTokenSigner::create(std::string(40, 's'), clock).value();
  auth::WebSessionSigner web_signer = auth::WebSessionSigner::create(std::string(40, 'w'), clock).value();
  std::unique_ptr<Manager> manager;

  // Aborts when the fixed setup fails: that is a bug of the harness, not of the input.
  ApiWorld() {
    Repository repo(*store);
    ManagerOptions mo;
    mo.license = license::LicensePolicy::unlimited();
    manager = std::make_unique<Manager>(*store, clock, random, mo);
    must(manager->start().ok());
    Zone z;
    z.id = ZoneId("east");
    z.name = "East";
    must(manager->upsertZone(z).ok());
    Workspace w;
    w.id = WorkspaceId("desktop");
    w.friendly_name = "Desktop";
    w.image = "desktop:1";
    w.resources = Resources::fromCores(1, Resources::kGiB);
    w.group_ids = {GroupId("all")};
    must(manager->upsertWorkspace(w).ok());
    w.id = WorkspaceId("hidden");
    w.enabled = false;
    must(manager->upsertWorkspace(w).ok());
    Group all;
    all.id = GroupId("all");
    all.name = "All Users";
    all.permissions = {"sessions:launch"};
    all.settings.max_sessions_per_user = 0;
    all.settings.default_workspace = WorkspaceId("desktop");
    must(repo.insert(all).ok());
    Group admins;
    admins.id = GroupId("admins");
    admins.name = "Administrators";
    admins.permissions = {"admin"};
    must(repo.insert(admins).ok());
    for (const char* name : {"alice", "bob", "root"}) {
      User u;
      u.id = UserId(name);
      u.username = name;
      u.password_hash = passwordHashOf(name);
      u.group_ids = {all.id};
      if (u.username == "root") u.group_ids.push_back(admins.id);
      must(repo.insert(u).ok());
    }
    must(testing::connectFakeAgent(*manager, link, "a1", z.id, Resources::fromCores(16, 16 * Resources::kGiB),
                                   {"desktop:1"})
             .empty());
    addKey("admin", {"admin"}, false);
    addKey("sessions", {"sessions:manage"}, false);
    addKey("ro", {"admin"}, true);
  }

  void addKey(const std::string& name, std::set<std::string> permissions, bool read_only) {
    // The hash of "<name>-secret", computed once (hashSecret is fast, but this runs per input).
    static const std::map<std::string, std::string> hashes = {
        {"admin", auth::hashSecret("admin-secret")},
        {"sessions", auth::hashSecret("sessions-secret")},
        {"ro", auth::hashSecret("ro-secret")},
    };
    ApiKey k;
    k.id = ApiKeyId("id-" + name);
    k.name = name;
    k.key = name + "-key";
    k.secret_hash = hashes.at(name);
    k.permissions = std::move(permissions);
    k.read_only = read_only;
    must(Repository(*store).insert(k).ok());
  }

  // A real scrypt hash of "<name>-password" (cheap parameters, computed once per process). The REST
  // target checks passwords with a stand-in (passwordMatches), as scrypt would cost milliseconds
  // per login.
  static const std::string& passwordHashOf(const std::string& name) {
    static std::map<std::string, std::string> hashes;
    auto it = hashes.find(name);
    if (it == hashes.end()) {
      auto h = auth::hashPassword(name + "-password", {.log2_n = 10});
      must(h.ok());
      it = hashes.emplace(name, h.value()).first;
    }
    return it->second;
  }
  static bool passwordMatches(std::string_view password, std::string_view stored) {
    for (const char* name : {"alice", "bob", "root"}) {
      if (stored == passwordHashOf(name)) return password == std::string(name) + "-password";
    }
    return false;
  }

  static void must(bool ok) {
    if (!ok) std::abort();
  }
};

}  // namespace kasm::fuzzing
