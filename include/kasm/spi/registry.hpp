#pragma once

// Extension points registered by name, so configuration can say "docker" or "least_load" and an
// embedder can add "my-runtime" or "gold-first" next to the built-ins.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/enum_names.hpp"
#include "kasm/core/result.hpp"
#include "kasm/sched/placement_policy.hpp"
#include "kasm/spi/container_runtime.hpp"

namespace kasm::spi {

// Factories of `Interface` by name. A factory takes `Args` (e.g. a configuration string) and returns
// a new instance or an error. Registries are plain objects the embedder owns and passes around;
// there is no global one.
//
// Threading: every method is thread-safe. Factories run without the registry's lock held, so a
// factory may itself use the registry.
template <class Interface, class... Args>
class Registry {
 public:
  using Factory = std::function<Result<std::unique_ptr<Interface>>(Args...)>;

  // InvalidArgument for an empty name or factory; AlreadyExists when the name is taken (names are
  // never silently replaced: two plugins claiming one name is a configuration error).
  Result<void> registerFactory(std::string name, Factory factory) {
    if (name.empty()) return invalidArgument("registry: the name must not be empty");
    if (!factory) return invalidArgument("registry: the factory of '" + name + "' is empty");
    std::lock_guard lock(mu_);
    if (!factories_.emplace(name, std::move(factory)).second) {
      return alreadyExists("registry: '" + name + "' is already registered");
    }
    return {};
  }

  // A new instance from the factory registered as `name`; NotFound naming the known ones otherwise.
  // Errors of the factory pass through unchanged.
  Result<std::unique_ptr<Interface>> create(std::string_view name, Args... args) const {
    Factory factory;
    {
      std::lock_guard lock(mu_);
      auto it = factories_.find(name);
      if (it == factories_.end()) {
        std::string known;
        for (const auto& [n, f] : factories_) known += (known.empty() ? "" : ", ") + n;
        return notFound("registry: nothing is registered as '" + std::string(name) +
                        "' (known: " + (known.empty() ? "none" : known) + ")");
      }
      factory = it->second;
    }
    auto made = factory(std::forward<Args>(args)...);
    if (made.ok() && !made.value())
      return internalError("registry: the factory of '" + std::string(name) + "' returned null");
    return made;
  }

  bool contains(std::string_view name) const {
    std::lock_guard lock(mu_);
    return factories_.find(name) != factories_.end();
  }

  // Registered names in ascending order.
  std::vector<std::string> names() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [n, f] : factories_) out.push_back(n);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Factory, std::less<>> factories_;
};

// Container runtimes by name; the argument is the runtime's configuration text (its format is the
// runtime's own, e.g. a Docker endpoint or a JSON object).
using RuntimeRegistry = Registry<ContainerRuntime, const std::string&>;

// Placement policies by name.
using PolicyRegistry = Registry<sched::PlacementPolicy>;

// Registers the built-in policies under their LoadStrategy names (least_load, most_load,
// fewest_sessions, most_sessions, spread); add your own next to them.
inline void registerBuiltinPolicies(PolicyRegistry& registry) {
  for (const auto& [strategy, name] : EnumNames<LoadStrategy>::kValues) {
    (void)registry.registerFactory(
        std::string(name),
        [s = strategy]() -> Result<std::unique_ptr<sched::PlacementPolicy>> { return sched::makePolicy(s); });
  }
}

}  // namespace kasm::spi
