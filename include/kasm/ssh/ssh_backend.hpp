#pragma once

// The "ssh" desktop gateway backend (component kasm::ssh, on libssh 0.10): a terminal on an SSH
// server, for the web terminal (web/terminal.html).
//
// serve() connects to request.host:port, checks the server's host key through the gateway's pins
// (key "ssh:<host>:<port>", fingerprint "sha256:<hex>" of the SHA-256 of the host key blob; a
// changed key is always refused, whatever request.certificate_policy says), authenticates as
// request.username (with request.private_key when it is set, the password being its passphrase if
// it is encrypted; then with the password, by "password" or by "keyboard-interactive" answering
// every prompt with it), opens a PTY of request.width x request.height cells with TERM
// xterm-256color and a login shell, and relays it over the client stream in the frames of
// src/backends/ssh/ssh_frames.hpp until the shell exits (an exit frame) or either side closes.
//
// Connecting, authenticating and starting the shell are bounded as a whole by
// SshBackendOptions::connect_timeout. Every failure is told to the user as an error frame whose
// text says why (authentication failed, host key changed, server down, timed out, ...); serve()
// returns it too, for the gateway's log. Passwords and keys never appear in either.
//
// One thread per serve() call; calls share nothing, so any number may run at once.

#include <chrono>
#include <memory>

#include "kasm/spi/desktop_gateway.hpp"

namespace kasm::ssh {

struct SshBackendOptions {
  // Connecting, the SSH handshake, authentication and starting the shell, as a whole.
  std::chrono::milliseconds connect_timeout{15'000};
  // After the shell's output ends, how long to wait for the server to tell its exit status.
  std::chrono::milliseconds exit_status_wait{2'000};
};

std::unique_ptr<spi::GatewayBackend> makeSshBackend(SshBackendOptions options = {});

}  // namespace kasm::ssh
