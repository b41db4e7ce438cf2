#pragma once

#include <cstdint>
#include <string>

#include "kasm/core/clock.hpp"
#include "kasm/core/enum_names.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"

namespace kasm {

// How the scheduler ranks candidate agents in a zone.
enum class LoadStrategy {
  kLeastLoad,       // Most free resources first: spreads load.
  kMostLoad,        // Least free resources first: bin packing, frees whole agents for scale-down.
  kFewestSessions,  // Fewest running sessions first.
  kMostSessions,    // Most running sessions first.
  kSpread,          // Random among those that fit (deterministic with an injected Random).
};

}  // namespace kasm

KASM_ENUM_NAMES(kasm::LoadStrategy, 5, {kasm::LoadStrategy::kLeastLoad, "least_load"},
                {kasm::LoadStrategy::kMostLoad, "most_load"}, {kasm::LoadStrategy::kFewestSessions, "fewest_sessions"},
                {kasm::LoadStrategy::kMostSessions, "most_sessions"}, {kasm::LoadStrategy::kSpread, "spread"});

namespace kasm {

// How browsers reach sessions placed in a zone.
struct ZoneProxySettings {
  std::string hostname;           // Empty = the host the user reached the API on.
  std::uint16_t port = 0;         // 0 = same as the API.
  std::string path = "/desktop";  // URL prefix of session pages.

  friend bool operator==(const ZoneProxySettings&, const ZoneProxySettings&) = default;
};

// A deployment zone groups agents and managers, usually one per site or region.
struct Zone {
  ZoneId id;
  std::string name;
  LoadStrategy load_strategy = LoadStrategy::kLeastLoad;
  bool search_alternate_zones = false;
  bool prioritize_static_agents = true;
  ZoneProxySettings proxy;
  // The desktop gateway (kasm-gateway, "host:port") that reaches this zone's RDP and SSH servers,
  // run near them; empty: the server's own (kasm-server --gateway).
  std::string gateway;
  TimePoint created_at;

  Result<void> validate() const;
  friend bool operator==(const Zone&, const Zone&) = default;
};

}  // namespace kasm
