// SessionProxy: per request, parse /prefix/<session>/<rest>, refuse traversal, take the token out,
// authorize, then stream the exchange to the upstream (HTTP relay with buffer_body, raw tunnel after
// a 101, or a WebSocket<->TCP bridge for VNC). Every copy of data goes through one fixed buffer per
// direction, and a direction reads again only once its previous chunk has been written
// (backpressure). This file routes, authorizes, connects upstreams and holds the public object; the
// paths themselves are in proxy_fast.cpp, proxy_beast.cpp, proxy_tunnel.cpp and proxy_rfb.cpp.

#include "kasm/net/session_proxy.hpp"

#include "net/proxy_impl.hpp"
#include "net/stream_io.hpp"

namespace kasm::net::detail {

namespace {
bool parseUpstream(std::string_view s, std::string& host, std::string& port) {
  if (s.starts_with("[")) {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    host = std::string(s.substr(1, close - 1));
    port = std::string(s.substr(close + 2));
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = std::string(s.substr(0, colon));
    port = std::string(s.substr(colon + 1));
  }
  return !host.empty() && !port.empty();
}

// The authorizer's answer; one that throws refuses the request with a 500 instead of leaving it
// unanswered (on the pool) or cutting the connection (on the I/O thread).
Result<ProxyTarget> guardedAuthorize(SessionProxy::Impl& proxy, const ProxyAuthRequest& request) {
  try {
    return proxy.options.authorize(request);
  } catch (...) {
    return internalError("proxy: the authorizer failed");
  }
}

}  // namespace

// What the client sees when the authorizer refuses: a session that is not (or no longer) running
// is a temporary 503, not a client error.
int authStatus(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kResourceExhausted: return 429;
    case ErrorCode::kFailedPrecondition:
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

// Runs the authorizer, on the blocking pool when one is configured, resuming on our strand.
Awaitable<Result<ProxyTarget>> authorize(SessionProxy::Impl& proxy, const ProxyAuthRequest& request) {
  if (proxy.options.authorize_quick) {
    std::optional<Result<ProxyTarget>> quick;
    try {
      quick = proxy.options.authorize_quick(request);
    } catch (...) {
      quick = internalError("proxy: the authorizer failed");
    }
    if (quick) co_return std::move(*quick);
  }
  // The pool outlives the call; copy what the request views into owned strings.
  const auto task = [&proxy, session = request.session, token = std::string(request.token), upgrade = request.upgrade,
                     remote = std::string(request.remote_address)] {
    return guardedAuthorize(proxy, ProxyAuthRequest{session, token, upgrade, remote});
  };
  auto result = co_await onBlockingPool<ProxyTarget>(proxy, task, "proxy: the authorization pool is busy");
  co_return result;
}

Awaitable<beast::error_code> connectUpstream(SessionProxy::Impl& proxy, Transport& up, const ProxyTarget& target) {
  std::string host, port;
  if (!parseUpstream(target.relay.empty() ? target.upstream : target.relay, host, port)) {
    co_return asio::error::invalid_argument;
  }
  up.tcp().expires_after(proxy.options.upstream_timeout);
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (!ec) {
    unsigned long p = 0;
    try {
      p = std::stoul(port);
    } catch (const std::exception&) {
      co_return asio::error::invalid_argument;
    }
    auto [cec] = co_await up.tcp().async_connect(tcp::endpoint(address, static_cast<std::uint16_t>(p)), kAwaitTuple);
    if (cec) co_return cec;
  } else {
    tcp::resolver resolver(co_await asio::this_coro::executor);
    auto [rec, results] = co_await resolver.async_resolve(host, port, kAwaitTuple);
    if (rec) co_return rec;
    beast::error_code cec = asio::error::host_not_found;
    for (const auto& entry : results) {
      if (up.tcp().socket().is_open()) up.tcp().socket().close(ec);
      std::tie(cec) = co_await up.tcp().async_connect(entry.endpoint(), kAwaitTuple);
      if (!cec || cec == beast::error::timeout) break;
    }
    if (cec) co_return cec;
  }
  up.tcp().socket().set_option(tcp::no_delay(true), ec);
  setKeepAlive(up.tcp().socket(), proxy.options.upstream_keepalive_idle, proxy.options.upstream_keepalive_interval);
  if (!target.relay_preamble.empty()) {
    // A relay learns from its preamble where the stream goes, before any byte of it (TLS included).
    if (auto wec = co_await writeAll(up, asio::buffer(target.relay_preamble)); wec) co_return wec;
  }
  if (target.protocol == SessionProtocol::kHttps) {
    up.enableTls(proxy.upstream_tls);
    auto [hec] = co_await up.tls()->async_handshake(asio::ssl::stream_base::client, kAwaitTuple);
    if (hec) co_return hec;
  }
  co_return beast::error_code{};
}

// Answers a request the proxy refuses; the connection is kept when `keep`.
Awaitable<bool> refuse(SessionProxy::Impl& proxy, ClientContext& client, unsigned version, bool keep, int status,
                       std::string message, const HttpHeaders* extra) {
  proxy.rejected.fetch_add(1, std::memory_order_relaxed);
  keep = keep && !client.stopping.load();
  client.transport.tcp().expires_after(std::chrono::seconds(5));
  co_await writeSimple(client.transport, version, status, std::move(message) + "\n", keep, extra);
  co_return keep;
}

Awaitable<bool> reject(SessionProxy::Impl& proxy, ClientContext& client, HeaderParser& parser, int status,
                       std::string message, const HttpHeaders* extra) {
  const auto& req = parser.get();
  // An unread body would be parsed as the next request: close instead of keeping the connection.
  const bool has_body = req.chunked() || (parser.content_length() && *parser.content_length() > 0);
  co_return co_await refuse(proxy, client, req.version(), req.keep_alive() && !has_body, status, std::move(message),
                            extra);
}

// Reuses the connection's kept upstream when it leads to the same place, else connects a new one.
// `reused` says which, for the retry of a request that met a kept connection the upstream had
// closed.
Awaitable<beast::error_code> ensureUpstream(SessionProxy::Impl& proxy, ClientContext& client, ConnectionState& state,
                                            const ProxyTarget& target, bool& reused) {
  const auto protocol = enumName(target.protocol);
  const std::string& where = target.relay.empty() ? target.upstream : target.relay_identity;
  const bool same = state.upstream_key.size() == protocol.size() + 1 + where.size() &&
                    state.upstream_key.starts_with(protocol) && state.upstream_key.ends_with(where);
  reused = state.upstream && same && state.upstream->tcp().socket().is_open();
  if (reused) co_return beast::error_code{};
  state.upstream = std::make_unique<Transport>(client.transport.get_executor());
  state.upstream_buffer.clear();
  state.upstream_key.assign(protocol).append("|").append(where);
  auto ec = co_await connectUpstream(proxy, *state.upstream, target);
  if (ec) state.upstream.reset();
  co_return ec;
}

bool closedByPeer(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == http::error::partial_message || ec == asio::error::broken_pipe;
}

// Splits and checks the target; false with `refusal` filled when the proxy answers by itself.
bool routeTarget(const SessionProxy::Impl& proxy, std::string_view target, Route& route, Refusal& refusal) {
  const std::string& prefix = proxy.options.prefix;
  const auto qmark = target.find('?');
  const std::string_view path = target.substr(0, qmark);
  const std::string_view query = qmark == std::string_view::npos ? std::string_view{} : target.substr(qmark + 1);
  if (!path.starts_with(prefix)) {
    refusal = {404, "no session in the path", {}};
    return false;
  }
  std::string_view after = path.substr(prefix.size());
  const auto slash = after.find('/');
  route.session_text = after.substr(0, slash);
  auto sid = SessionId::parse(route.session_text, "session");
  if (!sid.ok() || route.session_text == "." || route.session_text == "..") {
    refusal = {400, "proxy: malformed session id in the path", {}};
    return false;
  }
  if (slash == std::string_view::npos) {
    // The session page's relative URLs need the trailing slash.
    refusal = {308, "see the session root", {}};
    refusal.extra.add("Location",
                      prefix + std::string(route.session_text) + "/" + (query.empty() ? "" : "?" + std::string(query)));
    return false;
  }
  route.rest = after.substr(slash);
  if (!isSafeRest(route.rest)) {
    refusal = {400, "proxy: path escapes the session", {}};
    return false;
  }
  route.session = std::move(*sid);
  route.split = splitQueryToken(query);
  return true;
}

Refusal authRefusal(const Error& error) {
  Refusal r{authStatus(error.code()), "proxy: " + error.message(), {}};
  if (r.status == 401) r.extra.add("WWW-Authenticate", "Bearer");
  return r;
}

void releaseIdleProxyState(std::shared_ptr<void>& proxy_state) {
  if (!proxy_state) return;
  auto& state = *static_cast<ConnectionState*>(proxy_state.get());
  giveMessageHead(state.response_head);
  std::string().swap(state.head_out);
  releaseIfEmpty(state.upstream_buffer);
}

// The connection's proxy state, and its registration under `session` for `user`.
ExchangeGuard& attachExchange(SessionProxy::Impl& proxy, ClientContext& client, const SessionId& session,
                              const UserId& user) {
  if (!client.proxy_state) {
    client.proxy_state = std::make_shared<ConnectionState>();
  }
  auto& state = *static_cast<ConnectionState*>(client.proxy_state.get());
  if (!state.guard || !state.guard->isFor(session, user)) {
    state.guard.reset();
    auto exchange = std::make_shared<Exchange>(client.transport.get_executor(), user);
    exchange->client = &client.transport;
    state.guard = std::make_unique<ExchangeGuard>(proxy, session, user, std::move(exchange));
  }
  state.guard->exchange().kept_upstream = &state.upstream;
  return *state.guard;
}

// A token that came in the query is handed back as a cookie scoped to the session, so the page's
// own requests (scripts, images, WebSockets) carry it.
void addTokenCookie(const SessionProxy::Impl& proxy, ClientContext& client, const Route& route,
                    std::string_view cookie_token, HttpHeaders& response_extra) {
  if (!route.split.from_query || cookie_token == route.split.token) return;
  // A sandboxed page has an opaque origin, so the browser counts its own requests (scripts, images)
  // as cross-site and would not send a SameSite=Lax cookie with them. Over HTTPS the cookie is
  // SameSite=None so they carry it; it is bound to one session and user, and no other site can
  // read what it fetches. Browsers refuse SameSite=None without Secure, so plain HTTP keeps Lax.
  const bool cross_site = client.transport.secure() && proxy.sandboxed_content;
  response_extra.add("Set-Cookie", proxy.options.token_cookie + "=" + route.split.token +
                                       "; Path=" + proxy.options.prefix + std::string(route.session_text) +
                                       "/; HttpOnly" + (cross_site ? "; SameSite=None" : "; SameSite=Lax") +
                                       (client.transport.secure() ? "; Secure" : ""));
}

std::optional<ProxyPage> vncPage(const SessionProxy::Impl& proxy, ClientContext& client, const Route& route,
                                 const ProxyAuthRequest& auth, const ProxyTarget& target,
                                 std::string_view cookie_token) {
  if (!proxy.options.vnc_page || !(route.rest.empty() || route.rest == "/")) return std::nullopt;
  auto page = proxy.options.vnc_page(auth, target);
  if (!page) return std::nullopt;
  HttpHeaders cookie;
  addTokenCookie(proxy, client, route, cookie_token, cookie);
  for (const auto& f : cookie.fields()) page->headers.push_back(f);
  return page;
}

Awaitable<bool> answerPage(ClientContext& client, unsigned version, bool keep, ProxyPage page) {
  keep = keep && !client.stopping.load();
  client.transport.tcp().expires_after(std::chrono::seconds(5));
  HttpHeaders extra;
  extra.set("Content-Type", std::move(page.content_type));
  for (auto& [k, v] : page.headers) extra.add(std::move(k), std::move(v));
  co_await writeSimple(client.transport, version, page.status, std::move(page.body), keep, &extra);
  co_return keep;
}

}  // namespace kasm::net::detail

namespace kasm::net {

using namespace detail;

SessionProxy::SessionProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SessionProxy::~SessionProxy() = default;

Result<std::shared_ptr<SessionProxy>> SessionProxy::create(ProxyOptions options) {
  if (!options.authorize) return invalidArgument("SessionProxy: an authorizer is required");
  if (options.prefix.size() < 2 || options.prefix.front() != '/' || options.prefix.back() != '/') {
    return invalidArgument("SessionProxy: prefix must start and end with '/', e.g. /desktop/");
  }
  if (options.buffer_bytes < 1024) return invalidArgument("SessionProxy: buffer_bytes must be at least 1024");
  if (options.tunnel_idle_timeout < Duration::zero()) {
    return invalidArgument("SessionProxy: tunnel_idle_timeout must not be negative");
  }
  if (options.upstream_keepalive_idle < Duration::zero() || options.upstream_keepalive_interval < Duration::zero()) {
    return invalidArgument("SessionProxy: upstream keep-alive durations must not be negative");
  }
  auto impl = std::make_unique<Impl>();
  for (const auto& o : options.allowed_origins) {
    if (!(o.starts_with("https://") || o.starts_with("http://")) ||
        o.find('/', o.find("//") + 2) != std::string::npos) {
      return invalidArgument("SessionProxy: allowed origin '" + o + "' must be scheme://host[:port], without a path");
    }
  }
  impl->options = std::move(options);
  if (!impl->options.content_security_policy.empty()) {
    impl->csp_field = "Content-Security-Policy: " + impl->options.content_security_policy + "\r\n";
    impl->sandboxed_content = impl->options.content_security_policy.find("sandbox") != std::string::npos;
  }
  // Containers serve self-signed certificates on a host-local hop: encryption without
  // verification is what is possible there (the same choice as Kasm's own proxy).
  impl->upstream_tls.set_verify_mode(asio::ssl::verify_none);
  return std::shared_ptr<SessionProxy>(new SessionProxy(std::move(impl)));
}

const std::string& SessionProxy::prefix() const noexcept {
  return impl_->options.prefix;
}

namespace {
// Cuts one exchange on its own thread: its bridge's upstream, its kept upstream, its client.
void closeExchange(const std::shared_ptr<Exchange>& e) {
  e->closing.store(true);
  asio::post(e->executor, [e] {
    if (!e->alive) return;
    if (e->bridge_upstream) e->bridge_upstream->close();
    if (e->kept_upstream && *e->kept_upstream) (*e->kept_upstream)->close();
    e->client->close();
  });
}
}  // namespace

std::size_t SessionProxy::closeSession(const SessionId& session) {
  auto open = impl_->exchangesOf(session, nullptr);
  if (open.empty()) return 0;
  {
    std::lock_guard lock(impl_->mutex);
    impl_->reported_at.erase(session);
  }
  for (auto& e : open) closeExchange(e);
  return open.size();
}

std::size_t SessionProxy::closeViewer(const SessionId& session, const UserId& user) {
  auto open = impl_->exchangesOf(session, &user);
  for (auto& e : open) closeExchange(e);
  return open.size();
}

std::size_t SessionProxy::closeUser(const UserId& user) {
  std::vector<std::shared_ptr<Exchange>> open;
  {
    std::lock_guard lock(impl_->mutex);
    for (auto& [session, entry] : impl_->sessions) {
      for (auto& [id, e] : entry.open) {
        if (e->user == user && !e->closing.load()) open.push_back(e);
      }
    }
  }
  for (auto& e : open) closeExchange(e);
  return open.size();
}

std::size_t SessionProxy::setViewerAccess(const SessionId& session, const UserId& user, ViewerAccess access) {
  std::size_t changed = 0;
  for (auto& e : impl_->exchangesOf(session, &user)) {
    // Store first, then look at the bridge: a bridge that starts meanwhile publishes its kind
    // before it reads the access (proxy_tunnel.cpp), so one of the two sees the other.
    const std::uint8_t before = e->access.exchange(accessCode(access));
    switch (e->bridge.load()) {
      case kRfbBridge:
        if (before != accessCode(access)) ++changed;
        break;
      case kOpaqueBridge:
        if (access == ViewerAccess::kViewOnly) {
          closeExchange(e);
          ++changed;
        }
        break;
      default: break;
    }
  }
  return changed;
}

ProxyStats SessionProxy::stats() const {
  ProxyStats s;
  s.requests = impl_->requests.load();
  s.rejected = impl_->rejected.load();
  s.bytes_to_upstream = impl_->bytes_up.load();
  s.bytes_to_client = impl_->bytes_down.load();
  s.open_tunnels = impl_->tunnels.load();
  s.input_dropped = impl_->input_dropped.load();
  s.buffers_in_use = impl_->buffers_in_use.load();
  return s;
}

}  // namespace kasm::net
