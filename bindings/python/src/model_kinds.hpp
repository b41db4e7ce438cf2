#pragma once

// The model types that cross into Python as JSON, by the name the Python package uses.

#include <array>
#include <string>
#include <string_view>
#include <type_traits>

#include "kasm/model/model.hpp"
#include "shim.hpp"

namespace kasm::python {

inline constexpr std::array<std::string_view, 11> kModelKinds = {
    "workspace", "zone",        "agent",          "session",          "user",    "group",
    "server",    "server_pool", "staging_config", "autoscale_config", "setting",
};

// Calls f(std::type_identity<T>{}) for the model type named `kind`; InvalidArgument otherwise.
template <class F>
decltype(auto) withModelKind(std::string_view kind, F&& f) {
  if (kind == "workspace") return f(std::type_identity<Workspace>{});
  if (kind == "zone") return f(std::type_identity<Zone>{});
  if (kind == "agent") return f(std::type_identity<Agent>{});
  if (kind == "session") return f(std::type_identity<Session>{});
  if (kind == "user") return f(std::type_identity<User>{});
  if (kind == "group") return f(std::type_identity<Group>{});
  if (kind == "server") return f(std::type_identity<Server>{});
  if (kind == "server_pool") return f(std::type_identity<ServerPool>{});
  if (kind == "staging_config") return f(std::type_identity<StagingConfig>{});
  if (kind == "autoscale_config") return f(std::type_identity<AutoscaleConfig>{});
  if (kind == "setting") return f(std::type_identity<Setting>{});
  std::string known;
  for (auto k : kModelKinds) known += (known.empty() ? "" : ", ") + std::string(k);
  throw CallError(invalidArgument("unknown model kind '" + std::string(kind) + "' (known: " + known + ")"));
}

}  // namespace kasm::python
