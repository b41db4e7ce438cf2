#pragma once

// Placement on fixed servers: which server of a pool (or the one server of a server workspace)
// takes a user's new session. A pure function of the servers as stored (their slots, limits,
// status and assignment), so it is unit-tested without a store and explains every refusal.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/result.hpp"
#include "kasm/model/server.hpp"

namespace kasm::sched {

// The index in `servers` of the server that takes `user`'s session:
//  - servers that are disabled (draining), dead or missing, assigned to another user, at their
//    max_simultaneous_sessions, or (RDP, VNC, KasmVNC) already serving this user are passed over;
//  - a server assigned to `user` comes first; otherwise the least loaded (by the share of its limit
//    in use, then by sessions, then by id), so sessions spread evenly.
// ResourceExhausted when none fits, naming `what` ("pool Finance", "server db-1") and why each
// server was passed over, counted: "pool Finance: 3 servers, all at their limit of 2" or
// "pool Finance: 3 servers: 2 at their limit of 2, 1 dead (connection refused)".
// FailedPrecondition when `servers` is empty.
Result<std::size_t> chooseServer(const std::vector<Server>& servers, const UserId& user, std::string_view what);

}  // namespace kasm::sched
