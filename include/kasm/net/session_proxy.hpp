#pragma once

// The session proxy: forwards /desktop/<session>/<rest> to the session's container, checking the
// session access token on every request and WebSocket upgrade. Mount it on an HttpServer
// (HttpServer::start(options, handler, proxy)).
//
// VNC sessions are bridged from the browser's WebSocket to the desktop's RFB port. When the
// target carries the desktop's password (ProxyTarget::vnc_password) or is view-only, the proxy
// speaks RFB itself: it authenticates to the desktop, offers the browser only "no security", and
// always asks the desktop to share (ClientInit shared-flag 1), so no browser ever holds the
// password and several viewers watch one desktop without pushing each other off. It then reads
// every message the browser sends and drops a view-only viewer's input (keys, pointer, clipboard,
// resizing, power actions), which setViewerAccess can grant or take back on live connections.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"
#include "kasm/model/workspace.hpp"
#include "kasm/net/web_socket.hpp"

namespace kasm::net {

class BlockingPool;

// What a viewer may do on a VNC desktop.
enum class ViewerAccess {
  kFull,      // Watch and control: every message passes.
  kViewOnly,  // Watch only: the bridge drops keyboard, pointer, clipboard, resize and power input.
};

// Where an authorized request goes.
struct ProxyTarget {
  std::string upstream;  // "127.0.0.1:port", "[::1]:port" or "host:port".
  // kHttp: HTTP reverse proxy (WebSocket upgrades tunnelled). kHttps: the same over TLS to the
  // container (its certificate is self-signed and not verified: the hop is host-local).
  // kVnc: the client must open a WebSocket, whose binary messages are bridged to the raw TCP port.
  // kSsh: the same, always opaque (a desktop gateway's terminal stream; never view-only).
  // Other protocols are refused with 501.
  SessionProtocol protocol = SessionProtocol::kHttp;
  UserId user;  // Who the token belongs to; for logs and the activity callback.

  // kVnc only. When vnc_password has a value (an empty one: the desktop asks for none) or access is
  // kViewOnly, the bridge terminates RFB: it authenticates to the desktop with the password (VNC
  // Authentication, or None when offered and no password is needed), offers the browser security
  // type None only, sends the desktop a shared ClientInit, and filters the browser's messages
  // (view-only input dropped; an unknown message closes the bridge). A desktop that refuses the
  // credentials or does not speak RFB gives the browser an RFB failure with the reason. The whole
  // handshake is bounded by ProxyOptions::upstream_timeout.
  // When neither is set, the bridge relays opaque bytes and the browser's page does the RFB
  // handshake itself (embedders that hand the password to their own viewer).
  ViewerAccess access = ViewerAccess::kFull;
  std::optional<std::string> vnc_password;
  // kVnc / kSsh: bytes written to the upstream as soon as it is connected, before anything else (a
  // desktop gateway's sealed request, kasm/gateway/gateway.hpp). Empty: none.
  std::string upstream_preamble;
  // Set when `upstream` is reached through a relay instead of directly: an agent's reverse tunnel
  // (kasm/tunnel/tunnel_hub.hpp). The proxy connects to `relay`, writes `relay_preamble` (the
  // sealed open request) before anything else, TLS included, and then talks to the session as if
  // connected to `upstream`. `relay_identity` names the upstream for reusing kept connections,
  // since one relay address leads to many upstreams.
  std::string relay;
  std::string relay_preamble;
  std::string relay_identity;
};

// What the authorizer sees of one request.
struct ProxyAuthRequest {
  SessionId session;
  std::string_view token;  // Empty when the client sent none.
  bool upgrade = false;    // A WebSocket upgrade.
  std::string_view remote_address;
};

// Decides whether a request may reach a session and where it goes. Errors map to statuses:
// Unauthenticated 401, PermissionDenied 403, NotFound 404, FailedPrecondition/Unavailable 503.
// Typical: AccessTokenSigner::verifyFor(token, session), then the session's upstream and protocol.
// Called on an I/O thread unless ProxyOptions::blocking_pool is set; may be called concurrently.
using ProxyAuthorizer = std::function<Result<ProxyTarget>(const ProxyAuthRequest&)>;

// Optional first step of authorization, always called on the I/O thread, so it must not block:
// it answers from what it has at hand (a signature check, a recently read target) or returns
// nullopt to hand the request to the ProxyAuthorizer (on the blocking pool when one is set). It
// spares a request the round trip to the pool when nothing needs to be read from a store.
using ProxyQuickAuthorizer = std::function<std::optional<Result<ProxyTarget>>(const ProxyAuthRequest&)>;

// Client->upstream traffic for a session, at most once per activity_interval per session (for idle
// timeouts: Manager::recordActivity). Same thread rules as the authorizer.
using ProxyActivity = std::function<void(const SessionId&, const UserId&)>;

// Why a VNC bridge that speaks RFB itself gave up: the desktop refused the proxy's credentials or
// spoke no RFB, or the viewer sent a message the proxy cannot measure. For a log line; called on
// the I/O thread, so it must not block.
using ProxyVncError = std::function<void(const SessionId&, const UserId&, std::string_view why)>;

// The default Content-Security-Policy of proxied HTTP content: a sandbox without
// allow-same-origin, so a session's page runs in an opaque origin wherever it is opened (in the
// viewer's frame, or by a link on the control plane's own origin) and cannot read that origin's
// cookies, call its API with them or script the viewer's page. Pages keep scripts, forms, popups,
// dialogs and downloads; what needs their own origin (document.cookie, localStorage) does not work
// in them. frame-ancestors keeps them out of other sites' frames.
inline constexpr std::string_view kSandboxedContentPolicy =
    "sandbox allow-scripts allow-forms allow-popups allow-popups-to-escape-sandbox allow-modals allow-downloads "
    "allow-pointer-lock allow-presentation; frame-ancestors 'self'";

// A page the proxy answers itself (see ProxyOptions::vnc_page).
struct ProxyPage {
  int status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // Besides Content-Type and Content-Length.
};
// Makes the page for an authorized plain request (not a WebSocket upgrade) to the root of a VNC
// session: the session viewer, typically. Called on the I/O thread, so it must not block; nullopt
// falls back to 400.
using ProxyPageMaker = std::function<std::optional<ProxyPage>(const ProxyAuthRequest&, const ProxyTarget&)>;

// A plain HTTP request the proxy answers itself (ProxyOptions::app_request): in kasm-server, file
// transfer in and out of the session. Authorized like the desktop.
struct ProxyAppRequest {
  std::string method;
  std::string path;   // Below app_request_path: "" for the path itself, else "/upload", ...
  std::string query;  // Without '?' and without the token.
  std::optional<std::uint64_t> content_length;
  std::string body;  // Empty when asked for admission.
};
// Before a request's body is read: how many bytes of it to accept (more gets 413, unread). An
// error answers the request at once (InvalidArgument 400, PermissionDenied 403, NotFound 404,
// ResourceExhausted 413, FailedPrecondition 409, Unavailable 503, others 500) as JSON
// {"error": message}. Called on the blocking pool when there is one.
using ProxyAppAdmit =
    std::function<Result<std::uint64_t>(const ProxyAuthRequest&, const ProxyTarget&, const ProxyAppRequest&)>;
// The answer, once the body is in; an error is answered as for admission. Called on the blocking
// pool when there is one.
using ProxyAppHandler =
    std::function<Result<ProxyPage>(const ProxyAuthRequest&, const ProxyTarget&, const ProxyAppRequest&)>;

// A WebSocket the proxy serves itself instead of passing it to the session (ProxyOptions::
// app_socket): in kasm-server, the chat of a shared session. It is authorized like the desktop (the
// same token, the same user and rights) and closed with it (closeSession, a revoked user).
using ProxySocket = WebSocket;
using ProxySocketHandlers = WebSocketHandlers;
// Opens an app socket for an authorized upgrade. Called on the I/O thread: must not block. An error
// refuses the upgrade with its status (as the authorizer's do). `socket` may be used at once; what
// it sends goes out once the handshake is done.
using ProxySocketOpener = std::function<Result<ProxySocketHandlers>(const ProxyAuthRequest&, const ProxyTarget&,
                                                                    std::shared_ptr<ProxySocket>)>;

struct ProxyOptions {
  std::string prefix = "/desktop/";      // Must start and end with '/'.
  ProxyAuthorizer authorize;             // Required.
  ProxyQuickAuthorizer authorize_quick;  // Optional.
  ProxyActivity on_activity;             // Optional.
  ProxyVncError on_vnc_error;            // Optional.
  Duration activity_interval = std::chrono::seconds(1);
  // When set, the authorizer and the activity callback run here (they may block on a store).
  BlockingPool* blocking_pool = nullptr;
  Duration upstream_timeout = std::chrono::seconds(30);  // Connect and response header.
  // TCP keep-alive probes on upstream connections, so that an agent host that vanished without a
  // word (powered off, its NAT state dropped) ends its tunnels in about idle + 3 * interval rather
  // than at tunnel_idle_timeout, and its viewers reconnect. Zero: off.
  Duration upstream_keepalive_idle = std::chrono::seconds(60);
  Duration upstream_keepalive_interval = std::chrono::seconds(10);
  // A relay buffer's size: the most read from one side at once. A connection holds one per
  // direction only while data flows (taken when a side becomes readable, given back when the read
  // would block), so an idle connection holds none.
  std::size_t buffer_bytes = 64 * 1024;
  // WebSocket tunnels and VNC bridges open at once, at most; an upgrade beyond gets 503. Each holds
  // two sockets for as long as it lives, and relay buffers while data flows.
  std::size_t max_tunnels = 4096;
  // A tunnel in which no byte moved either way for this long is closed (zero: never). Clients
  // such as noVNC reconnect when their user comes back.
  Duration tunnel_idle_timeout = Duration::zero();
  // Cookie carrying the token; set by the proxy when the token came in the query string, so the
  // page's own sub-requests (scripts, the WebSocket) are authorized without it.
  std::string token_cookie = "kasm_session_token";
  // The control plane's credentials, which a container must never see: these cookies and header
  // fields are removed from every request before it leaves, besides the token (query parameter,
  // token cookie) and Authorization, which always are. A Set-Cookie from a container for any of
  // these cookie names (or the token cookie) is dropped.
  std::vector<std::string> strip_cookies = {"kasm_auth"};
  std::vector<std::string> strip_headers = {"X-CSRF-Token"};
  // Added to every proxied HTTP response (not to a 101). Empty: nothing is added. Embedders that
  // serve sessions on their own origin may relax it; on the control plane's origin, keep the sandbox.
  std::string content_security_policy = std::string(kSandboxedContentPolicy);
  // Origins besides the request's own (same host and port as its Host field) whose pages may open
  // WebSockets to sessions, as "https://portal.example.com[:port]". An upgrade with any other
  // Origin, "null" (a sandboxed page) included, gets 403; one without Origin is not from a browser
  // page, and its token alone decides.
  std::vector<std::string> allowed_origins;
  // What a browser that opens a VNC session's URL (/prefix/<session>/) gets: a page that shows the
  // desktop (kasm-server: the session viewer). Unset: 400, "open it with a WebSocket". When the
  // token came in the query, the response also sets the token cookie, so a reload works once the
  // page has taken the token out of its address.
  ProxyPageMaker vnc_page;
  // WebSocket upgrades to <prefix><session><app_socket_path> go to `app_socket` (when set) after
  // the usual authorization, whatever the session's protocol. Each counts as a tunnel.
  std::string app_socket_path = "/kasm/chat";
  ProxySocketOpener app_socket;
  // More of the proxy's own WebSockets, by path below the session (e.g. "/kasm/audio").
  std::map<std::string, ProxySocketOpener, std::less<>> app_sockets;
  std::size_t app_socket_max_message = 16 * 1024;    // Larger client messages close the socket.
  std::size_t app_socket_queue_bytes = 1024 * 1024;  // Unsent bytes per socket before it is closed.
  // Plain requests to <prefix><session><app_request_path>[/...] go to `app_request` (when set)
  // after the usual authorization, whatever the session's protocol; requests with a body are
  // first admitted by `app_request_admit` (unset: bodies of at most 1 MiB).
  std::string app_request_path = "/kasm/files";
  ProxyAppAdmit app_request_admit;
  ProxyAppHandler app_request;
};

// Counters since creation, for /metrics. Read while traffic flows; each field is exact, the set is
// not a snapshot.
struct ProxyStats {
  std::uint64_t requests = 0;  // Proxied HTTP requests (upgrades included).
  std::uint64_t rejected = 0;  // Refused before reaching an upstream (4xx/5xx by us).
  std::uint64_t bytes_to_upstream = 0;
  std::uint64_t bytes_to_client = 0;
  std::uint64_t open_tunnels = 0;   // WebSocket tunnels and VNC bridges open now.
  std::uint64_t input_dropped = 0;  // RFB input messages of view-only viewers dropped by VNC bridges.
  // Relay buffers (ProxyOptions::buffer_bytes each) held now: by connections moving data, and by
  // TLS tunnels for their lifetime. Idle plain connections hold none.
  std::uint64_t buffers_in_use = 0;
};

// Thread-safe. Lives as long as the servers it is mounted on (they hold a shared_ptr).
class SessionProxy {
 public:
  // InvalidArgument for a bad prefix or a missing authorizer.
  static Result<std::shared_ptr<SessionProxy>> create(ProxyOptions options);
  ~SessionProxy();
  SessionProxy(const SessionProxy&) = delete;
  SessionProxy& operator=(const SessionProxy&) = delete;

  const std::string& prefix() const noexcept;

  // Closes every open connection of the session (tunnels, requests in flight) now, e.g. when it is
  // destroyed; new requests are refused by the authorizer from then on. Returns how many were closed.
  std::size_t closeSession(const SessionId& session);

  // Closes every connection of `user` to `session` now (VNC bridges, WebSocket tunnels, requests in
  // flight and kept keep-alive connections); other users' connections to the session stay open.
  // For taking a viewer off a shared desktop; the authorizer must refuse them from then on.
  // Returns how many were closed.
  std::size_t closeViewer(const SessionId& session, const UserId& user);
  // Closes every connection of `user`, to any session (they lost access: disabled, logged out
  // everywhere, deleted). Returns how many were closed.
  std::size_t closeUser(const UserId& user);

  // Changes what `user` may do on the live VNC bridges to `session`, at once and without
  // reconnecting: a view-only bridge made kFull passes input from its next message on, and a full
  // one made kViewOnly drops it. An opaque bridge (a target without vnc_password and with kFull)
  // cannot filter, so kViewOnly closes it instead (the browser reconnects and the authorizer
  // decides anew). A bridge being set up right now takes the new access too. The authorizer must
  // answer with the new access from then on. Returns how many live bridges changed (those that
  // already had `access` do not count) or were closed.
  std::size_t setViewerAccess(const SessionId& session, const UserId& user, ViewerAccess access);

  ProxyStats stats() const;

  struct Impl;
  Impl& impl() noexcept { return *impl_; }

 private:
  explicit SessionProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kasm::net
