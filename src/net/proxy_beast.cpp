// The general proxy path: requests and responses parsed by Beast, bodies streamed in pieces through
// the connection's fixed buffers, and upgrades handed to the tunnel.

#include <boost/beast/websocket/rfc6455.hpp>

#include "kasm/auth/secret.hpp"
#include "net/proxy_impl.hpp"
#include "net/stream_io.hpp"

namespace kasm::net::detail {

namespace {
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

// Confines the cookies an upstream sets to the session (appendConfinedSetCookie).
template <class Fields>
void confineCookies(Fields& fields, const SessionPath& path, const ProxyOptions& options) {
  if (fields.find(http::field::set_cookie) == fields.end()) return;
  std::vector<std::string> confined;
  for (const auto& f : fields) {
    if (f.name() != http::field::set_cookie) continue;
    std::string c;
    if (appendConfinedSetCookie(c, std::string_view(f.value().data(), f.value().size()), path, options)) {
      confined.push_back(std::move(c));
    }
  }
  fields.erase(http::field::set_cookie);
  for (auto& c : confined) fields.insert(http::field::set_cookie, c);
}

// Moves a message from `in` to `out` through `buf`: the header goes out with the first piece of the
// body (one write for a small message), then each piece as it arrives (read_some, so a streamed
// body such as server-sent events is not held back until the buffer fills).
template <bool isRequest, class CountFn>
Awaitable<beast::error_code> relayBody(Transport& in, beast::flat_buffer& in_buffer,
                                       http::parser<isRequest, http::buffer_body>& p, Transport& out,
                                       http::serializer<isRequest, http::buffer_body>& sr, RelayBuffer& buf,
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
}  // namespace

Awaitable<bool> relayResponse(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                              ConnectionState& state, ExchangeGuard& guard,
                              http::response_parser<http::buffer_body>& resp, unsigned client_version,
                              bool client_keep_alive, bool is_head, bool upgrade, const HttpHeaders& response_extra,
                              const SessionPath& path) {
  Transport& up = *state.upstream;
  const Duration timeout = proxy.options.upstream_timeout;
  auto& res = resp.get();
  const bool switching = upgrade && res.result() == http::status::switching_protocols;
  const bool upstream_keep_alive = res.keep_alive();
  const bool res_chunked = res.chunked();
  const bool has_length = resp.content_length().has_value();
  stripHopByHop(res, switching);
  confineCookies(res, path, proxy.options);
  if (!switching && !proxy.options.content_security_policy.empty()) {
    res.insert("Content-Security-Policy", proxy.options.content_security_policy);
  }
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

  // Response: the header with the first piece of the body (a 101 has none), then the rest. Beast
  // reads a body in pieces of the buffer's free capacity: a long one gets room for large pieces,
  // given back with the relay buffer once the response is through.
  http::response_serializer<http::buffer_body> res_sr{res};
  res.body().data = nullptr;
  res.body().more = !resp.is_done();
  RelayBuffer relay = proxy.relayBuffer();
  if (!resp.is_done()) state.upstream_buffer.reserve(proxy.options.buffer_bytes);
  if (auto ec = co_await relayBody(up, state.upstream_buffer, resp, client.transport, res_sr, relay, timeout,
                                   [&](std::size_t n) { guard.upstreamTraffic(n); });
      ec) {
    state.upstream.reset();
    co_return false;
  }
  relay.release();
  releaseIfEmpty(state.upstream_buffer);

  if (switching) {
    state.tunnel_pending = true;
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
    for (const auto& f : resp->get()) {
      if (f.name() != http::field::set_cookie) interim.insert(f.name_string(), f.value());
    }
    stripHopByHop(interim, false);
    http::response_serializer<http::empty_body> sr{interim};
    client.transport.tcp().expires_after(proxy.options.upstream_timeout);
    if (auto ec = co_await writeMessage(client.transport, sr); ec) co_return ec;
  }
}

Awaitable<bool> forwardHttp(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                            HeaderParser& parser, ConnectionState& state, ExchangeGuard& guard,
                            const ProxyTarget& target, std::string upstream_target, bool upgrade,
                            const HttpHeaders& response_extra, const SessionPath& path) {
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
  if (!rp.is_done()) buffer.reserve(proxy.options.buffer_bytes);  // Given back once the body is through.
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
    RelayBuffer relay = proxy.relayBuffer();
    if (auto ec = co_await relayBody(client.transport, buffer, rp, up, req_sr, relay, timeout,
                                     [&](std::size_t n) { guard.clientTraffic(n); });
        ec) {
      state.upstream.reset();
      if (reused && retryable && attempt == 0) continue;
      co_return false;
    }
    relay.release();
    releaseIfEmpty(buffer);
    guard.touch();  // The request itself is activity, even without a body.

    bool answered = false;
    auto rec = co_await readFinalHeader(proxy, client, state, resp, client_version, is_head, answered);
    if (!rec) break;
    state.upstream.reset();
    if (reused && !answered && retryable && attempt == 0 && closedByPeer(rec)) continue;
    co_return co_await refuse(proxy, client, client_version, false, 502, "proxy: bad or no response from the session");
  }
  co_return co_await relayResponse(proxy, client, buffer, state, guard, *resp, client_version, client_keep_alive,
                                   is_head, upgrade, response_extra, path);
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

  const bool upgrade = beast::websocket::is_upgrade(req);
  // A page of another origin, or a sandboxed page ("null"), must not open a WebSocket to a session
  // on the strength of the viewer's token cookie.
  if (auto origin = req.find(http::field::origin);
      upgrade && origin != req.end() && !originAllowed(proxy.options, origin->value(), req[http::field::host])) {
    co_return co_await reject(
        proxy, client, parser, 403,
        "proxy: WebSockets to sessions are not opened from origin " + std::string(origin->value()));
  }

  if (upgrade && proxy.tunnels.load(std::memory_order_relaxed) >= proxy.options.max_tunnels) {
    co_return co_await reject(proxy, client, parser, 503, "proxy: too many open WebSockets; retry later");
  }

  // The token: query parameter, cookie, or bearer header. It and every other credential of the
  // control plane are removed before the request leaves: the container never sees one.
  std::string bearer;
  if (auto it = req.find(http::field::authorization); it != req.end()) {
    bearer = auth::authorizationCredentials({it->value().data(), it->value().size()}, "Bearer").value_or("");
  }
  std::string cookie_token = stripCredentials(req, proxy.options);
  std::string token = route.split.from_query ? route.split.token : (!cookie_token.empty() ? cookie_token : bearer);

  ProxyAuthRequest auth{route.session, token, upgrade, client.remote_address};
  auto target = co_await authorize(proxy, auth);
  if (!target.ok()) {
    refusal = authRefusal(target.error());
    co_return co_await reject(proxy, client, parser, refusal.status, std::move(refusal.message), &refusal.extra);
  }
  ExchangeGuard& guard = attachExchange(proxy, client, route.session, target->user);
  auto& state = *static_cast<ConnectionState*>(client.proxy_state.get());

  if (upgrade && proxy.options.app_socket && route.rest == proxy.options.app_socket_path) {
    co_return co_await serveAppSocket(proxy, client, parser, guard, auth, *target, proxy.options.app_socket);
  }
  if (auto it = proxy.options.app_sockets.find(route.rest); upgrade && it != proxy.options.app_sockets.end()) {
    co_return co_await serveAppSocket(proxy, client, parser, guard, auth, *target, it->second);
  }
  if (!upgrade && isAppRequest(proxy, route.rest)) {
    co_return co_await serveAppRequest(proxy, client, buffer, parser, route, auth, *target);
  }
  switch (target->protocol) {
    case SessionProtocol::kVnc:
    case SessionProtocol::kSsh:
      if (!upgrade) {
        if (auto page = vncPage(proxy, client, route, auth, *target, cookie_token)) {
          const auto& req = parser.get();
          const bool has_body = req.chunked() || (parser.content_length() && *parser.content_length() > 0);
          co_return co_await answerPage(client, req.version(), req.keep_alive() && !has_body, std::move(*page));
        }
        co_return co_await reject(proxy, client, parser, 400,
                                  target->protocol == SessionProtocol::kVnc
                                      ? "proxy: this session speaks VNC; open it with a WebSocket (noVNC)"
                                      : "proxy: this session is a terminal; open it with a WebSocket");
      }
      releaseIfEmpty(buffer);  // The bridge reads the browser through its WebSocket, not this buffer.
      co_return co_await bridgeVnc(proxy, client, parser, state, guard, *target);
    case SessionProtocol::kHttp:
    case SessionProtocol::kHttps: {
      HttpHeaders response_extra;
      addTokenCookie(proxy, client, route, cookie_token, response_extra);
      std::string upstream_target(route.rest);
      if (!route.split.query.empty()) upstream_target += "?" + route.split.query;
      const bool keep =
          co_await forwardHttp(proxy, client, buffer, parser, state, guard, *target, std::move(upstream_target),
                               upgrade, response_extra, SessionPath{proxy.options.prefix, route.session.str()});
      if (state.tunnel_pending) {
        state.tunnel_pending = false;
        co_await tunnelUpgraded(proxy, client, buffer, state, guard);
        co_return false;
      }
      co_return keep;
    }
    default:
      co_return co_await reject(proxy, client, parser, 501, "proxy: this session's protocol is not proxied here");
  }
}

}  // namespace kasm::net::detail
