#include "backends/ssh/terminal_relay.hpp"

namespace kasm::ssh {

Result<void> relayTerminal(SshConnection& ssh, BrowserStream& browser, std::chrono::milliseconds exit_status_wait) {
  Deadline exit_deadline;
  for (;;) {
    // The order matters: packets first (they may open the window for pending input), then what
    // the browser asked for, then the output all of it produced (a write may process packets
    // too), and only then the wait, so nothing is left in a buffer while poll() sleeps.
    KASM_RETURN_IF_ERROR(ssh.pump());
    if (auto size = browser.takeResize()) KASM_RETURN_IF_ERROR(ssh.resize(*size));
    if (auto& input = browser.pendingInput(); !input.empty()) {
      KASM_ASSIGN_OR_RETURN(std::size_t written, ssh.write(input));
      input.erase(0, written);
    }
    if (std::string output = ssh.takeOutput(); !output.empty()) KASM_RETURN_IF_ERROR(browser.sendOutput(output));

    // The shell is over when the server closed the channel, or when its output ended and the exit
    // status came (the close may follow later, or never, from some servers).
    if (ssh.closed() || (ssh.outputEnded() && ssh.exitStatus())) return browser.sendExit(ssh.exitStatus().value_or(-1));
    if (ssh.outputEnded() && !exit_deadline) exit_deadline = std::chrono::steady_clock::now() + exit_status_wait;

    auto waited = ssh.wait(browser, exit_deadline);
    if (browser.closed()) return okResult();
    if (!waited.ok()) {
      if (waited.error().code() == ErrorCode::kDeadlineExceeded) return browser.sendExit(-1);
      return std::move(waited).error();
    }
  }
}

}  // namespace kasm::ssh
