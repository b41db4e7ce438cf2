// SessionProxy: per request, parse /prefix/<session>/<rest>, refuse traversal, take the token out,
// authorize, then stream the exchange to the upstream (HTTP relay with buffer_body, raw tunnel after
// a 101, or a WebSocket<->TCP bridge for VNC). Every copy of data goes through one fixed buffer per
// direction, and a direction reads again only once its previous chunk has been written
// (backpressure).

#include "kasm/net/session_proxy.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/websocket.hpp>
#include <limits>
#include <unordered_map>

#include "kasm/net/http_server.hpp"
#include "net/net_detail.hpp"
#include "net/stream_io.hpp"

namespace kasm::net::detail {

// Beast's WebSocket timeout and teardown paths close the lowest layer through these (ADL).
void beast_close_socket(Transport& t) {
  t.close();
}

// WebSocket closing handshake on our Transport: close the socket (Beast finds these through ADL).
void teardown(beast::role_type, Transport& t, beast::error_code& ec) {
  t.close();
  ec = {};
}
template <class Handler>
void async_teardown(beast::role_type, Transport& t, Handler&& handler) {
  t.close();
  asio::post(t.get_executor(), beast::bind_front_handler(std::forward<Handler>(handler), beast::error_code{}));
}

}  // namespace kasm::net::detail

namespace kasm::net {

using namespace detail;
using namespace asio::experimental::awaitable_operators;
namespace websocket = beast::websocket;

namespace {
// One proxied exchange, registered under its session so closeSession can cut it. The pointers are
// only dereferenced on the connection's strand while `alive`.
struct Exchange {
  explicit Exchange(Executor ex) : executor(std::move(ex)) {}
  Executor executor;
  Transport* client = nullptr;
  std::unique_ptr<Transport>* kept_upstream = nullptr;  // The connection's kept upstream slot.
  Transport* bridge_upstream = nullptr;                 // A VNC bridge's own upstream, while it runs.
  std::atomic<bool> alive{true};
};

class ExchangeGuard;

// Kept on the client connection between keep-alive requests.
struct ConnectionState {
  std::vector<char> to_upstream;
  std::vector<char> to_client;
  std::unique_ptr<Transport> upstream;
  beast::flat_buffer upstream_buffer;
  std::string upstream_key;                    // protocol + address of `upstream`.
  std::string head_out;                        // The fast path's head being written.
  std::unique_ptr<MessageHead> response_head;  // The fast path's parsed upstream head.
  // The connection's registration under its session, kept across keep-alive requests to the
  // same session and user (so closeSession also cuts idle connections, and a request costs no
  // registration).
  std::unique_ptr<ExchangeGuard> guard;
};

// Activity is rate-limited in whole seconds: the coarse deadline clock is precise enough.
std::int64_t steadyMillis() {
  return deadlineClockNs() / 1'000'000;
}
}  // namespace

struct SessionProxy::Impl {
  ProxyOptions options;
  asio::ssl::context upstream_tls{asio::ssl::context::tls_client};

  std::atomic<std::uint64_t> requests{0}, rejected{0}, bytes_up{0}, bytes_down{0}, tunnels{0};

  struct SessionEntry {
    std::unordered_map<std::uint64_t, std::shared_ptr<Exchange>> open;
  };
  std::mutex mutex;
  std::uint64_t next_exchange = 0;
  std::unordered_map<SessionId, SessionEntry> sessions;
  // Last activity report per session. Kept apart from `sessions` (which forgets a session between
  // two keep-alive requests) so the rate limit holds across requests; pruned when it grows.
  std::unordered_map<SessionId, std::int64_t> reported_at;

  std::uint64_t track(const SessionId& session, std::shared_ptr<Exchange> exchange) {
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
    const auto now = steadyMillis();
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
      options.on_activity(session, user);
    }
  }
};

namespace {

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
  bool isFor(const SessionId& session, const UserId& user) const { return session == session_ && user == user_; }

 private:
  SessionProxy::Impl& proxy_;
  SessionId session_;
  UserId user_;
  std::shared_ptr<Exchange> exchange_;
  std::uint64_t id_ = 0;
  std::int64_t last_ms_ = std::numeric_limits<std::int64_t>::min() / 2;
};

// A path below the session must stay below it: no "." or ".." segment, raw or percent-encoded, no
// backslash, no encoded '/' or NUL that an upstream might decode into a separator.
bool isSafeRest(std::string_view rest) {
  std::size_t pos = 0;
  while (pos <= rest.size()) {
    auto next = rest.find('/', pos);
    std::string_view seg = rest.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos);
    if (seg.find('\\') != std::string_view::npos) return false;
    if (seg.find('%') == std::string_view::npos) {
      if (seg == "." || seg == "..") return false;
    } else {
      auto decoded = percentDecode(seg);
      if (!decoded.ok()) return false;
      if (*decoded == "." || *decoded == "..") return false;
      if (decoded->find_first_of(std::string_view("/\\\0", 3)) != std::string::npos) return false;
    }
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return true;
}

struct TokenSplit {
  std::string token;
  bool from_query = false;
  std::string query;  // The query without token parameters.
};

// Takes every `token` parameter out of the query; the first one is the token.
TokenSplit splitQueryToken(std::string_view query) {
  TokenSplit out;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = part.find('=');
    if (part.substr(0, eq) == "token") {
      if (!out.from_query && eq != std::string_view::npos) {
        const std::string_view raw = part.substr(eq + 1);
        if (raw.find_first_of("%+") == std::string_view::npos) {  // Nothing to decode (the usual token).
          out.token.assign(raw);
          out.from_query = true;
          continue;
        }
        auto decoded = percentDecode(raw, true);
        if (decoded.ok()) {
          out.token = std::move(*decoded);
          out.from_query = true;
        }
      }
      continue;
    }
    if (!out.query.empty()) out.query.push_back('&');
    out.query.append(part);
  }
  return out;
}

// Splits one Cookie header value: the first `name` cookie's value goes to `token` (when still
// empty), every other cookie to `kept` ("a=1; b=2") unless it is null. True when the value held a
// `name` cookie.
bool splitCookie(std::string_view v, std::string_view name, std::string& token, std::string* kept) {
  bool found = false;
  while (!v.empty()) {
    auto semi = v.find(';');
    std::string_view c = v.substr(0, semi);
    v = semi == std::string_view::npos ? std::string_view{} : v.substr(semi + 1);
    while (!c.empty() && c.front() == ' ') c.remove_prefix(1);
    if (c.empty()) continue;
    auto eq = c.find('=');
    if (eq != std::string_view::npos && c.substr(0, eq) == name) {
      found = true;
      if (token.empty()) token = std::string(c.substr(eq + 1));
      continue;
    }
    if (!kept) continue;
    if (!kept->empty()) kept->append("; ");
    kept->append(c);
  }
  return found;
}

// Removes the token cookie from every Cookie header, returning its value (first found).
template <class Fields>
std::string stripTokenCookie(Fields& fields, std::string_view name) {
  std::string token;
  std::vector<std::string> kept_headers;
  for (auto it = fields.find(http::field::cookie); it != fields.end() && it->name() == http::field::cookie; ++it) {
    std::string kept;
    splitCookie(std::string_view(it->value().data(), it->value().size()), name, token, &kept);
    if (!kept.empty()) kept_headers.push_back(std::move(kept));
  }
  fields.erase(http::field::cookie);
  for (auto& k : kept_headers) fields.insert(http::field::cookie, k);
  return token;
}

// Hop-by-hop fields (RFC 9110 7.6.1) plus those named in Connection; `keep_upgrade` keeps the
// Upgrade mechanism for a WebSocket handshake.
template <class Fields>
void stripHopByHop(Fields& fields, bool keep_upgrade) {
  std::vector<std::string> named;
  for (auto it = fields.find(http::field::connection); it != fields.end() && it->name() == http::field::connection;
       ++it) {
    for (auto token : http::token_list{it->value()}) named.emplace_back(token);
  }
  std::string upgrade;
  if (keep_upgrade) upgrade = std::string(fields[http::field::upgrade]);
  for (const auto& n : named) fields.erase(n);
  for (auto f : {http::field::connection, http::field::keep_alive, http::field::proxy_connection,
                 http::field::proxy_authenticate, http::field::proxy_authorization, http::field::te,
                 http::field::trailer, http::field::transfer_encoding, http::field::upgrade}) {
    fields.erase(f);
  }
  if (keep_upgrade && !upgrade.empty()) {
    fields.set(http::field::connection, "Upgrade");
    fields.set(http::field::upgrade, upgrade);
  }
}

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
    if (auto quick = proxy.options.authorize_quick(request)) co_return std::move(*quick);
  }
  if (!proxy.options.blocking_pool) co_return proxy.options.authorize(request);
  struct Box {
    std::mutex mutex;
    std::optional<Result<ProxyTarget>> result;
    std::shared_ptr<asio::steady_timer> timer;
  };
  auto box = std::make_shared<Box>();
  box->timer =
      std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
  // The pool outlives the call; copy what the request views into owned strings.
  auto posted =
      proxy.options.blocking_pool->post([&proxy, box, session = request.session, token = std::string(request.token),
                                         upgrade = request.upgrade, remote = std::string(request.remote_address)] {
        ProxyAuthRequest r{session, token, upgrade, remote};
        auto result = proxy.options.authorize(r);
        {
          std::lock_guard lock(box->mutex);
          box->result.emplace(std::move(result));
        }
        auto timer = box->timer;
        asio::post(timer->get_executor(), [timer] { timer->cancel(); });
      });
  if (!posted.ok()) co_return unavailable("proxy: the authorization pool is busy");
  for (;;) {
    {
      std::lock_guard lock(box->mutex);
      if (box->result) co_return std::move(*box->result);
    }
    co_await box->timer->async_wait(kAwaitTuple);
  }
}

Awaitable<beast::error_code> connectUpstream(SessionProxy::Impl& proxy, Transport& up, const ProxyTarget& target) {
  std::string host, port;
  if (!parseUpstream(target.upstream, host, port)) co_return asio::error::invalid_argument;
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
  if (target.protocol == SessionProtocol::kHttps) {
    up.enableTls(proxy.upstream_tls);
    auto [hec] = co_await up.tls()->async_handshake(asio::ssl::stream_base::client, kAwaitTuple);
    if (hec) co_return hec;
  }
  co_return beast::error_code{};
}

// Moves a message from `in` to `out` through `buf`: the header goes out with the first piece of the
// body (one write for a small message), then each piece as it arrives (read_some, so a streamed
// body such as server-sent events is not held back until the buffer fills).
template <bool isRequest, class CountFn>
Awaitable<beast::error_code> relayBody(Transport& in, beast::flat_buffer& in_buffer,
                                       http::parser<isRequest, http::buffer_body>& p, Transport& out,
                                       http::serializer<isRequest, http::buffer_body>& sr, std::vector<char>& buf,
                                       Duration timeout, CountFn count) {
  do {
    if (!p.is_done()) {
      p.get().body().data = buf.data();
      p.get().body().size = buf.size();
      in.tcp().expires_after(timeout);
      auto ec = co_await parseSome(in, in_buffer, p);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return ec;
      const std::size_t got = buf.size() - p.get().body().size;
      count(got);
      p.get().body().size = got;
      // An empty piece must not reach the serializer as an empty buffer: chunked framing would
      // encode it as the last chunk. A null buffer means "nothing yet" (need_buffer).
      p.get().body().data = got > 0 ? buf.data() : nullptr;
      p.get().body().more = !p.is_done();
    } else {
      p.get().body().data = nullptr;
      p.get().body().size = 0;
    }
    out.tcp().expires_after(timeout);
    auto ec = co_await writeMessage(out, sr);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return ec;
  } while (!p.is_done() && !sr.is_done());
  co_return beast::error_code{};
}

// Copies `in` to `out` until either side ends, then closes both.
template <class CountFn>
Awaitable<> pump(Transport& in, Transport& out, std::vector<char>& buf, CountFn count) {
  for (;;) {
    auto [ec, n] = co_await in.async_read_some(asio::buffer(buf), kAwaitTuple);
    if (ec) break;
    count(n);
    // Most messages go out whole at once; only the rest, if any, waits for the socket.
    std::size_t sent = 0;
    if (!out.secure()) {
      beast::error_code sec;
      sent = out.tcp().writeSomeNow(asio::buffer(buf.data(), n), sec);
      if (sec && sec != asio::error::would_block) break;
    }
    if (sent < n) {
      if (auto wec = co_await writeAll(out, asio::buffer(buf.data() + sent, n - sent)); wec) break;
    }
  }
  in.close();
  out.close();
}

// Answers a request the proxy refuses; the connection is kept when `keep`.
Awaitable<bool> refuse(SessionProxy::Impl& proxy, ClientContext& client, unsigned version, bool keep, int status,
                       std::string message, const HttpHeaders* extra = nullptr) {
  proxy.rejected.fetch_add(1, std::memory_order_relaxed);
  keep = keep && !client.stopping.load();
  client.transport.tcp().expires_after(std::chrono::seconds(5));
  co_await writeSimple(client.transport, version, status, std::move(message) + "\n", keep, extra);
  co_return keep;
}

Awaitable<bool> reject(SessionProxy::Impl& proxy, ClientContext& client, HeaderParser& parser, int status,
                       std::string message, const HttpHeaders* extra = nullptr) {
  const auto& req = parser.get();
  // An unread body would be parsed as the next request: close instead of keeping the connection.
  const bool has_body = req.chunked() || (parser.content_length() && *parser.content_length() > 0);
  co_return co_await refuse(proxy, client, req.version(), req.keep_alive() && !has_body, status, std::move(message),
                            extra);
}

// noVNC asks for the "binary" subprotocol (websockify's name); echo it when offered.
bool offersBinary(const http::request<http::empty_body>& req) {
  auto it = req.find(http::field::sec_websocket_protocol);
  if (it == req.end()) return false;
  for (auto p : http::token_list{it->value()}) {
    if (p == "binary") return true;
  }
  return false;
}

Awaitable<bool> bridgeVnc(SessionProxy::Impl& proxy, ClientContext& client, HeaderParser& parser,
                          ConnectionState& state, ExchangeGuard& guard, const ProxyTarget& target) {
  Transport upstream(client.transport.get_executor());
  // closeSession may cut the bridge while it runs; never after `upstream` is gone.
  struct BridgeRegistration {
    Exchange& exchange;
    ~BridgeRegistration() { exchange.bridge_upstream = nullptr; }
  } registration{guard.exchange()};
  guard.exchange().bridge_upstream = &upstream;
  if (auto ec = co_await connectUpstream(proxy, upstream, target); ec) {
    co_return co_await reject(proxy, client, parser, 502,
                              "proxy: the session's VNC port does not answer: " + ec.message());
  }
  upstream.tcp().expires_never();
  client.transport.tcp().expires_never();

  websocket::stream<Transport&> ws(client.transport);
  const bool binary = offersBinary(parser.get());
  ws.set_option(websocket::stream_base::decorator([binary](websocket::response_type& res) {
    if (binary) res.set(http::field::sec_websocket_protocol, "binary");
  }));
  ws.binary(true);
  ws.auto_fragment(false);
  auto [aec] = co_await ws.async_accept(parser.get(), kAwaitTuple);
  if (aec) co_return false;

  proxy.tunnels.fetch_add(1);
  auto browser_to_vnc = [&]() -> Awaitable<> {
    for (;;) {
      auto [ec, n] = co_await ws.async_read_some(asio::buffer(state.to_upstream), kAwaitTuple);
      if (ec) break;
      guard.clientTraffic(n);
      if (auto wec = co_await writeAll(upstream, asio::buffer(state.to_upstream.data(), n)); wec) break;
    }
    upstream.close();
    client.transport.close();
  };
  auto vnc_to_browser = [&]() -> Awaitable<> {
    for (;;) {
      auto [ec, n] = co_await upstream.async_read_some(asio::buffer(state.to_client), kAwaitTuple);
      if (ec) break;
      guard.upstreamTraffic(n);
      auto [wec, w] = co_await ws.async_write(asio::buffer(state.to_client.data(), n), kAwaitTuple);
      if (wec) break;
    }
    upstream.close();
    client.transport.close();
  };
  co_await (browser_to_vnc() && vnc_to_browser());
  proxy.tunnels.fetch_sub(1);
  co_return false;
}

// Reuses the connection's kept upstream when it leads to the same place, else connects a new one.
// `reused` says which, for the retry of a request that met a kept connection the upstream had
// closed.
Awaitable<beast::error_code> ensureUpstream(SessionProxy::Impl& proxy, ClientContext& client, ConnectionState& state,
                                            const ProxyTarget& target, bool& reused) {
  const auto protocol = enumName(target.protocol);
  const bool same = state.upstream_key.size() == protocol.size() + 1 + target.upstream.size() &&
                    state.upstream_key.starts_with(protocol) && state.upstream_key.ends_with(target.upstream);
  reused = state.upstream && same && state.upstream->tcp().socket().is_open();
  if (reused) co_return beast::error_code{};
  state.upstream = std::make_unique<Transport>(client.transport.get_executor());
  state.upstream_buffer.clear();
  state.upstream_buffer.reserve(proxy.options.buffer_bytes);
  state.upstream_key.assign(protocol).append("|").append(target.upstream);
  auto ec = co_await connectUpstream(proxy, *state.upstream, target);
  if (ec) state.upstream.reset();
  co_return ec;
}

bool closedByPeer(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == http::error::partial_message || ec == asio::error::broken_pipe;
}

// The upstream's response, its header parsed into `resp`, relayed to the client (and, for an
// accepted upgrade, the tunnel that follows). Returns whether the client connection may be reused.
Awaitable<bool> relayResponse(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                              ConnectionState& state, ExchangeGuard& guard,
                              http::response_parser<http::buffer_body>& resp, unsigned client_version,
                              bool client_keep_alive, bool is_head, bool upgrade, const HttpHeaders& response_extra) {
  Transport& up = *state.upstream;
  const Duration timeout = proxy.options.upstream_timeout;
  auto& res = resp.get();
  const bool switching = upgrade && res.result() == http::status::switching_protocols;
  const bool upstream_keep_alive = res.keep_alive();
  const bool res_chunked = res.chunked();
  const bool has_length = resp.content_length().has_value();
  stripHopByHop(res, switching);
  for (const auto& [k, v] : response_extra.fields()) res.insert(k, v);
  res.version(client_version);
  bool keep = client_keep_alive && !client.stopping.load() && !switching;
  if (res_chunked) {
    res.chunked(true);
  } else if (!has_length && !resp.is_done() && !is_head) {
    // A body delimited by the upstream closing: re-frame it as chunked for HTTP/1.1 clients so
    // their connection survives; HTTP/1.0 clients get it delimited by our close.
    if (client_version >= 11)
      res.chunked(true);
    else
      keep = false;
  }
  if (!switching) res.keep_alive(keep);

  // Response: the header with the first piece of the body (a 101 has none), then the rest.
  http::response_serializer<http::buffer_body> res_sr{res};
  res.body().data = nullptr;
  res.body().more = !resp.is_done();
  if (auto ec = co_await relayBody(up, state.upstream_buffer, resp, client.transport, res_sr, state.to_client, timeout,
                                   [&](std::size_t n) { guard.upstreamTraffic(n); });
      ec) {
    state.upstream.reset();
    co_return false;
  }

  if (switching) {
    // WebSocket (or another upgrade) accepted by the upstream: from here on bytes are opaque.
    // Send on whatever each side already buffered, then pump both ways until either closes.
    auto& client_t = client.transport;
    if (buffer.size() > 0) {
      guard.clientTraffic(buffer.size());
      if (co_await writeAll(up, buffer.data())) co_return false;
      buffer.consume(buffer.size());
    }
    if (state.upstream_buffer.size() > 0) {
      if (co_await writeAll(client_t, state.upstream_buffer.data())) co_return false;
      state.upstream_buffer.consume(state.upstream_buffer.size());
    }
    up.tcp().expires_never();
    client_t.tcp().expires_never();
    proxy.tunnels.fetch_add(1);
    co_await (pump(client_t, up, state.to_upstream, [&](std::size_t n) { guard.clientTraffic(n); }) &&
              pump(up, client_t, state.to_client, [&](std::size_t n) { guard.upstreamTraffic(n); }));
    proxy.tunnels.fetch_sub(1);
    state.upstream.reset();
    co_return false;
  }

  if (!upstream_keep_alive || !resp.is_done()) state.upstream.reset();
  co_return keep;
}

// Reads the upstream's response header into `resp`, first passing interim responses (1xx other
// than 101) on to an HTTP/1.1 client (RFC 9110 15.2): taken for the final one, they would leave
// the real answer to be read as the next request's. `answered` says whether any came, so a
// connection that answered is not retried as a stale one.
Awaitable<beast::error_code> readFinalHeader(SessionProxy::Impl& proxy, ClientContext& client, ConnectionState& state,
                                             std::optional<http::response_parser<http::buffer_body>>& resp,
                                             unsigned client_version, bool is_head, bool& answered) {
  Transport& up = *state.upstream;
  answered = false;
  for (;;) {
    resp.emplace();
    resp->body_limit(boost::none);
    if (is_head) resp->skip(true);
    up.tcp().expires_after(proxy.options.upstream_timeout);
    if (auto ec = co_await parseHeader(up, state.upstream_buffer, *resp); ec) co_return ec;
    const unsigned status = resp->get().result_int();
    if (status >= 200 || status == 101) co_return beast::error_code{};
    answered = true;
    if (client_version < 11) continue;
    http::response<http::empty_body> interim{resp->get().result(), 11};
    for (const auto& f : resp->get()) interim.insert(f.name_string(), f.value());
    stripHopByHop(interim, false);
    http::response_serializer<http::empty_body> sr{interim};
    client.transport.tcp().expires_after(proxy.options.upstream_timeout);
    if (auto ec = co_await writeMessage(client.transport, sr); ec) co_return ec;
  }
}

Awaitable<bool> forwardHttp(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                            HeaderParser& parser, ConnectionState& state, ExchangeGuard& guard,
                            const ProxyTarget& target, std::string upstream_target, bool upgrade,
                            const HttpHeaders& response_extra) {
  const unsigned client_version = parser.get().version();
  const bool client_keep_alive = parser.get().keep_alive();
  const bool is_head = parser.get().method() == http::verb::head;
  bool expect_continue = false;
  if (auto it = parser.get().find(http::field::expect); it != parser.get().end()) {
    expect_continue = equalsIgnoreCase(it->value(), "100-continue");
  }

  http::request_parser<http::buffer_body> rp{std::move(parser)};
  rp.body_limit(boost::none);  // Streamed, never held whole.
  auto& req = rp.get();
  const bool chunked = req.chunked();
  stripHopByHop(req, upgrade);
  req.erase(http::field::expect);
  if (chunked) req.chunked(true);
  req.target(upstream_target);
  req.version(11);
  if (!upgrade) req.keep_alive(true);
  {
    std::string xff(req["X-Forwarded-For"]);
    if (!xff.empty()) xff.append(", ");
    xff.append(client.remote_address);
    req.set("X-Forwarded-For", xff);
    req.set("X-Forwarded-Proto", client.transport.secure() ? "https" : "http");
    if (auto host = req.find(http::field::host); host != req.end()) req.set("X-Forwarded-Host", host->value());
  }

  // The same for an upload's body, read through the client connection's buffer.
  if (!rp.is_done()) buffer.reserve(proxy.options.buffer_bytes);
  const Duration timeout = proxy.options.upstream_timeout;
  // A kept upstream connection may have been closed by the upstream since the last request; a
  // request that is safe to repeat and has no body is then sent once more on a fresh connection
  // (RFC 9110 9.2.2), instead of failing the client.
  const auto method = req.method();
  const bool retryable =
      rp.is_done() && (method == http::verb::get || method == http::verb::head || method == http::verb::options);
  std::optional<http::response_parser<http::buffer_body>> resp;
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    if (auto ec = co_await ensureUpstream(proxy, client, state, target, reused); ec) {
      // The request has been consumed only up to its header; close if a body follows.
      co_return co_await refuse(proxy, client, client_version, client_keep_alive && rp.is_done(), 502,
                                "proxy: the session does not answer: " + ec.message());
    }
    Transport& up = *state.upstream;

    if (expect_continue && !rp.is_done()) {
      http::response<http::empty_body> cont{http::status::continue_, client_version};
      client.transport.tcp().expires_after(timeout);
      co_await http::async_write(client.transport, cont, kAwait);
      expect_continue = false;
    }

    // Request: the header with the first piece of the body, then the rest as it arrives.
    http::request_serializer<http::buffer_body> req_sr{req};
    req.body().data = nullptr;
    req.body().more = !rp.is_done();
    if (auto ec = co_await relayBody(client.transport, buffer, rp, up, req_sr, state.to_upstream, timeout,
                                     [&](std::size_t n) { guard.clientTraffic(n); });
        ec) {
      state.upstream.reset();
      if (reused && retryable && attempt == 0) continue;
      co_return false;
    }
    guard.touch();  // The request itself is activity, even without a body.

    bool answered = false;
    auto rec = co_await readFinalHeader(proxy, client, state, resp, client_version, is_head, answered);
    if (!rec) break;
    state.upstream.reset();
    if (reused && !answered && retryable && attempt == 0 && closedByPeer(rec)) continue;
    co_return co_await refuse(proxy, client, client_version, false, 502, "proxy: bad or no response from the session");
  }
  co_return co_await relayResponse(proxy, client, buffer, state, guard, *resp, client_version, client_keep_alive,
                                   is_head, upgrade, response_extra);
}

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

// The connection's proxy state, and its registration under `session` for `user`.
ExchangeGuard& attachExchange(SessionProxy::Impl& proxy, ClientContext& client, const SessionId& session,
                              const UserId& user) {
  if (!client.proxy_state) {
    auto s = std::make_shared<ConnectionState>();
    s->to_upstream.resize(proxy.options.buffer_bytes);
    s->to_client.resize(proxy.options.buffer_bytes);
    // Beast reads a body in pieces of the buffer's free capacity (at least 512 bytes): without
    // room, a large response would be relayed 512 bytes at a time.
    s->upstream_buffer.reserve(proxy.options.buffer_bytes);
    client.proxy_state = s;
  }
  auto& state = *static_cast<ConnectionState*>(client.proxy_state.get());
  if (!state.guard || !state.guard->isFor(session, user)) {
    state.guard.reset();
    auto exchange = std::make_shared<Exchange>(client.transport.get_executor());
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
  response_extra.add("Set-Cookie", proxy.options.token_cookie + "=" + route.split.token +
                                       "; Path=" + proxy.options.prefix + std::string(route.session_text) +
                                       "/; HttpOnly; SameSite=Lax" + (client.transport.secure() ? "; Secure" : ""));
}

// ---- fast path: a plain request without a body (see http_scan.hpp) -------------------------------

constexpr std::string_view kHopByHop[] = {
    "Connection", "Keep-Alive",        "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "TE",
    "Trailer",    "Transfer-Encoding", "Upgrade"};

bool isHopByHop(std::string_view name) {
  for (auto h : kHopByHop) {
    if (equalsIgnoreCase(name, h)) return true;
  }
  return false;
}

// Hop-by-hop fields of a head: the standard ones and those its Connection fields name.
class HopByHop {
 public:
  explicit HopByHop(const MessageHead& head) : head_(head) {
    for (std::size_t i = 0; i < head.field_count; ++i) {
      if (equalsIgnoreCase(head.fields[i].name, "Connection")) has_connection_ = true;
    }
  }
  bool operator()(std::string_view name) const {
    if (isHopByHop(name)) return true;
    if (!has_connection_) return false;
    for (std::size_t i = 0; i < head_.field_count; ++i) {
      if (equalsIgnoreCase(head_.fields[i].name, "Connection") && listHasToken(head_.fields[i].value, name))
        return true;
    }
    return false;
  }

 private:
  const MessageHead& head_;
  bool has_connection_ = false;
};

bool keepAliveOf(const MessageHead& head) {
  bool close = false, keep_alive = false;
  for (std::size_t i = 0; i < head.field_count; ++i) {
    if (!equalsIgnoreCase(head.fields[i].name, "Connection")) continue;
    close = close || listHasToken(head.fields[i].value, "close");
    keep_alive = keep_alive || listHasToken(head.fields[i].value, "keep-alive");
  }
  return head.version >= 11 ? !close : keep_alive && !close;
}

void appendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

// The status line and the end-to-end fields of an upstream head, for the client (without the blank
// line, so callers can add fields).
void appendResponseHead(std::string& out, unsigned client_version, const MessageHead& rh) {
  out.append(client_version >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ")
      .append(std::to_string(rh.status))
      .append(" ")
      .append(rh.reason)
      .append("\r\n");
  const HopByHop hop(rh);
  for (std::size_t i = 0; i < rh.field_count; ++i) {
    if (!hop(rh.fields[i].name)) appendField(out, rh.fields[i].name, rh.fields[i].value);
  }
}

// The response length when the fast path can relay it: a single valid Content-Length, or a
// response that has no body by its status or the request's method.
std::optional<std::size_t> simpleResponseLength(const MessageHead& head, bool is_head) {
  if (head.status < 200 || head.find("Transfer-Encoding")) return std::nullopt;
  std::optional<std::size_t> length;
  for (std::size_t i = 0; i < head.field_count; ++i) {
    if (!equalsIgnoreCase(head.fields[i].name, "Content-Length")) continue;
    std::size_t n = 0;
    if (length || !parseLength(head.fields[i].value, n)) return std::nullopt;  // Repeated or malformed.
    length = n;
  }
  if (is_head || head.status == 204 || head.status == 304) return 0;
  return length;
}

// The upstream response head read into `head` (the bytes stay in upstream_buffer).
Awaitable<std::pair<beast::error_code, ScanResult>> readResponseHead(SessionProxy::Impl& proxy, Transport& up,
                                                                     beast::flat_buffer& b, MessageHead& head) {
  constexpr std::size_t kMaxHead = 64 * 1024;
  up.tcp().expires_after(proxy.options.upstream_timeout);
  // The request has just been written, so nothing is due before its response: wait for
  // readiness, then read without blocking, instead of a read attempt that fails first. (Asio
  // re-arms the descriptor for a wait, so bytes that arrived earlier are still reported.) After a
  // read that filled the room, read again at once: more is probably waiting.
  bool drained = true;
  for (;;) {
    const auto data = b.cdata();
    const auto r = scanResponseHead(std::string_view(static_cast<const char*>(data.data()), data.size()), head);
    if (r != ScanResult::kIncomplete || b.size() >= kMaxHead) co_return std::pair{beast::error_code{}, r};
    if (up.secure()) {
      auto [ec, n] = co_await up.async_read_some(b.prepare(readRoom(b)), kAwaitTuple);
      if (ec) co_return std::pair{ec, ScanResult::kIncomplete};
      b.commit(n);
      continue;
    }
    if (drained) {
      auto [wec] = co_await up.tcp().async_wait(tcp::socket::wait_read, kAwaitTuple);
      if (wec) co_return std::pair{wec, ScanResult::kIncomplete};
    }
    const std::size_t room = readRoom(b);
    beast::error_code ec;
    const std::size_t n = up.tcp().readSomeNow(b.prepare(room), ec);
    if (ec == asio::error::would_block) {
      drained = true;
      continue;
    }
    if (ec) co_return std::pair{ec, ScanResult::kIncomplete};
    b.commit(n);
    drained = n < room;
  }
}

Awaitable<bool> forwardFast(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                            const MessageHead& head, ConnectionState& state, ExchangeGuard& guard,
                            const ProxyTarget& target, const Route& route, std::string_view cookie_token,
                            bool bearer_taken) {
  const unsigned client_version = static_cast<unsigned>(head.version);
  const bool client_keep_alive = keepAliveOf(head);
  const bool is_head = head.method == "HEAD";
  const bool retryable = head.method == "GET" || is_head || head.method == "OPTIONS";
  HttpHeaders response_extra;
  addTokenCookie(proxy, client, route, cookie_token, response_extra);

  // The request head for the upstream, written in one pass over the client's fields.
  std::string& out = state.head_out;
  out.clear();
  out.append(head.method).append(" ").append(route.rest);
  if (!route.split.query.empty()) out.append("?").append(route.split.query);
  out.append(" HTTP/1.1\r\n");
  std::string xff, token_again;
  std::string_view host;
  const HopByHop request_hop(head);
  for (std::size_t i = 0; i < head.field_count; ++i) {
    const auto& f = head.fields[i];
    if (request_hop(f.name) || equalsIgnoreCase(f.name, "Expect")) continue;
    if (equalsIgnoreCase(f.name, "X-Forwarded-For")) {
      if (!xff.empty()) xff.append(", ");
      xff.append(f.value);
      continue;
    }
    if (equalsIgnoreCase(f.name, "X-Forwarded-Proto") || equalsIgnoreCase(f.name, "X-Forwarded-Host")) continue;
    if (bearer_taken && equalsIgnoreCase(f.name, "Authorization")) continue;
    if (equalsIgnoreCase(f.name, "Cookie")) {
      std::string kept;
      if (splitCookie(f.value, proxy.options.token_cookie, token_again, &kept)) {
        if (!kept.empty()) appendField(out, f.name, kept);
        continue;
      }
    }
    if (equalsIgnoreCase(f.name, "Host")) host = f.value;
    appendField(out, f.name, f.value);
  }
  if (!xff.empty()) xff.append(", ");
  xff.append(client.remote_address);
  appendField(out, "X-Forwarded-For", xff);
  appendField(out, "X-Forwarded-Proto", client.transport.secure() ? "https" : "http");
  if (!host.empty()) appendField(out, "X-Forwarded-Host", host);
  out.append("\r\n");
  // `head` views the client's buffer: from here on only `out` and owned copies are used.
  buffer.consume(head.head_bytes);

  const Duration timeout = proxy.options.upstream_timeout;
  MessageHead& rh = *state.response_head;
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    if (auto ec = co_await ensureUpstream(proxy, client, state, target, reused); ec) {
      co_return co_await refuse(proxy, client, client_version, client_keep_alive, 502,
                                "proxy: the session does not answer: " + ec.message());
    }
    Transport& up = *state.upstream;
    up.tcp().expires_after(timeout);
    if (auto ec = co_await writeAll(up, asio::buffer(out)); ec) {
      state.upstream.reset();
      if (reused && retryable && attempt == 0) continue;
      co_return false;
    }
    guard.touch();  // The request itself is activity.

    beast::error_code rec;
    ScanResult scan = ScanResult::kIncomplete;
    for (;;) {
      std::tie(rec, scan) = co_await readResponseHead(proxy, up, state.upstream_buffer, rh);
      if (rec || scan != ScanResult::kSimple || rh.status >= 200 || rh.status == 101) break;
      // An interim response (103 Early Hints, a stray 100 Continue): passed on to an HTTP/1.1
      // client (RFC 9110 15.2), then the final response is read.
      if (client_version >= 11) {
        out.clear();
        appendResponseHead(out, client_version, rh);
        out.append("\r\n");
        client.transport.tcp().expires_after(timeout);
        if (auto ec = co_await writeAll(client.transport, asio::buffer(out)); ec) {
          state.upstream.reset();
          co_return false;
        }
      }
      state.upstream_buffer.consume(rh.head_bytes);
      reused = false;  // The upstream answered: a failure from here on is not a stale connection.
    }
    if (rec) {
      state.upstream.reset();
      if (reused && retryable && attempt == 0 && closedByPeer(rec)) continue;
      co_return co_await refuse(proxy, client, client_version, false, 502,
                                "proxy: bad or no response from the session");
    }
    const auto length = scan == ScanResult::kSimple ? simpleResponseLength(rh, is_head) : std::nullopt;
    if (!length) {
      // Anything but a plain response with a known length: Beast parses the buffered head.
      std::optional<http::response_parser<http::buffer_body>> resp;
      bool answered = false;
      if (auto ec = co_await readFinalHeader(proxy, client, state, resp, client_version, is_head, answered); ec) {
        state.upstream.reset();
        co_return co_await refuse(proxy, client, client_version, false, 502,
                                  "proxy: bad or no response from the session");
      }
      co_return co_await relayResponse(proxy, client, buffer, state, guard, *resp, client_version, client_keep_alive,
                                       is_head, false, response_extra);
    }

    // The response head for the client, then the body: from the buffer, then straight from the
    // upstream socket into the relay buffer.
    const bool upstream_keep_alive = keepAliveOf(rh);
    const bool keep = client_keep_alive && !client.stopping.load();
    out.clear();
    appendResponseHead(out, client_version, rh);
    for (const auto& [k, v] : response_extra.fields()) appendField(out, k, v);
    if (client_version >= 11 && !keep) out.append("Connection: close\r\n");
    if (client_version < 11 && keep) out.append("Connection: keep-alive\r\n");
    out.append("\r\n");
    state.upstream_buffer.consume(rh.head_bytes);

    std::size_t remaining = *length;
    const std::size_t buffered = std::min(remaining, state.upstream_buffer.size());
    const std::array<asio::const_buffer, 2> first{asio::buffer(out),
                                                  asio::buffer(state.upstream_buffer.data().data(), buffered)};
    client.transport.tcp().expires_after(timeout);
    if (auto ec = co_await writeAll(client.transport, first); ec) {
      state.upstream.reset();
      co_return false;
    }
    guard.upstreamTraffic(buffered);
    state.upstream_buffer.consume(buffered);
    remaining -= buffered;
    while (remaining > 0) {
      up.tcp().expires_after(timeout);
      auto [ec, n] = co_await up.async_read_some(
          asio::buffer(state.to_client.data(), std::min(remaining, state.to_client.size())), kAwaitTuple);
      if (ec) {
        state.upstream.reset();
        co_return false;  // The client saw a truncated body; only closing tells it.
      }
      client.transport.tcp().expires_after(timeout);
      if (auto wec = co_await writeAll(client.transport, asio::buffer(state.to_client.data(), n)); wec) {
        state.upstream.reset();
        co_return false;
      }
      guard.upstreamTraffic(n);
      remaining -= n;
    }
    // Bytes after the response would be taken for the next one: never reuse such a connection.
    if (!upstream_keep_alive || state.upstream_buffer.size() > 0) state.upstream.reset();
    co_return keep;
  }
}

}  // namespace

namespace detail {

bool proxyFastEligible(const MessageHead& head) {
  if (head.method == "CONNECT") return false;
  for (std::size_t i = 0; i < head.field_count; ++i) {
    const auto& f = head.fields[i];
    if (equalsIgnoreCase(f.name, "Transfer-Encoding") || equalsIgnoreCase(f.name, "Upgrade")) return false;
    if (equalsIgnoreCase(f.name, "Content-Length") && f.value != "0") return false;
  }
  return true;
}

Awaitable<bool> serveProxiedFast(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                                 const MessageHead& head) {
  proxy.requests.fetch_add(1, std::memory_order_relaxed);
  const unsigned version = static_cast<unsigned>(head.version);
  Route route;
  Refusal refusal;
  if (!routeTarget(proxy, head.target, route, refusal)) {
    const bool keep = keepAliveOf(head);
    buffer.consume(head.head_bytes);
    co_return co_await refuse(proxy, client, version, keep, refusal.status, std::move(refusal.message), &refusal.extra);
  }
  // The token: query parameter, cookie, or bearer header (removed before the request leaves).
  std::string cookie_token, bearer;
  for (std::size_t i = 0; i < head.field_count; ++i) {
    const auto& f = head.fields[i];
    if (equalsIgnoreCase(f.name, "Cookie")) {
      splitCookie(f.value, proxy.options.token_cookie, cookie_token, nullptr);
    } else if (bearer.empty() && equalsIgnoreCase(f.name, "Authorization") && f.value.size() > 7 &&
               equalsIgnoreCase(f.value.substr(0, 7), "Bearer ")) {
      bearer = std::string(f.value.substr(7));
    }
  }
  const std::string& token =
      route.split.from_query ? route.split.token : (!cookie_token.empty() ? cookie_token : bearer);
  ProxyAuthRequest auth{route.session, token, false, client.remote_address};
  auto target = co_await authorize(proxy, auth);
  if (!target.ok() || target->protocol == SessionProtocol::kVnc ||
      (target->protocol != SessionProtocol::kHttp && target->protocol != SessionProtocol::kHttps)) {
    refusal = !target.ok() ? authRefusal(target.error())
              : target->protocol == SessionProtocol::kVnc
                  ? Refusal{400, "proxy: this session speaks VNC; open it with a WebSocket (noVNC)", {}}
                  : Refusal{501, "proxy: this session's protocol is not proxied here", {}};
    const bool keep = keepAliveOf(head);
    buffer.consume(head.head_bytes);
    co_return co_await refuse(proxy, client, version, keep, refusal.status, std::move(refusal.message), &refusal.extra);
  }
  ExchangeGuard& guard = attachExchange(proxy, client, route.session, target->user);
  auto& state = *static_cast<ConnectionState*>(client.proxy_state.get());
  if (!state.response_head) state.response_head = std::make_unique<MessageHead>();
  co_return co_await forwardFast(proxy, client, buffer, head, state, guard, *target, route, cookie_token,
                                 !bearer.empty());
}

Awaitable<bool> serveProxied(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                             HeaderParser& parser) {
  proxy.requests.fetch_add(1, std::memory_order_relaxed);
  auto& req = parser.get();
  const std::string raw_target(req.target());
  Route route;
  Refusal refusal;
  if (!routeTarget(proxy, raw_target, route, refusal)) {
    co_return co_await reject(proxy, client, parser, refusal.status, std::move(refusal.message), &refusal.extra);
  }

  // The token: query parameter, cookie, or bearer header; all of them are removed before the
  // request leaves, so the container never sees a credential.
  std::string cookie_token = stripTokenCookie(req, proxy.options.token_cookie);
  std::string bearer;
  if (auto it = req.find(http::field::authorization); it != req.end()) {
    std::string_view v(it->value().data(), it->value().size());
    if (v.size() > 7 && equalsIgnoreCase(v.substr(0, 7), "Bearer ")) {
      bearer = std::string(v.substr(7));
      req.erase(http::field::authorization);
    }
  }
  std::string token = route.split.from_query ? route.split.token : (!cookie_token.empty() ? cookie_token : bearer);
  const bool upgrade = websocket::is_upgrade(req);

  ProxyAuthRequest auth{route.session, token, upgrade, client.remote_address};
  auto target = co_await authorize(proxy, auth);
  if (!target.ok()) {
    refusal = authRefusal(target.error());
    co_return co_await reject(proxy, client, parser, refusal.status, std::move(refusal.message), &refusal.extra);
  }
  ExchangeGuard& guard = attachExchange(proxy, client, route.session, target->user);
  auto& state = *static_cast<ConnectionState*>(client.proxy_state.get());

  switch (target->protocol) {
    case SessionProtocol::kVnc:
      if (!upgrade) {
        co_return co_await reject(proxy, client, parser, 400,
                                  "proxy: this session speaks VNC; open it with a WebSocket (noVNC)");
      }
      co_return co_await bridgeVnc(proxy, client, parser, state, guard, *target);
    case SessionProtocol::kHttp:
    case SessionProtocol::kHttps: {
      HttpHeaders response_extra;
      addTokenCookie(proxy, client, route, cookie_token, response_extra);
      std::string upstream_target(route.rest);
      if (!route.split.query.empty()) upstream_target += "?" + route.split.query;
      co_return co_await forwardHttp(proxy, client, buffer, parser, state, guard, *target, std::move(upstream_target),
                                     upgrade, response_extra);
    }
    default:
      co_return co_await reject(proxy, client, parser, 501, "proxy: this session's protocol is not proxied here");
  }
}

}  // namespace detail

SessionProxy::SessionProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SessionProxy::~SessionProxy() = default;

Result<std::shared_ptr<SessionProxy>> SessionProxy::create(ProxyOptions options) {
  if (!options.authorize) return invalidArgument("SessionProxy: an authorizer is required");
  if (options.prefix.size() < 2 || options.prefix.front() != '/' || options.prefix.back() != '/') {
    return invalidArgument("SessionProxy: prefix must start and end with '/', e.g. /desktop/");
  }
  if (options.buffer_bytes < 1024) return invalidArgument("SessionProxy: buffer_bytes must be at least 1024");
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  // Containers serve self-signed certificates on a host-local hop: encryption without
  // verification is what is possible there (the same choice as Kasm's own proxy).
  impl->upstream_tls.set_verify_mode(asio::ssl::verify_none);
  return std::shared_ptr<SessionProxy>(new SessionProxy(std::move(impl)));
}

const std::string& SessionProxy::prefix() const noexcept {
  return impl_->options.prefix;
}

std::size_t SessionProxy::closeSession(const SessionId& session) {
  std::vector<std::shared_ptr<Exchange>> open;
  {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->sessions.find(session);
    if (it == impl_->sessions.end()) return 0;
    for (auto& [id, e] : it->second.open) open.push_back(e);
  }
  {
    std::lock_guard lock(impl_->mutex);
    impl_->reported_at.erase(session);
  }
  for (auto& e : open) {
    asio::post(e->executor, [e] {
      if (!e->alive) return;
      if (e->bridge_upstream) e->bridge_upstream->close();
      if (e->kept_upstream && *e->kept_upstream) (*e->kept_upstream)->close();
      e->client->close();
    });
  }
  return open.size();
}

ProxyStats SessionProxy::stats() const {
  ProxyStats s;
  s.requests = impl_->requests.load();
  s.rejected = impl_->rejected.load();
  s.bytes_to_upstream = impl_->bytes_up.load();
  s.bytes_to_client = impl_->bytes_down.load();
  s.open_tunnels = impl_->tunnels.load();
  return s;
}

}  // namespace kasm::net
