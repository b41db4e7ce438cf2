// Plain requests the proxy answers itself (ProxyOptions::app_request; kasm-server: file transfer).
// The body is read only after the embedder admitted it and only up to the size it allowed; both
// the embedder's calls run on the blocking pool. Bodies and answers may be large (files), so every
// read and write of them gets its own deadline rather than one for the whole transfer.

#include <array>

#include "net/proxy_impl.hpp"

namespace kasm::net::detail {

namespace {

// Without an admission function, a body of at most this much is accepted.
constexpr std::uint64_t kDefaultMaxBody = 1024 * 1024;
// No progress for this long ends a transfer.
constexpr auto kStallTimeout = std::chrono::seconds(30);

int statusOf(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kPermissionDenied: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kFailedPrecondition: return 409;
    case ErrorCode::kResourceExhausted: return 413;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

std::string jsonQuoted(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

ProxyPage errorPage(const Error& e) {
  ProxyPage page;
  page.status = statusOf(e.code());
  page.content_type = "application/json";
  page.body = "{\"error\":" + jsonQuoted(e.message()) + "}\n";
  return page;
}

// Writes `page` with a deadline per piece, so a large answer to a slow client is not cut short.
Awaitable<bool> writePage(ClientContext& client, unsigned version, bool keep, ProxyPage page) {
  http::response<http::string_body> res{static_cast<http::status>(page.status), version};
  res.set(http::field::content_type, page.content_type);
  res.set(http::field::cache_control, "no-store");
  for (auto& [k, v] : page.headers) res.insert(k, v);
  res.body() = std::move(page.body);
  res.keep_alive(keep);
  res.prepare_payload();
  http::response_serializer<http::string_body> sr{res};
  sr.limit(256 * 1024);
  while (!sr.is_done()) {
    client.transport.tcp().expires_after(kStallTimeout);
    auto [ec, n] = co_await http::async_write_some(client.transport, sr, kAwaitTuple);
    if (ec) co_return false;
  }
  co_return keep;
}

struct OwnedAuth {
  explicit OwnedAuth(const ProxyAuthRequest& r)
      : session(r.session), token(r.token), upgrade(r.upgrade), remote(r.remote_address) {}
  ProxyAuthRequest view() const { return {session, token, upgrade, remote}; }
  SessionId session;
  std::string token;
  bool upgrade;
  std::string remote;
};

// Answers a request whose body is refused, then reads and drops what the client still sends for a
// while (nginx's lingering close): a browser that is still uploading takes a reset for a network
// failure and never shows the answer.
Awaitable<bool> refuseBody(ClientContext& client, beast::flat_buffer& buffer, unsigned version, const Error& why) {
  if (!co_await writePage(client, version, false, errorPage(why))) co_return false;
  constexpr std::size_t kLingerBytes = 64 * 1024 * 1024;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::size_t dropped = buffer.size();
  buffer.consume(buffer.size());
  std::array<char, 16 * 1024> scratch;
  while (dropped < kLingerBytes && std::chrono::steady_clock::now() < until) {
    client.transport.tcp().expires_after(std::chrono::seconds(2));
    auto [ec, n] = co_await client.transport.async_read_some(asio::buffer(scratch), kAwaitTuple);
    if (ec) break;
    dropped += n;
  }
  co_return false;
}

}  // namespace

bool isAppRequest(const SessionProxy::Impl& proxy, std::string_view rest) {
  const std::string& base = proxy.options.app_request_path;
  if (!proxy.options.app_request || base.empty() || !rest.starts_with(base)) return false;
  return rest.size() == base.size() || rest[base.size()] == '/';
}

Awaitable<bool> serveAppRequest(SessionProxy::Impl& proxy, ClientContext& client, beast::flat_buffer& buffer,
                                HeaderParser& parser, const Route& route, const ProxyAuthRequest& auth,
                                const ProxyTarget& target) {
  auto& head = parser.get();
  const unsigned version = head.version();
  ProxyAppRequest request;
  request.method = std::string(head.method_string());
  request.path = std::string(route.rest.substr(proxy.options.app_request_path.size()));
  request.query = route.split.query;
  if (auto length = parser.content_length()) request.content_length = *length;
  const bool has_body = head.chunked() || (request.content_length && *request.content_length > 0);
  const bool keep = head.keep_alive() && !client.stopping.load();
  // The pool's calls own copies: the connection may be gone by the time they run.
  const auto owned_auth = std::make_shared<OwnedAuth>(auth);

  if (has_body) {
    const auto admit = [&proxy, owned_auth, target, request]() -> Result<std::uint64_t> {
      if (!proxy.options.app_request_admit) return kDefaultMaxBody;
      try {
        return proxy.options.app_request_admit(owned_auth->view(), target, request);
      } catch (...) {
        return internalError("the request could not be admitted");
      }
    };
    auto admitted = co_await onBlockingPool<std::uint64_t>(proxy, admit, "the server is busy; try again");
    // A refused body is never parsed: the connection closes after the answer.
    if (!admitted.ok()) co_return co_await refuseBody(client, buffer, version, admitted.error());
    if (request.content_length && *request.content_length > *admitted) {
      co_return co_await refuseBody(
          client, buffer, version,
          resourceExhausted("the body is larger than the " + std::to_string(*admitted) + " bytes allowed"));
    }
    http::request_parser<http::string_body> body_parser{std::move(parser)};
    body_parser.body_limit(*admitted);
    if (auto expect = body_parser.get().find(http::field::expect);
        expect != body_parser.get().end() && equalsIgnoreCase(expect->value(), "100-continue")) {
      http::response<http::empty_body> cont{http::status::continue_, version};
      client.transport.tcp().expires_after(kStallTimeout);
      co_await http::async_write(client.transport, cont, kAwait);
    }
    while (!body_parser.is_done()) {
      client.transport.tcp().expires_after(kStallTimeout);
      auto [ec, n] = co_await http::async_read_some(client.transport, buffer, body_parser, kAwaitTuple);
      if (ec == http::error::body_limit) {
        co_return co_await refuseBody(
            client, buffer, version,
            resourceExhausted("the body is larger than the " + std::to_string(*admitted) + " bytes allowed"));
      }
      if (ec) co_return false;
    }
    request.body = std::move(body_parser.get().body());
  }
  releaseIfEmpty(buffer);

  // Shared, not copied: a body may be large.
  const auto shared_request = std::make_shared<const ProxyAppRequest>(std::move(request));
  const auto handle = [&proxy, owned_auth, target, shared_request]() -> Result<ProxyPage> {
    try {
      return proxy.options.app_request(owned_auth->view(), target, *shared_request);
    } catch (...) {
      return internalError("the request failed");
    }
  };
  auto page = co_await onBlockingPool<ProxyPage>(proxy, handle, "the server is busy; try again");
  // Named, not a conditional inside the co_await: GCC 12 evaluates both arms of one there.
  ProxyPage answer;
  if (page.ok()) {
    answer = std::move(*page);
  } else {
    answer = errorPage(page.error());
  }
  co_return co_await writePage(client, version, keep, std::move(answer));
}

}  // namespace kasm::net::detail
