#include "backends/ssh/ssh_connection.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace kasm::ssh {
namespace {

constexpr const char* kTerminalType = "xterm-256color";
// One write to the channel at most; keystrokes are small, a paste goes in pieces.
constexpr std::size_t kMaxWrite = 32 * 1024;
// Keyboard-interactive rounds before giving up (PAM asks once or twice; a loop means a refusal).
constexpr int kMaxKeyboardInteractiveRounds = 6;

std::string formatAddress(const std::string& host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string toHex(const unsigned char* data, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0x0f]);
  }
  return out;
}

// `text` ending with a full stop, to be followed by another sentence.
std::string asSentence(std::string text) {
  if (!text.empty() && text.back() != '.' && text.back() != '!' && text.back() != '?') text += '.';
  return text;
}

std::string authMethodNames(int methods) {
  std::string out;
  auto add = [&out](const char* name) { out += out.empty() ? name : std::string(", ") + name; };
  if (methods & SSH_AUTH_METHOD_PUBLICKEY) add("publickey");
  if (methods & SSH_AUTH_METHOD_PASSWORD) add("password");
  if (methods & SSH_AUTH_METHOD_INTERACTIVE) add("keyboard-interactive");
  if (methods & SSH_AUTH_METHOD_GSSAPI_MIC) add("gssapi");
  if (methods & SSH_AUTH_METHOD_HOSTBASED) add("hostbased");
  return out.empty() ? "none" : out;
}

// Connects a TCP socket to host:port before the deadline, trying each address the name has.
Result<int> connectTcp(const std::string& host, std::uint16_t port, const std::string& address, BrowserStream& browser,
                       Deadline deadline) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return unavailable("The SSH server's host name " + host + " cannot be resolved (" + ::gai_strerror(rc) + ")");
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
  int last_errno = 0;
  for (const addrinfo* ai = addresses.get(); ai != nullptr; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    int err = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      while (err == EINPROGRESS) {
        auto ready = waitForSocket(fd, POLLOUT, browser, deadline);
        if (!ready.ok() || browser.closed()) {
          ::close(fd);
          if (browser.closed())
            return failedPrecondition("the browser closed the terminal before the connection was made");
          if (ready.error().code() == ErrorCode::kDeadlineExceeded) {
            return deadlineExceeded("Connecting to the SSH server " + address + " timed out");
          }
          return ready.error();
        }
        if (*ready == 0) continue;  // Only the browser spoke.
        socklen_t len = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      }
    }
    if (err == 0) {
      // A terminal sends keystrokes one by one: each should leave at once.
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    last_errno = err;
    ::close(fd);
  }
  switch (last_errno) {
    case ECONNREFUSED:
      return unavailable("The SSH server " + address + " refused the connection: is it running, on that port?");
    case ETIMEDOUT: return deadlineExceeded("Connecting to the SSH server " + address + " timed out");
    case EHOSTUNREACH:
    case ENETUNREACH:
      return unavailable("The SSH server " + address + " cannot be reached (" + std::strerror(last_errno) + ")");
    default:
      return unavailable("Connecting to the SSH server " + address + " failed (" + std::strerror(last_errno) + ")");
  }
}

void initializeLibssh() {
  static std::once_flag once;
  std::call_once(once, [] { ssh_init(); });
}

}  // namespace

Result<std::unique_ptr<SshConnection>> SshConnection::open(const spi::GatewayRequest& request, spi::GatewayPins& pins,
                                                           BrowserStream& browser, Deadline deadline) {
  initializeLibssh();
  std::unique_ptr<SshConnection> c(new SshConnection());
  c->address_ = formatAddress(request.host, request.port);
  c->user_ = request.username;
  KASM_ASSIGN_OR_RETURN(c->socket_, connectTcp(request.host, request.port, c->address_, browser, deadline));
  KASM_RETURN_IF_ERROR(c->handshake(request, browser, deadline));
  // The host key is checked before anything secret is sent: a server that is not the pinned one
  // never sees the password.
  KASM_RETURN_IF_ERROR(c->verifyHostKey(request, pins));
  KASM_RETURN_IF_ERROR(c->authenticate(request, browser, deadline));
  KASM_RETURN_IF_ERROR(c->startShell(browser, deadline));
  return c;
}

SshConnection::~SshConnection() {
  if (channel_ != nullptr) {
    if (ssh_is_connected(session_) && ssh_channel_is_open(channel_)) ssh_channel_close(channel_);
    ssh_channel_free(channel_);
  }
  if (session_ != nullptr) {
    // libssh closes a socket it was given only when the connection fails (and then forgets it);
    // otherwise the socket stays ours to close. Closing it twice could close another thread's
    // freshly opened descriptor, so ask libssh which case this is before ssh_disconnect() makes it
    // forget. (Were ssh_connect() to fail before taking the socket at all, which only running out
    // of memory does, this would leak it: the safe side of the two mistakes.)
    const bool libssh_closed_it = ssh_get_fd(session_) == SSH_INVALID_SOCKET && socket_handed_over_;
    ssh_disconnect(session_);
    ssh_free(session_);
    if (libssh_closed_it) socket_ = -1;
  }
  if (socket_ >= 0) ::close(socket_);
}

Error SshConnection::lost(std::string_view what) const {
  const char* detail = session_ != nullptr ? ssh_get_error(session_) : "";
  std::string message = "The connection to the SSH server " + address_ + " was lost (" + std::string(what);
  if (detail != nullptr && *detail != '\0') message += ": " + std::string(detail);
  return unavailable(message + ")");
}

template <class Call>
Result<int> SshConnection::untilDone(Call call, int again, BrowserStream& browser, Deadline deadline,
                                     const char* what) {
  for (;;) {
    const int rc = call();
    if (rc != again) return rc;
    auto waited = wait(browser, deadline);
    if (!waited.ok()) {
      if (waited.error().code() == ErrorCode::kDeadlineExceeded) {
        return deadlineExceeded("The SSH server " + address_ + " did not answer in time (while " + what + ")");
      }
      return std::move(waited).error();
    }
    if (browser.closed()) return failedPrecondition("the browser closed the terminal before the shell started");
  }
}

Result<void> SshConnection::wait(BrowserStream& browser, Deadline deadline) {
  const int fd = ssh_get_fd(session_);
  if (fd == SSH_INVALID_SOCKET) return lost("the server closed the connection");
  // libssh says what it waits for: input always, output while it has bytes it could not send yet.
  const short events = static_cast<short>(POLLIN | ((ssh_get_poll_flags(session_) & SSH_WRITE_PENDING) ? POLLOUT : 0));
  KASM_ASSIGN_OR_RETURN(short revents, waitForSocket(fd, events, browser, deadline));
  (void)revents;  // Whatever woke the wait, the caller's next libssh call handles it.
  return okResult();
}

Result<void> SshConnection::handshake(const spi::GatewayRequest& request, BrowserStream& browser, Deadline deadline) {
  session_ = ssh_new();
  if (session_ == nullptr) return internalError("libssh could not create a session");
  const int no_log = SSH_LOG_NOLOG;
  const bool no = false;
  unsigned int port = request.port;
  socket_t fd = socket_;
  // The gateway's own ssh_config, known_hosts and keys have nothing to do with this connection:
  // the pins decide about the host key, the request carries the credentials.
  bool options_ok = ssh_options_set(session_, SSH_OPTIONS_LOG_VERBOSITY, &no_log) == 0 &&
                    ssh_options_set(session_, SSH_OPTIONS_PROCESS_CONFIG, &no) == 0 &&
                    ssh_options_set(session_, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") == 0 &&
                    ssh_options_set(session_, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") == 0 &&
                    ssh_options_set(session_, SSH_OPTIONS_PORT, &port) == 0 &&
                    ssh_options_set(session_, SSH_OPTIONS_USER, request.username.c_str()) == 0;
  // SSH_OPTIONS_HOST would read "user@host" as a user name too; the host only names the server in
  // libssh's own messages here, so one with '@' is simply not given.
  if (options_ok && request.host.find('@') == std::string::npos) {
    options_ok = ssh_options_set(session_, SSH_OPTIONS_HOST, request.host.c_str()) == 0;
  }
  if (!options_ok)
    return invalidArgument("The SSH connection settings were refused: " + std::string(ssh_get_error(session_)));
  if (ssh_options_set(session_, SSH_OPTIONS_FD, &fd) != 0) return internalError("libssh refused the connected socket");
  ssh_set_blocking(session_, 0);
  socket_handed_over_ = true;
  KASM_ASSIGN_OR_RETURN(int rc, untilDone([this] { return ssh_connect(session_); }, SSH_AGAIN, browser, deadline,
                                          "starting the SSH session"));
  if (rc != SSH_OK) {
    return unavailable("The SSH handshake with " + address_ + " failed (" + ssh_get_error(session_) +
                       "): is it an SSH server?");
  }
  return okResult();
}

Result<void> SshConnection::verifyHostKey(const spi::GatewayRequest& request, spi::GatewayPins& pins) {
  ssh_key key = nullptr;
  if (ssh_get_server_publickey(session_, &key) != SSH_OK || key == nullptr) {
    return unavailable("The SSH server " + address_ + " did not present a host key");
  }
  identity_.key_type = ssh_key_type_to_char(ssh_key_type(key));
  // The SHA-256 of the key blob, as OpenSSH's "SHA256:" fingerprints (there in base64).
  unsigned char* hash = nullptr;
  std::size_t hash_size = 0;
  const int hashed = ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_size);
  ssh_key_free(key);
  if (hashed != SSH_OK || hash == nullptr) return internalError("libssh could not hash the host key");
  const std::string hex = toHex(hash, hash_size);
  ssh_clean_pubkey_hash(&hash);
  identity_.fingerprint = "sha256:" + hex;

  const std::string pin_key = "ssh:" + request.host + ":" + std::to_string(request.port);
  auto pinned = pins.check(pin_key, identity_.fingerprint);
  if (pinned.ok()) return okResult();
  if (pinned.error().code() == ErrorCode::kPermissionDenied) {
    return permissionDenied("The host key of the SSH server " + address_ +
                            " has changed, so the connection was refused: it now presents " + identity_.fingerprint +
                            " (" + identity_.key_type + "). " + asSentence(pinned.error().message()) +
                            " If the server was reinstalled on purpose, an administrator must clear its pin.");
  }
  return unavailable("The host key of " + address_ + " could not be checked: " + pinned.error().message());
}

Result<void> SshConnection::authenticate(const spi::GatewayRequest& request, BrowserStream& browser,
                                         Deadline deadline) {
  auto step = [&](auto call, const char* what) { return untilDone(call, SSH_AUTH_AGAIN, browser, deadline, what); };
  std::string tried;
  auto triedAlso = [&tried](const char* name) { tried += tried.empty() ? name : std::string(", ") + name; };

  // "none" first: it also asks the server which methods it accepts.
  KASM_ASSIGN_OR_RETURN(int rc, step([this] { return ssh_userauth_none(session_, nullptr); }, "authenticating"));
  if (rc == SSH_AUTH_SUCCESS) return okResult();
  if (rc == SSH_AUTH_ERROR) return lost("authenticating");
  int methods = ssh_userauth_list(session_, nullptr);

  if (!request.private_key.empty()) {
    ssh_key key = nullptr;
    const char* passphrase = request.password.empty() ? nullptr : request.password.c_str();
    if (ssh_pki_import_privkey_base64(request.private_key.c_str(), passphrase, nullptr, nullptr, &key) != SSH_OK) {
      return invalidArgument("The private key for user " + request.username + " on " + address_ +
                             " could not be read: it must be an OpenSSH or PEM private key (an encrypted one needs "
                             "its passphrase as the connection's password)");
    }
    if (methods & SSH_AUTH_METHOD_PUBLICKEY) {
      triedAlso("publickey");
      auto done = step([this, key] { return ssh_userauth_publickey(session_, nullptr, key); }, "authenticating");
      ssh_key_free(key);
      if (!done.ok()) return std::move(done).error();
      if (*done == SSH_AUTH_SUCCESS) return okResult();
      if (*done == SSH_AUTH_ERROR) return lost("authenticating");
      methods = ssh_userauth_list(session_, nullptr);
    } else {
      ssh_key_free(key);
    }
  }

  if (!request.password.empty() && (methods & SSH_AUTH_METHOD_PASSWORD)) {
    triedAlso("password");
    KASM_ASSIGN_OR_RETURN(
        rc, step([&] { return ssh_userauth_password(session_, nullptr, request.password.c_str()); }, "authenticating"));
    if (rc == SSH_AUTH_SUCCESS) return okResult();
    if (rc == SSH_AUTH_ERROR) return lost("authenticating");
    methods = ssh_userauth_list(session_, nullptr);
  }

  if (!request.password.empty() && (methods & SSH_AUTH_METHOD_INTERACTIVE)) {
    triedAlso("keyboard-interactive");
    // Each round the server asks some questions: hidden ones get the password, visible ones (a
    // user name prompt) the user name. A server that keeps asking has refused.
    for (int round = 0; round < kMaxKeyboardInteractiveRounds; ++round) {
      KASM_ASSIGN_OR_RETURN(rc,
                            step([this] { return ssh_userauth_kbdint(session_, nullptr, nullptr); }, "authenticating"));
      if (rc != SSH_AUTH_INFO) break;
      const int prompts = ssh_userauth_kbdint_getnprompts(session_);
      for (int i = 0; i < prompts; ++i) {
        char echo = 0;
        ssh_userauth_kbdint_getprompt(session_, static_cast<unsigned int>(i), &echo);
        const std::string& answer = echo ? request.username : request.password;
        ssh_userauth_kbdint_setanswer(session_, static_cast<unsigned int>(i), answer.c_str());
      }
    }
    if (rc == SSH_AUTH_SUCCESS) return okResult();
    if (rc == SSH_AUTH_ERROR) return lost("authenticating");
  }

  std::string why = "SSH authentication failed for user " + request.username + " on " + address_;
  if (tried.empty()) {
    why += request.private_key.empty() && request.password.empty()
               ? ": the connection has neither a password nor a private key"
               : ": the server accepts none of the methods the connection has credentials for";
  } else {
    why += " (tried " + tried + ")";
  }
  return unauthenticated(why + "; the server accepts: " + authMethodNames(ssh_userauth_list(session_, nullptr)) + ".");
}

Result<void> SshConnection::startShell(BrowserStream& browser, Deadline deadline) {
  channel_ = ssh_channel_new(session_);
  if (channel_ == nullptr) return lost("opening a channel");
  ssh_callbacks_init(&callbacks_);
  callbacks_.userdata = this;
  callbacks_.channel_data_function = &SshConnection::onData;
  callbacks_.channel_eof_function = &SshConnection::onEof;
  callbacks_.channel_close_function = &SshConnection::onClose;
  callbacks_.channel_exit_status_function = &SshConnection::onExitStatus;
  callbacks_.channel_exit_signal_function = &SshConnection::onExitSignal;
  if (ssh_set_channel_callbacks(channel_, &callbacks_) != SSH_OK) return internalError("libssh refused the callbacks");

  auto step = [&](auto call, const char* what) { return untilDone(call, SSH_AGAIN, browser, deadline, what); };
  KASM_ASSIGN_OR_RETURN(int rc, step([this] { return ssh_channel_open_session(channel_); }, "opening a session"));
  if (rc != SSH_OK) {
    return unavailable("The SSH server " + address_ + " refused to open a session (" + ssh_get_error(session_) + ")");
  }
  // The latest size the browser asked for while connecting, or the request's.
  (void)browser.takeResize();
  const TerminalSize size = browser.size();
  KASM_ASSIGN_OR_RETURN(
      rc, step([this, size] { return ssh_channel_request_pty_size(channel_, kTerminalType, size.columns, size.rows); },
               "asking for a terminal"));
  if (rc != SSH_OK) {
    return unavailable("The SSH server " + address_ + " refused a terminal (PTY) (" + ssh_get_error(session_) + ")");
  }
  KASM_ASSIGN_OR_RETURN(rc, step([this] { return ssh_channel_request_shell(channel_); }, "starting the shell"));
  if (rc != SSH_OK) {
    return unavailable("The SSH server " + address_ + " refused to start a shell (" + ssh_get_error(session_) + ")");
  }
  return okResult();
}

Result<void> SshConnection::pump() {
  if (!eof_) {
    // With the callbacks taking all data, the channel's buffers stay empty, so this always
    // processes what the socket has.
    const int rc = ssh_channel_poll(channel_, 0);
    if (rc == SSH_ERROR) return lost("reading");
    if (rc == SSH_EOF) eof_ = true;
    return okResult();
  }
  // After the end of the output only the exit status and the close are still to come; this call
  // processes packets until the exit status is known. Its result mixes errors and statuses, so
  // the connection's state says which it was.
  (void)ssh_channel_get_exit_status(channel_);
  if (!exit_status_ && !closed_ && !ssh_is_connected(session_)) return lost("waiting for the exit status");
  return okResult();
}

Result<std::size_t> SshConnection::write(std::string_view bytes) {
  if (bytes.empty() || outputEnded()) return std::size_t{0};
  const auto size = static_cast<std::uint32_t>(std::min(bytes.size(), kMaxWrite));
  const int n = ssh_channel_write(channel_, bytes.data(), size);
  if (n == SSH_ERROR) return lost("writing");
  return static_cast<std::size_t>(n);
}

Result<void> SshConnection::resize(TerminalSize size) {
  if (outputEnded()) return okResult();
  if (ssh_channel_change_pty_size(channel_, size.columns, size.rows) == SSH_ERROR) return lost("resizing");
  return okResult();
}

std::string SshConnection::takeOutput() {
  std::string out;
  out.swap(output_);
  return out;
}

int SshConnection::onData(ssh_session, ssh_channel, void* data, uint32_t len, int, void* self) {
  // stdout and stderr alike: on a PTY they are one stream for the person reading.
  static_cast<SshConnection*>(self)->output_.append(static_cast<const char*>(data), len);
  return static_cast<int>(len);
}

void SshConnection::onEof(ssh_session, ssh_channel, void* self) {
  static_cast<SshConnection*>(self)->eof_ = true;
}

void SshConnection::onClose(ssh_session, ssh_channel, void* self) {
  static_cast<SshConnection*>(self)->closed_ = true;
}

void SshConnection::onExitStatus(ssh_session, ssh_channel, int status, void* self) {
  static_cast<SshConnection*>(self)->exit_status_ = status;
}

void SshConnection::onExitSignal(ssh_session, ssh_channel, const char*, int, const char*, const char*, void* self) {
  static_cast<SshConnection*>(self)->exit_status_ = -1;
}

}  // namespace kasm::ssh
