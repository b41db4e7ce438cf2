// HttpServer's application path: a request that is not the proxy's is read whole (within its body
// limit), handed to the HttpHandler, and answered once the Responder is called, from any thread.
// Also the small complete responses (errors) that the server and the proxy write.

#include "net/http_server_impl.hpp"
#include "net/stream_io.hpp"

namespace kasm::net {

using namespace detail;

// ---- Responder ---------------------------------------------------------------------------------

namespace {
// Where a response waits for the connection coroutine, which sleeps on `timer` until woken.
struct ResponseSlot {
  std::mutex mutex;
  std::optional<HttpResponse> response;
  std::shared_ptr<asio::steady_timer> timer;
};

void deliver(const std::shared_ptr<ResponseSlot>& slot, HttpResponse response) {
  {
    std::lock_guard lock(slot->mutex);
    if (slot->response) return;
    slot->response = std::move(response);
  }
  // The timer is only touched on its strand; the wake-up is posted there.
  auto timer = slot->timer;
  asio::post(timer->get_executor(), [timer] { timer->cancel(); });
}
}  // namespace

struct Responder::State {
  std::shared_ptr<ResponseSlot> slot;
  std::atomic<bool> answered{false};
  ~State() {
    // Every copy of the Responder is gone without an answer: do not leave the client hanging.
    if (!answered.exchange(true)) deliver(slot, HttpResponse::text(500, "the handler gave no response\n"));
  }
};

void Responder::operator()(HttpResponse response) const {
  if (!state_ || state_->answered.exchange(true)) return;
  deliver(state_->slot, std::move(response));
}

bool Responder::answered() const {
  return state_ && state_->answered.load();
}

// ---- helpers shared with the proxy ---------------------------------------------------------------

namespace detail {
Awaitable<> writeSimple(Transport& stream, unsigned version, int status, std::string body, bool keep_alive,
                        const HttpHeaders* extra) {
  http::response<http::string_body> res{static_cast<http::status>(status), version};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  if (extra) {
    for (const auto& [k, v] : extra->fields()) {
      if (equalsIgnoreCase(k, "Content-Type")) {
        res.set(http::field::content_type, v);  // One Content-Type: the caller's replaces ours.
      } else {
        res.insert(k, v);
      }
    }
  }
  res.body() = std::move(body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  http::response_serializer<http::string_body> sr{res};
  co_await writeMessage(stream, sr);
}
}  // namespace detail

namespace {

std::vector<std::pair<std::string, std::string>> parseQuery(std::string_view q) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    auto key = percentDecode(part.substr(0, eq), true);
    auto value = percentDecode(eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1), true);
    if (key.ok() && value.ok()) out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
}

}  // namespace

namespace detail {
bool isQuietClose(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor ||
         ec == http::error::partial_message;
}
}  // namespace detail

Awaitable<bool> HttpServer::Impl::serveHandler(Connection& conn, beast::flat_buffer& buffer, HeaderParser& parser) {
  Transport& t = conn.transport;
  const unsigned version = parser.get().version();
  auto length = parser.content_length();
  std::size_t body_limit = options.max_body_bytes;
  if (!options.body_limits.empty()) {
    std::string_view target(parser.get().target().data(), parser.get().target().size());
    if (auto it = options.body_limits.find(target.substr(0, target.find('?'))); it != options.body_limits.end()) {
      body_limit = it->second;
    }
  }
  if (length && *length > body_limit) {
    // Refused from the header alone: the body is never read, and the connection is closed
    // because the unread body would otherwise be taken for the next request.
    t.tcp().expires_after(std::chrono::seconds(2));
    co_await writeSimple(t, version, 413, "request body too large\n", false);
    co_return false;
  }
  http::request_parser<http::string_body> body_parser{std::move(parser)};
  body_parser.body_limit(body_limit);
  auto& head = body_parser.get();
  if (auto expect = head.find(http::field::expect);
      expect != head.end() && equalsIgnoreCase(expect->value(), "100-continue")) {
    http::response<http::empty_body> cont{http::status::continue_, version};
    t.tcp().expires_after(options.body_timeout);
    co_await http::async_write(t, cont, kAwait);
  }
  if (!body_parser.is_done()) {
    t.tcp().expires_after(options.body_timeout);
    auto ec = co_await parseMessage(t, buffer, body_parser);
    if (ec) {
      t.tcp().expires_after(std::chrono::seconds(2));
      if (ec == http::error::body_limit) {
        co_await writeSimple(t, version, 413, "request body too large\n", false);
      } else if (ec == beast::error::timeout) {
        co_await writeSimple(t, version, 408, "request body timeout\n", false);
      } else if (!isQuietClose(ec)) {
        co_await writeSimple(t, version, 400, "malformed request body: " + ec.message() + "\n", false);
      }
      co_return false;
    }
  }

  auto message = body_parser.release();
  const bool is_head = message.method() == http::verb::head;
  HttpRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  auto qmark = request.target.find('?');
  request.path = request.target.substr(0, qmark);
  if (qmark != std::string::npos) request.query = parseQuery(std::string_view(request.target).substr(qmark + 1));
  for (const auto& field : message) request.headers.add(std::string(field.name_string()), std::string(field.value()));
  request.body = std::move(message.body());
  request.remote_address = conn.remote;
  request.secure = t.secure();
  const bool client_keep_alive = message.keep_alive();

  auto slot = std::make_shared<ResponseSlot>();
  slot->timer = std::make_shared<asio::steady_timer>(t.get_executor(), asio::steady_timer::time_point::max());
  {
    auto state = std::make_shared<Responder::State>();
    state->slot = slot;
    Responder responder(std::move(state));
    // Whatever a handler throws ends its request with a 500, never the connection or the thread.
    // The message stays in the server: it may name internals.
    try {
      handler(std::move(request), responder);
    } catch (...) {
      responder(HttpResponse::text(500, "internal error\n"));
    }
  }
  for (;;) {
    {
      std::lock_guard lock(slot->mutex);
      if (slot->response) break;
    }
    co_await slot->timer->async_wait(kAwaitTuple);
  }

  HttpResponse& out = *slot->response;
  http::response<http::string_body> res{static_cast<http::status>(out.status), version};
  for (const auto& [k, v] : out.headers.fields()) res.insert(k, v);
  const bool keep = client_keep_alive && !stopping.load();
  res.keep_alive(keep);
  if (is_head) {
    // A HEAD answer carries the length the GET would send (the handler's Content-Length, else the
    // body it produced), and no body.
    if (res.find(http::field::content_length) == res.end()) res.content_length(out.body.size());
  } else {
    res.body() = std::move(out.body);
    res.prepare_payload();
  }
  t.tcp().expires_after(options.body_timeout);
  http::response_serializer<http::string_body> sr{res};
  auto ec = co_await writeMessage(t, sr);
  co_return !ec && keep;
}

}  // namespace kasm::net
