// The proxy's fast path (see http_scan.hpp): a plain request head without a body is forwarded in
// one write built from the scanned fields, and a response with a Content-Length is relayed with a
// hand-written head; everything else falls back to the Beast path.

#include "kasm/auth/secret.hpp"
#include "net/proxy_impl.hpp"
#include "net/stream_io.hpp"

namespace kasm::net::detail {

namespace {
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
// line, so callers can add fields). Cookies it sets are confined to the session's path.
void appendResponseHead(std::string& out, unsigned client_version, const MessageHead& rh, const SessionPath& path,
                        const ProxyOptions& options) {
  out.append(client_version >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ")
      .append(std::to_string(rh.status))
      .append(" ")
      .append(rh.reason)
      .append("\r\n");
  const HopByHop hop(rh);
  for (std::size_t i = 0; i < rh.field_count; ++i) {
    const auto& f = rh.fields[i];
    if (hop(f.name)) continue;
    if (equalsIgnoreCase(f.name, "Set-Cookie")) {
      const std::size_t mark = out.size();
      out.append(f.name).append(": ");
      if (appendConfinedSetCookie(out, f.value, path, options)) {
        out.append("\r\n");
      } else {
        out.resize(mark);
      }
      continue;
    }
    appendField(out, f.name, f.value);
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
                            const ProxyTarget& target, const Route& route, std::string_view cookie_token) {
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
  std::string xff;
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
    // The control plane's credentials never reach the container (see ProxyOptions::strip_cookies).
    if (isCredentialField(proxy.options, f.name)) continue;
    if (equalsIgnoreCase(f.name, "Cookie")) {
      const std::size_t mark = out.size();
      out.append(f.name).append(": ");
      if (appendContainerCookies(out, f.value, proxy.options)) {
        out.append("\r\n");
      } else {
        out.resize(mark);
      }
      continue;
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
  // Owned by `route` (the session id), unlike the views into the consumed request head.
  const SessionPath path{proxy.options.prefix, route.session.str()};
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
        appendResponseHead(out, client_version, rh, path, proxy.options);
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
                                       is_head, false, response_extra, path);
    }

    // The response head for the client, then the body: from the buffer, then straight from the
    // upstream socket into the relay buffer.
    const bool upstream_keep_alive = keepAliveOf(rh);
    const bool keep = client_keep_alive && !client.stopping.load();
    out.clear();
    appendResponseHead(out, client_version, rh, path, proxy.options);
    out.append(proxy.csp_field);
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
    // The rest of the body goes through a relay buffer held only while it flows.
    RelayBuffer relay;
    if (remaining > 0) relay = proxy.relayBuffer();
    while (remaining > 0) {
      up.tcp().expires_after(timeout);
      auto [ec, n] =
          co_await up.async_read_some(asio::buffer(relay.data(), std::min(remaining, relay.size())), kAwaitTuple);
      if (ec) {
        state.upstream.reset();
        co_return false;  // The client saw a truncated body; only closing tells it.
      }
      client.transport.tcp().expires_after(timeout);
      if (auto wec = co_await writeAll(client.transport, asio::buffer(relay.data(), n)); wec) {
        state.upstream.reset();
        co_return false;
      }
      guard.upstreamTraffic(n);
      remaining -= n;
    }
    // Bytes after the response would be taken for the next one: never reuse such a connection.
    if (!upstream_keep_alive || state.upstream_buffer.size() > 0) state.upstream.reset();
    releaseIfEmpty(state.upstream_buffer);
    co_return keep;
  }
}

}  // namespace

bool proxyFastEligible(const SessionProxy::Impl& proxy, const MessageHead& head) {
  if (head.method == "CONNECT") return false;
  // The proxy's own requests take the full path (they may carry bodies of any size).
  if (proxy.options.app_request && head.target.find(proxy.options.app_request_path) != std::string_view::npos) {
    return false;
  }
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
    } else if (bearer.empty() && equalsIgnoreCase(f.name, "Authorization")) {
      bearer = auth::authorizationCredentials(f.value, "Bearer").value_or("");
    }
  }
  const std::string& token =
      route.split.from_query ? route.split.token : (!cookie_token.empty() ? cookie_token : bearer);
  ProxyAuthRequest auth{route.session, token, false, client.remote_address};
  auto target = co_await authorize(proxy, auth);
  const bool bridged =
      target.ok() && (target->protocol == SessionProtocol::kVnc || target->protocol == SessionProtocol::kSsh);
  if (bridged) {
    if (auto page = vncPage(proxy, client, route, auth, *target, cookie_token)) {
      const bool keep = keepAliveOf(head);
      buffer.consume(head.head_bytes);
      co_return co_await answerPage(client, version, keep, std::move(*page));
    }
  }
  if (!target.ok() || bridged ||
      (target->protocol != SessionProtocol::kHttp && target->protocol != SessionProtocol::kHttps)) {
    refusal = !target.ok() ? authRefusal(target.error())
              : bridged    ? Refusal{400, "proxy: this session is bridged; open it with a WebSocket", {}}
                           : Refusal{501, "proxy: this session's protocol is not proxied here", {}};
    const bool keep = keepAliveOf(head);
    buffer.consume(head.head_bytes);
    co_return co_await refuse(proxy, client, version, keep, refusal.status, std::move(refusal.message), &refusal.extra);
  }
  ExchangeGuard& guard = attachExchange(proxy, client, route.session, target->user);
  auto& state = *static_cast<ConnectionState*>(client.proxy_state.get());
  if (!state.response_head) state.response_head = takeMessageHead();
  co_return co_await forwardFast(proxy, client, buffer, head, state, guard, *target, route, cookie_token);
}

}  // namespace kasm::net::detail
