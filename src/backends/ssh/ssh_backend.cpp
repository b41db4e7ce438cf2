#include "kasm/ssh/ssh_backend.hpp"

#include <boost/json.hpp>

#include "backends/ssh/browser_stream.hpp"
#include "backends/ssh/ssh_connection.hpp"
#include "backends/ssh/terminal_relay.hpp"

namespace kasm::ssh {
namespace {

class SshBackend final : public spi::GatewayBackend {
 public:
  explicit SshBackend(SshBackendOptions options) : options_(options) {}

  std::string_view protocol() const noexcept override { return "ssh"; }

  Result<void> serve(const spi::GatewayRequest& request, int client_fd, spi::GatewayPins& pins) override {
    TerminalSize initial;
    if (request.width > 0 && request.height > 0) initial = {request.width, request.height};
    BrowserStream browser(client_fd, initial);
    // The user is told why in an error frame; the gateway's log gets the same words and the session.
    auto fail = [&](const Error& error) -> Result<void> {
      if (!browser.closed()) (void)browser.sendError(error.message());
      return error.withContext(request.session_id.empty() ? "ssh" : "ssh session " + request.session_id);
    };

    if (request.host.empty() || request.port == 0) {
      return fail(invalidArgument("The SSH connection has no server address (host and port)."));
    }
    if (request.username.empty()) return fail(invalidArgument("The SSH connection has no user name."));

    const auto deadline = std::chrono::steady_clock::now() + options_.connect_timeout;
    auto connection = SshConnection::open(request, pins, browser, deadline);
    // A browser that left while connecting is nobody's failure: nothing to tell, nothing to log.
    if (browser.closed()) return okResult();
    if (!connection.ok()) {
      const Error& error = connection.error();
      if (error.code() != ErrorCode::kDeadlineExceeded) return fail(error);
      const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(options_.connect_timeout).count();
      return fail(deadlineExceeded(error.message() + " (the limit is " + std::to_string(seconds) + " s)."));
    }
    SshConnection& ssh = **connection;

    boost::json::object ready;
    ready["host"] = request.host;
    ready["port"] = request.port;
    ready["user"] = request.username;
    ready["fingerprint"] = ssh.identity().fingerprint;
    ready["key_type"] = ssh.identity().key_type;
    if (auto sent = browser.sendReady(boost::json::serialize(ready)); !sent.ok()) {
      return browser.closed() ? okResult() : sent;
    }

    auto relayed = relayTerminal(ssh, browser, options_.exit_status_wait);
    if (relayed.ok() || browser.closed()) return okResult();
    if (relayed.error().code() == ErrorCode::kInvalidArgument) {
      return fail(invalidArgument("The web terminal sent data the SSH gateway does not understand (" +
                                  relayed.error().message() + "); the connection was closed."));
    }
    return fail(relayed.error());
  }

 private:
  SshBackendOptions options_;
};

}  // namespace

std::unique_ptr<spi::GatewayBackend> makeSshBackend(SshBackendOptions options) {
  return std::make_unique<SshBackend>(options);
}

}  // namespace kasm::ssh
