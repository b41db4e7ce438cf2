#pragma once

// Internal to kasm::ssh: the relay between a started shell and the web terminal, on the serving
// thread, until the shell exits (an exit frame goes out) or the browser leaves.

#include <chrono>

#include "backends/ssh/browser_stream.hpp"
#include "backends/ssh/ssh_connection.hpp"
#include "kasm/core/result.hpp"

namespace kasm::ssh {

// OK when the shell exited (the exit frame was sent) or the browser closed the stream. Unavailable
// when the SSH connection broke; the browser's protocol errors as they are. `exit_status_wait`
// bounds the wait for the exit status once the shell's output ended (-1 is sent without one).
Result<void> relayTerminal(SshConnection& ssh, BrowserStream& browser, std::chrono::milliseconds exit_status_wait);

}  // namespace kasm::ssh
