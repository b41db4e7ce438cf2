#pragma once

// Internal to kasm::net: the session proxy's shared state and the steps its translation units share.
// session_proxy.cpp routes, authorizes and keeps the public object; proxy_fast.cpp is the fast
// path for plain requests; proxy_beast.cpp relays everything else through Beast's parser;
// proxy_tunnel.cpp carries upgraded connections and opens the VNC bridge, whose RFB handshakes are
// proxy_rfb.cpp and whose relay, detached from the request once the handshakes are done, is
// vnc_bridge.cpp (over its own WebSocket framing, ws_frame.cpp); proxy_headers.cpp rewrites what
// crosses the proxy (tokens, cookies).

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kasm/net/http_server.hpp"
#include "kasm/net/session_proxy.hpp"
#include "net/net_detail.hpp"
#include "net/relay_buffer.hpp"

namespace kasm::net::detail {

// One proxied exchange, registered under its session so closeSession can cut it. The pointers are
// only dereferenced on the connection's strand while `alive`.
// Exchange::access and Exchange::bridge values.
inline constexpr std::uint8_t kAccessUnset = 0;
inline constexpr std::uint8_t kAccessFull = 1;
inline constexpr std::uint8_t kAccessViewOnly = 2;
inline constexpr std::uint8_t kNoBridge = 0;
inline constexpr std::uint8_t kOpaqueBridge = 1;
inline constexpr std::uint8_t kRfbBridge = 2;
inline std::uint8_t accessCode(ViewerAccess a) {
  return a == ViewerAccess::kViewOnly ? kAccessViewOnly : kAccessFull;
}

// closeViewer and setViewerAccess find a user's exchanges by `user`.
struct Exchange {
  Exchange(Executor ex, UserId u) : executor(std::move(ex)), user(std::move(u)) {}
  Executor executor;
  UserId user;
  Transport* client = nullptr;
  std::unique_ptr<Transport>* kept_upstream = nullptr;  // The connection's kept upstream slot.
  Transport* bridge_upstream = nullptr;                 // A VNC bridge's own upstream, while it runs.
  std::atomic<bool> alive{true};
  // Set when closeSession / closeViewer / closeUser asked it to close: the close runs on the
  // connection's executor and the exchange leaves the index only when the connection unwinds, so
  // until then it must not be counted (or closed) again.
  std::atomic<bool> closing{false};
  // A VNC bridge's viewer rights (kAccess* above): the target's when the bridge starts,
  // unless setViewerAccess spoke first; changed by setViewerAccess from any thread, read by the
  // bridge at each read of the browser.
  std::atomic<std::uint8_t> access{0};
  // The kind of VNC bridge running on this exchange (kNoBridge, kOpaqueBridge, kRfbBridge).
  std::atomic<std::uint8_t> bridge{0};
};

class ExchangeGuard;

// Kept on the client connection between keep-alive requests. It holds no relay buffer: those are
// taken while data flows (relay_buffer.hpp), so an idle connection costs a few hundred bytes here.
struct ConnectionState {
  std::unique_ptr<Transport> upstream;
  // The upstream's unparsed bytes (response heads, the start of a body); small, and shrunk again
  // after a large message (releaseIdleMemory).
  beast::flat_buffer upstream_buffer;
  std::string upstream_key;                    // protocol + address of `upstream`.
  std::string head_out;                        // The fast path's head being written.
  std::unique_ptr<MessageHead> response_head;  // The fast path's parsed upstream head.
  // The connection's registration under its session, kept across keep-alive requests to the
  // same session and user (so closeSession also cuts idle connections, and a request costs no
  // registration).
  std::unique_ptr<ExchangeGuard> guard;
  // Set by relayResponse when the upstream accepted an upgrade: serveProxied runs the tunnel once
  // the request's parsers and serializers are gone, so a tunnel that lives for hours holds none.
  bool tunnel_pending = false;
};

// Activity is rate-limited in whole seconds: the coarse deadline clock is precise enough.
inline std::int64_t steadyMillis() {
  return deadlineClockNs() / 1'000'000;
}

}  // namespace kasm::net::detail

namespace kasm::net {

struct SessionProxy::Impl {
  ProxyOptions options;
  // "Content-Security-Policy: ...\r\n" for the fast path's hand-written heads, built once.
  std::string csp_field;
  bool sandboxed_content = false;  // The policy sandboxes proxied pages.
  detail::asio::ssl::context upstream_tls{detail::asio::ssl::context::tls_client};

  std::atomic<std::uint64_t> requests{0}, rejected{0}, bytes_up{0}, bytes_down{0}, tunnels{0}, input_dropped{0};
  std::atomic<std::uint64_t> buffers_in_use{0};

  // A relay buffer of buffer_bytes for one burst of data (relay_buffer.hpp).
  detail::RelayBuffer relayBuffer() { return detail::RelayBuffer(options.buffer_bytes, buffers_in_use); }

  struct SessionEntry {
    std::unordered_map<std::uint64_t, std::shared_ptr<detail::Exchange>> open;
  };
  std::mutex mutex;
  std::uint64_t next_exchange = 0;
  std::unordered_map<SessionId, SessionEntry> sessions;
  // Last activity report per session. Kept apart from `sessions` (which forgets a session between
  // two keep-alive requests) so the rate limit holds across requests; pruned when it grows.
  std::unordered_map<SessionId, std::int64_t> reported_at;

  // The open exchanges of `session`, of `user` only when it is set.
  std::vector<std::shared_ptr<detail::Exchange>> exchangesOf(const SessionId& session, const UserId* user) {
    std::vector<std::shared_ptr<detail::Exchange>> out;
    std::lock_guard lock(mutex);
    auto it = sessions.find(session);
    if (it == sessions.end()) return out;
    for (auto& [id, e] : it->second.open) {
      if (e->closing.load()) continue;
      if (!user || e->user == *user) out.push_back(e);
    }
    return out;
  }

  std::uint64_t track(const SessionId& session, std::shared_ptr<detail::Exchange> exchange) {
    std::lock_guard lock(mutex);
    auto id = ++next_exchange;
    sessions[session].open.emplace(id, std::move(exchange));
    return id;
  }
  void untrack(const SessionId& session, std::uint64_t id) {
    std::lock_guard lock(mutex);
    auto it = sessions.find(session);
    if (it == sessions.end()) return;
    it->second.open.erase(id);
    if (it->second.open.empty()) sessions.erase(it);
  }
  // Session-wide rate limit for the activity callback.
  void activity(const SessionId& session, const UserId& user) {
    if (!options.on_activity) return;
    const auto now = detail::steadyMillis();
    {
      std::lock_guard lock(mutex);
      auto [it, inserted] = reported_at.try_emplace(session, now);
      if (!inserted) {
        if (now - it->second < options.activity_interval.count()) return;
        it->second = now;
      }
      if (reported_at.size() > 100000) {
        std::erase_if(reported_at, [&](const auto& e) { return now - e.second >= options.activity_interval.count(); });
      }
    }
    if (options.blocking_pool) {
      (void)options.blocking_pool->post([cb = options.on_activity, session, user] { cb(session, user); });
    } else {
      try {
        options.on_activity(session, user);
      } catch (...) {
        // A failed activity report costs one report, not the exchange that made it.
      }
    }
  }
};

}  // namespace kasm::net

namespace kasm::net::detail {

// Tracks one exchange for its lifetime and throttles activity reports locally, so the shared
// session map is touched at most once per interval per exchange rather than per chunk.
class ExchangeGuard {
 public:
  ExchangeGuard(SessionProxy::Impl& proxy, SessionId session, UserId user, std::shared_ptr<Exchange> exchange)
      : proxy_(proxy), session_(std::move(session)), user_(std::move(user)), exchange_(std::move(exchange)) {
    id_ = proxy_.track(session_, exchange_);
  }
  ~ExchangeGuard() {
    exchange_->alive = false;
    proxy_.untrack(session_, id_);
  }
  void clientTraffic(std::size_t n) {
    proxy_.bytes_up.fetch_add(n, std::memory_order_relaxed);
    touch();
  }
  void touch() {
    const auto now = steadyMillis();
    if (now - last_ms_ >= proxy_.options.activity_interval.count()) {
      last_ms_ = now;
      proxy_.activity(session_, user_);
    }
  }
  void upstreamTraffic(std::size_t n) { proxy_.bytes_down.fetch_add(n, std::memory_order_relaxed); }
  Exchange& exchange() { return *exchange_; }
  const SessionId& session() const { return session_; }
  const UserId& user() const { return user_; }
  bool isFor(const SessionId& session, const UserId& user) const { return session == session_ && user == user_; }

 private:
  SessionProxy::Impl& proxy_;
  SessionId session_;
  UserId user_;
  std::shared_ptr<Exchange> exchange_;
  std::uint64_t id_ = 0;
  std::int64_t last_ms_ = std::numeric_limits<std::int64_t>::min() / 2;
};

// ---- request routing and token handling (session_proxy.cpp, proxy_headers.cpp) ------------------

struct TokenSplit {
  std::string token;
  bool from_query = false;
  std::string query;  // The query without token parameters.
};

// Where a request goes: /prefix/<session>/<rest>?<query without the token>.
struct Route {
  SessionId session;
  std::string_view session_text;
  std::string_view rest;
  TokenSplit split;
};

struct Refusal {
  int status = 0;
  std::string message;
  HttpHeaders extra;
};

// The page a plain request to a VNC session's root gets (ProxyOptions::vnc_page), with the token
// cookie when the token came in the query; nullopt when there is none (the caller refuses).
std::optional<ProxyPage> vncPage(const SessionProxy::Impl& proxy, ClientContext& client, const Route& route,
                                 const ProxyAuthRequest& auth, const ProxyTarget& target,
                                 std::string_view cookie_token);
// Writes a page the proxy answers itself.
Awaitable<bool> answerPage(ClientContext& client, unsigned version, bool keep, ProxyPage page);

// A path below the session must stay below it (proxy_headers.cpp).
bool isSafeRest(std::string_view rest);
// Takes every `token` parameter out of the query; the first one is the token.
TokenSplit splitQueryToken(std::string_view query);
// Splits one Cookie header value: the first `name` cookie's value goes to `token` (when still
// empty), every other cookie to `kept` ("a=1; b=2") unless it is null. True when the value held a
// `name` cookie.
bool splitCookie(std::string_view v, std::string_view name, std::string& token, std::string* kept);

// ---- what a container may see and set (proxy_headers.cpp) ----------------------------------------

// A cookie only the control plane may see or set: the token cookie or one of strip_cookies.
bool isControlCookie(const ProxyOptions& options, std::string_view name);
// A request field that carries a control-plane credential: Authorization, or one of strip_headers.
bool isCredentialField(const ProxyOptions& options, std::string_view name);
// Appends the cookies of one Cookie value that the container may see ("a=1; b=2"), without the
// control plane's; returns false (and appends nothing) when none is left.
bool appendContainerCookies(std::string& out, std::string_view value, const ProxyOptions& options);

// Where a session's cookies must stay: "<prefix><session>/".
struct SessionPath {
  std::string_view prefix;
  std::string_view session;
};
// Appends one upstream Set-Cookie value, confined to the session: the Path attribute is put under
// the session's path (added when missing), Domain is dropped. Returns false (and appends nothing)
// for a cookie the container may not set: a control-plane cookie's name, or no name.
bool appendConfinedSetCookie(std::string& out, std::string_view value, const SessionPath& path,
                             const ProxyOptions& options);
// Whether a WebSocket upgrade from a page of `origin` may proceed: the request's own origin (the
// same host and port as `host`) or one of allowed_origins.
bool originAllowed(const ProxyOptions& options, std::string_view origin, std::string_view host);

// Removes the token cookie and the other control-plane cookies from every Cookie field and the
// credential fields (Authorization, strip_headers); returns the token cookie's value (first found).
template <class Fields>
std::string stripCredentials(Fields& fields, const ProxyOptions& options) {
  std::string token;
  std::vector<std::string> kept_headers;
  // Every Cookie field, in order: Beast keeps fields in arrival order, not grouped by name.
  for (const auto& f : fields) {
    if (f.name() != http::field::cookie) continue;
    const std::string_view value(f.value().data(), f.value().size());
    splitCookie(value, options.token_cookie, token, nullptr);
    std::string kept;
    if (appendContainerCookies(kept, value, options)) kept_headers.push_back(std::move(kept));
  }
  fields.erase(http::field::cookie);
  for (auto& k : kept_headers) fields.insert(http::field::cookie, k);
  fields.erase(http::field::authorization);
  for (const auto& name : options.strip_headers) fields.erase(name);
  return token;
}

// Splits and checks the target; false with `refusal` filled when the proxy answers by itself.
bool routeTarget(const SessionProxy::Impl& proxy, std::string_view target, Route& route, Refusal& refusal);
Refusal authRefusal(const Error& error);
// Runs the authorizer, on the blocking pool when one is configured, resuming on our strand.
Awaitable<Result<ProxyTarget>> authorize(SessionProxy::Impl& proxy, const ProxyAuthRequest& request);

// Runs a copy of `fn` (returning Result<T>) on `pool` and resumes on the calling connection's
// thread. Unavailable (`busy`) when the pool refuses the work. `fn` must own what it uses: the
// connection may be gone by the time it runs. Pass a named local: GCC 12 mishandles a temporary
// closure that lives across the co_await.
template <class T, class Fn>
Awaitable<Result<T>> onPool(BlockingPool& pool, const Fn& fn, std::string_view busy) {
  struct Box {
    std::mutex mutex;
    std::optional<Result<T>> result;
    std::shared_ptr<asio::steady_timer> timer;
  };
  auto box = std::make_shared<Box>();
  box->timer =
      std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
  auto posted = pool.post([box, fn]() mutable {
    auto result = fn();
    {
      std::lock_guard lock(box->mutex);
      box->result.emplace(std::move(result));
    }
    auto timer = box->timer;
    asio::post(timer->get_executor(), [timer] { timer->cancel(); });
  });
  if (!posted.ok()) co_return unavailable(std::string(busy));
  for (;;) {
    {
      std::lock_guard lock(box->mutex);
      if (box->result) co_return std::move(*box->result);
    }
    co_await box->timer->async_wait(kAwaitTuple);
  }
}

// As onPool, on the proxy's blocking pool when one is configured, else right here.
template <class T, class Fn>
Awaitable<Result<T>> onBlockingPool(SessionProxy::Impl& proxy, const Fn& fn, std::string_view busy) {
  if (!proxy.options.blocking_pool) co_return fn();
  co_return co_await onPool<T>(*proxy.options.blocking_pool, fn, busy);
}
// The connection's proxy state, and its registration under `session` for `user`.
ExchangeGuard& attachExchange(SessionProxy::Impl& proxy, ClientContext& client, const SessionId& session,
                              const UserId& user);
// A token that came in the query is handed back as a cookie scoped to the session, so the page's
// own requests (scripts, images, WebSockets) carry it.
void addTokenCookie(const SessionProxy::Impl& proxy, ClientContext& client, const Route& route,
                    std::string_view cookie_token, HttpHeaders& response_extra);

// ---- answering and upstream connections (session_proxy.cpp) ------------------------------------

// Answers a request the proxy refuses; the connection is kept when `keep`.
Awaitable<bool> refuse(SessionProxy::Impl& proxy, ClientContext& client, unsigned version, bool keep, int status,
                       std::string message, const HttpHeaders* extra = nullptr);
Awaitable<bool> reject(SessionProxy::Impl& proxy, ClientContext& client, HeaderParser& parser, int status,
                       std::string message, const HttpHeaders* extra = nullptr);
Awaitable<beast::error_code> connectUpstream(SessionProxy::Impl& proxy, Transport& up, const ProxyTarget& target);
// Reuses the connection's kept upstream when it leads to the same place, else connects a new one.
// `reused` says which, for the retry of a request that met a kept connection the upstream had
// closed.
Awaitable<beast::error_code> ensureUpstream(SessionProxy::Impl& proxy, ClientContext& client, ConnectionState& state,
                                            const ProxyTarget& target, bool& reused);
bool closedByPeer(const beast::error_code& ec);

// ---- the Beast path (proxy_beast.cpp), also the fast path's fallback for complex responses -------

// The upstream's response, its header parsed into `resp`, relayed to the client (and, for an
// accepted upgrade, the tunnel that follows). Returns whether the client connection may be reused.
Awaitable<bool> relayResponse(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                              ConnectionState& state, ExchangeGuard& guard,
                              http::response_parser<http::buffer_body>& resp, unsigned client_version,
                              bool client_keep_alive, bool is_head, bool upgrade, const HttpHeaders& response_extra,
                              const SessionPath& path);
// Reads the upstream's response header into `resp`, first passing interim responses (1xx other
// than 101) on to an HTTP/1.1 client (RFC 9110 15.2): taken for the final one, they would leave
// the real answer to be read as the next request's. `answered` says whether any came, so a
// connection that answered is not retried as a stale one.
Awaitable<beast::error_code> readFinalHeader(SessionProxy::Impl& proxy, ClientContext& client, ConnectionState& state,
                                             std::optional<http::response_parser<http::buffer_body>>& resp,
                                             unsigned client_version, bool is_head, bool& answered);

// ---- tunnels (proxy_tunnel.cpp) ------------------------------------------------------------------

// After a 101 from the upstream: sends on what each side already buffered, then copies bytes both
// ways until either side closes.
Awaitable<> tunnelUpgraded(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                           ConnectionState& state, ExchangeGuard& guard);
// A plain request to ProxyOptions::app_request_path, answered by the embedder (proxy_app_request.cpp).
bool isAppRequest(const SessionProxy::Impl& proxy, std::string_view rest);
Awaitable<bool> serveAppRequest(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                                HeaderParser& parser, const Route& route, const ProxyAuthRequest& auth,
                                const ProxyTarget& target);
// The HTTP status of an authorization error.
int authStatus(ErrorCode code);

// An upgrade to ProxyOptions::app_socket_path: the proxy's own WebSocket (proxy_socket.cpp).
Awaitable<bool> serveAppSocket(SessionProxy::Impl& proxy, ClientContext& client, HeaderParser& parser,
                               ExchangeGuard& guard, const ProxyAuthRequest& auth, const ProxyTarget& target,
                               const ProxySocketOpener& opener);
// A VNC session: accepts the client's WebSocket and bridges its binary messages to the raw TCP port.
// Once the handshakes are done the connection is handed to a VncBridge (client.handed_over), and
// this returns false at once.
Awaitable<bool> bridgeVnc(SessionProxy::Impl& proxy, ClientContext& client, HeaderParser& parser,
                          ConnectionState& state, ExchangeGuard& guard, const ProxyTarget& target);

}  // namespace kasm::net::detail
