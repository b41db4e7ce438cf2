#pragma once

// Internal to kasm::ssh: one SSH connection with a shell on a PTY, on libssh 0.10 in non-blocking
// mode, driven by the connection's own poll() (browser_stream.hpp's waitForSocket).
//
// The TCP connection is made here rather than by libssh, so that connecting is bounded by the same
// deadline as the rest and its failures are told apart (refused, unreachable, timed out); libssh is
// given the connected socket (SSH_OPTIONS_FD) and reads no ssh_config, known_hosts or identity of
// the gateway's own user.
//
// Channel events arrive through libssh's channel callbacks, which run inside whichever libssh call
// processes packets (pump()): output is collected into a buffer the relay drains after each pump,
// so no byte can sit in a libssh buffer while poll() waits on a quiet socket.
//
// Every error's message is written for the person at the terminal: it goes out as an error frame.

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <memory>
#include <optional>
#include <string>

#include "backends/ssh/browser_stream.hpp"
#include "kasm/core/result.hpp"
#include "kasm/spi/desktop_gateway.hpp"

namespace kasm::ssh {

// What the browser is told when the shell runs (the ready frame).
struct ServerIdentity {
  std::string fingerprint;  // "sha256:<hex>".
  std::string key_type;     // "ssh-ed25519", ...
};

class SshConnection {
 public:
  // Connects, verifies the host key through `pins`, authenticates and starts the shell, all before
  // `deadline`, serving `browser` while it waits (its resizes set the PTY's first size). The error
  // says why for the user: Unavailable (refused, unreachable, the handshake failed),
  // DeadlineExceeded, PermissionDenied (host key changed), Unauthenticated (no method worked),
  // InvalidArgument (an unreadable private key), FailedPrecondition (the browser left first).
  static Result<std::unique_ptr<SshConnection>> open(const spi::GatewayRequest& request, spi::GatewayPins& pins,
                                                     BrowserStream& browser, Deadline deadline);

  ~SshConnection();
  SshConnection(const SshConnection&) = delete;
  SshConnection& operator=(const SshConnection&) = delete;

  const ServerIdentity& identity() const noexcept { return identity_; }
  // "host:port" as the user named it, for messages.
  const std::string& address() const noexcept { return address_; }

  // Lets libssh process whatever the socket has (without blocking), which runs the callbacks.
  // Unavailable when the connection broke.
  Result<void> pump();
  // Waits until the SSH socket needs attention or the browser sent something.
  Result<void> wait(BrowserStream& browser, Deadline deadline);

  // Writes as much of `bytes` as the channel's window takes now; returns how much that was.
  Result<std::size_t> write(std::string_view bytes);
  Result<void> resize(TerminalSize size);

  // Output collected by the callbacks since the last call.
  std::string takeOutput();
  bool outputEnded() const noexcept { return eof_ || closed_; }
  bool closed() const noexcept { return closed_; }
  // The shell's exit status once the server told it (-1 for a signal).
  std::optional<int> exitStatus() const noexcept { return exit_status_; }

 private:
  SshConnection() = default;

  Result<void> handshake(const spi::GatewayRequest& request, BrowserStream& browser, Deadline deadline);
  Result<void> verifyHostKey(const spi::GatewayRequest& request, spi::GatewayPins& pins);
  Result<void> authenticate(const spi::GatewayRequest& request, BrowserStream& browser, Deadline deadline);
  Result<void> startShell(BrowserStream& browser, Deadline deadline);
  // Repeats a non-blocking libssh call until it returns something other than `again`.
  template <class Call>
  Result<int> untilDone(Call call, int again, BrowserStream& browser, Deadline deadline, const char* what);
  Error lost(std::string_view what) const;

  static int onData(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* self);
  static void onEof(ssh_session, ssh_channel, void* self);
  static void onClose(ssh_session, ssh_channel, void* self);
  static void onExitStatus(ssh_session, ssh_channel, int status, void* self);
  static void onExitSignal(ssh_session, ssh_channel, const char* signal, int core, const char* errmsg, const char* lang,
                           void* self);

  int socket_ = -1;                  // Ours until libssh closes it on a failure (see the destructor).
  bool socket_handed_over_ = false;  // Given to libssh (SSH_OPTIONS_FD).
  ssh_session session_ = nullptr;
  ssh_channel channel_ = nullptr;
  ssh_channel_callbacks_struct callbacks_{};
  std::string address_;
  std::string user_;
  ServerIdentity identity_;
  std::string output_;
  bool eof_ = false;
  bool closed_ = false;
  std::optional<int> exit_status_;
};

}  // namespace kasm::ssh
