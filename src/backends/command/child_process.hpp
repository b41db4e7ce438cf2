#pragma once

// Runs one executable to completion with bounded time and output, for the command VM provider.
// Private to src/backends/command/.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "kasm/core/result.hpp"

namespace kasm::command::detail {

struct ChildRequest {
  std::vector<std::string> argv;         // argv[0] is an absolute path; nothing goes through a shell.
  std::vector<std::string> environment;  // The child's whole environment, "NAME=value" each.
  std::string working_directory = "/";   // Absolute.
  std::string input;                     // Written to the child's stdin, which is then closed.
  std::chrono::milliseconds timeout{120'000};
  std::chrono::milliseconds kill_grace{5'000};  // From SIGTERM to SIGKILL once the timeout passed.
  std::size_t stdout_limit = 4u << 20;          // More than this ends the child (stdout_overflow).
  std::size_t stderr_keep = 64u << 10;          // Only the last this many bytes of stderr are kept.
};

struct ChildOutcome {
  bool exited = false;     // Ended by exit(); exit_status is then meaningful.
  int exit_status = -1;    // 0..255.
  int signal = 0;          // The signal that ended it, when !exited.
  bool timed_out = false;  // The timeout passed and the process group was terminated.
  bool stdout_overflow = false;
  std::string output;      // What it wrote to stdout before it exited (at most stdout_limit bytes).
  std::string error_tail;  // The last stderr_keep bytes it wrote to stderr.
};

// Spawns argv[0] (posix_spawn, no shell) as the leader of a new process group, with the default
// signal dispositions and an empty signal mask, writes `input` to its stdin while reading its
// stdout and stderr (poll, no deadlock whatever the child reads or writes first), and reaps it.
//
// Once the timeout passes, or stdout exceeds its limit, the group gets SIGTERM and, if the child
// has not exited kill_grace later, SIGKILL; whatever remains of the group when a terminated child
// exits gets SIGKILL too (sent before the child is reaped, so the group id cannot have been reused).
// A child that exits normally leaves the rest of its group alone: a provider script may start
// long-lived processes, which should then start sessions of their own.
// Output is read until the child exits, then drained without waiting: a descendant that keeps the
// pipes open does not hold the call.
//
// The child has only descriptors 0, 1 and 2. Every descriptor here is close-on-exec, so concurrent calls (thread-safe)
// do not leak pipes into each other's children. SIGPIPE from a child that does not read its input is absorbed. Errors:
// FailedPrecondition when the executable or the working directory cannot be used (missing, not executable); Unavailable
// when the system refuses resources (pipes, processes). The embedding process must not set SIGCHLD to SIG_IGN nor reap
// children it did not start.
Result<ChildOutcome> runChild(const ChildRequest& request);

}  // namespace kasm::command::detail
