// A program outside the kasm tree, built against an installed kasm.
#include <cstdio>
#include <kasm/kasm.hpp>
#include <kasm/store/sqlite_store.hpp>

int main() {
  std::printf("kasm %s\n", std::string(kasm::version()).c_str());
  auto store = kasm::openSqliteStore({.path = ":memory:"});
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.error().toString().c_str());
    return 1;
  }
  std::printf("store %s schema %d\n", std::string((*store)->backendName()).c_str(), (*store)->schemaVersion());
  return 0;
}
