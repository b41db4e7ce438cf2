// REST API: request handling, authentication (cookie logins, API keys), CSRF and the auth routes.

#include "kasm/api/rest_api.hpp"

#include <cctype>

#include "api/api_key_auth.hpp"
#include "api/authorization.hpp"
#include "api/rest_impl.hpp"
#include "kasm/auth/password.hpp"
#include "kasm/auth/secret.hpp"
#include "kasm/model/json.hpp"

namespace kasm::api {

namespace json = boost::json;

namespace rest {

RestResponse reply(int status, const json::value& body) {
  RestResponse r;
  r.status = status;
  r.body = json::serialize(body);
  return r;
}

RestResponse error(const Error& e) {
  json::object o;
  o["error_message"] = e.message();
  o["code"] = std::string(errorCodeName(e.code()));
  return reply(httpStatusOf(e.code()), o);
}

Result<json::object> parseObject(std::string_view body) {
  if (body.empty()) return json::object{};
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return invalidArgument("malformed JSON: " + ec.message());
  if (!v.is_object()) return invalidArgument("the body must be a JSON object");
  return std::move(v.as_object());
}

json::object redact(json::object o) {
  for (auto field : {"password_hash", "secret_hash", "token_hash", "connection_password_sealed",
                     "connection_private_key_sealed", "connection_sealed", "registration_token_sealed"}) {
    o.erase(field);
  }
  return o;
}

}  // namespace rest

namespace {

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < path.size()) {
    auto next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    if (next > pos) out.emplace_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  return out;
}

}  // namespace

RestApi::RestApi(Manager& manager, spi::Store& store, Clock& clock, const auth::AccessTokenSigner& signer,
                 const auth::WebSessionSigner& web_signer, RestApiOptions options)
    : impl_(std::make_unique<Impl>(manager, store, clock, signer, web_signer, std::move(options))) {
  impl_->openapi = rest::buildOpenApi();
}

RestApi::~RestApi() = default;

const std::string& RestApi::openApiDocument() const {
  return impl_->openapi;
}

Result<Principal> RestApi::Impl::principalOfUser(const User& user) {
  if (!user.canAct()) return permissionDenied("user '" + user.username + "' is disabled or locked");
  Principal p;
  p.user = user.id;
  KASM_ASSIGN_OR_RETURN(p.permissions, detail::permissionsOfUser(repo, user));
  return p;
}

Result<Principal> RestApi::Impl::authenticate(const RestRequest& request) {
  if (!request.authorization.empty()) {
    auto creds = detail::parseAuthorizationHeader(request.authorization, /*allow_bearer=*/true);
    if (!creds) return unauthenticated("the Authorization header must be 'Bearer <api_key>:<api_key_secret>'");
    KASM_ASSIGN_OR_RETURN(ApiKey key, detail::verifyApiKey(repo, clock, *creds));
    Principal p;
    p.user = key.owner;
    p.permissions = key.permissions;
    p.read_only = key.read_only;
    return p;
  }
  if (request.cookie_token.empty()) return unauthenticated("log in first");
  KASM_ASSIGN_OR_RETURN(auto claims, web_signer.verify(request.cookie_token));
  auto user = repo.get<User>(claims.user_id.str());
  if (!user.ok()) {
    if (user.error().code() == ErrorCode::kNotFound) return unauthenticated("the logged-in user no longer exists");
    return user.error();
  }
  if (user->value.revokedAt(claims.issued_at)) return unauthenticated("logged out; log in again");
  KASM_ASSIGN_OR_RETURN(Principal p, principalOfUser(user->value));
  p.via_cookie = true;
  return p;
}

RestResponse RestApi::handle(const RestRequest& request) {
  Impl& im = *impl_;
  static constexpr std::string_view kRoot = "/api/v1/";
  if (!request.path.starts_with(kRoot)) return rest::error(notFound("no such route: " + request.path));
  const auto segments = splitPath(std::string_view(request.path).substr(kRoot.size()));
  if (segments.empty()) return rest::error(notFound("no such route: " + request.path));
  if (request.body.size() > im.options.max_body_bytes) {
    return rest::error(invalidArgument("request body too large"));
  }
  const std::string& method = request.method;
  const bool write = method != "GET" && method != "HEAD";

  std::optional<json::object> body;
  if (write) {
    auto parsed = rest::parseObject(request.body);
    if (!parsed.ok()) return rest::error(parsed.error());
    body = std::move(*parsed);
  }

  // Login is the one route that needs no principal.
  if (segments.size() == 2 && segments[0] == "auth" && segments[1] == "login") {
    if (method != "POST") return rest::error(Error(ErrorCode::kInvalidArgument, "use POST to log in"));
    Principal nobody;
    RouteCall call{request, nobody, {}, &*body};
    auto r = im.login(call);
    return r.ok() ? std::move(*r) : rest::error(r.error());
  }

  auto principal = im.authenticate(request);
  if (!principal.ok()) return rest::error(principal.error());
  if (write && principal->read_only) return rest::error(permissionDenied("this api key is read-only"));
  // A page of another site can make the browser send our cookie, but cannot read the CSRF token.
  if (write && principal->via_cookie && !im.web_signer.checkCsrf(request.cookie_token, request.csrf_token)) {
    return rest::error(permissionDenied("missing or wrong X-CSRF-Token header"));
  }
  RouteCall call{request, *principal, {}, body ? &*body : nullptr};
  auto r = im.dispatch(call, method, segments);
  return r.ok() ? std::move(*r) : rest::error(r.error());
}

// ---- auth routes ----------------------------------------------------------------------------

std::string RestApi::Impl::cookieHeader(std::string_view value, Duration max_age, bool secure) const {
  return options.cookie_name + "=" + std::string(value) +
         "; Path=/; Max-Age=" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(max_age).count()) +
         "; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "");
}

Result<json::object> RestApi::Impl::meJson(const User& user, const Principal& p, std::string_view cookie) {
  json::object o;
  KASM_ASSIGN_OR_RETURN(auto uo, rest::parseObject(toJson(user)));
  o["user"] = rest::redact(std::move(uo));
  json::array perms;
  for (const auto& perm : p.permissions) perms.emplace_back(perm);
  o["permissions"] = std::move(perms);
  if (!cookie.empty()) {
    o["csrf_token"] = web_signer.csrfToken(cookie);
    auto claims = web_signer.verify(cookie);
    if (claims.ok()) o["expires_at"] = toUnixMillis(claims->expires_at);
  }
  return o;
}

namespace {

// True for "application/json", with or without parameters ("; charset=utf-8"), in any case.
bool isJson(std::string_view content_type) {
  const auto semi = content_type.find(';');
  std::string_view media = content_type.substr(0, semi);
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  static constexpr std::string_view kJson = "application/json";
  if (media.size() != kJson.size()) return false;
  for (std::size_t i = 0; i < media.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(media[i])) != kJson[i]) return false;
  }
  return true;
}

// A well-formed hash, at the cost of real ones, that no password matches: a login for a user that
// does not exist (or has no password) is checked against it, so it takes as long as a wrong
// password and the answer time does not tell which user names exist.
const std::string& decoyPasswordHash() {
  static const std::string kDecoy = [] {
    const auth::PasswordHashParams p;
    return "$scrypt$ln=" + std::to_string(p.log2_n) + ",r=" + std::to_string(p.r) + ",p=" + std::to_string(p.p) + "$" +
           std::string(22, 'A') + "==$" + std::string(43, 'A') + "=";
  }();
  return kDecoy;
}

}  // namespace

RouteResult RestApi::Impl::login(const RouteCall& call) {
  // A cross-site form can post text/plain but not application/json (that needs a CORS preflight
  // we never grant), so insisting on JSON keeps other sites from logging a browser into an
  // account of their choosing.
  if (!isJson(call.request.content_type)) return invalidArgument("log in with Content-Type: application/json");
  const auto& b = *call.body;
  auto username = b.if_contains("username");
  auto password = b.if_contains("password");
  if (!username || !username->is_string() || !password || !password->is_string()) {
    return invalidArgument("username and password are required strings");
  }
  const std::string name(username->get_string());
  const std::string& address = call.request.remote_address;
  if (auto limited = limiter.check(name, address); !limited.ok()) {
    RestResponse r = rest::error(limited.error());
    r.headers.emplace_back("Retry-After", std::to_string(limiter.retryAfter(name, address)));
    return r;
  }
  KASM_ASSIGN_OR_RETURN(auto users, repo.list<User>(spi::Query().where("username", name)));
  const bool known = !users.empty() && !users.front().value.password_hash.empty();
  const std::string_view phc = known ? std::string_view(users.front().value.password_hash) : decoyPasswordHash();
  const std::string_view given(password->get_string());
  const bool matches = options.verify_password ? options.verify_password(given, phc) : auth::verifyPassword(given, phc);
  // The same answer for an unknown user and a wrong password, so names cannot be probed.
  if (!known || !matches) {
    limiter.recordFailure(name, address);
    return unauthenticated("wrong user name or password");
  }
  auto user = users.front();
  if (user.value.locked) return permissionDenied("this account is locked; ask an administrator");
  KASM_ASSIGN_OR_RETURN(Principal p, principalOfUser(user.value));
  limiter.recordSuccess(name, address);
  user.value.last_login_at = clock.now();
  (void)repo.update(user.value, user.version);  // Best effort: a lost race only loses the timestamp.

  const std::string cookie = web_signer.issue(user.value.id, options.login_ttl, auth::generateToken(9));
  KASM_ASSIGN_OR_RETURN(auto o, meJson(user.value, p, cookie));
  RestResponse r = rest::reply(200, o);
  r.headers.emplace_back("Set-Cookie", cookieHeader(cookie, options.login_ttl, call.request.secure));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

RouteResult RestApi::Impl::logout(const RouteCall& call) {
  if (call.principal.via_cookie && call.principal.user) {
    // Logs out every browser of this user, and closes their desktops: cookies and session access
    // tokens issued before now stop working.
    KASM_RETURN_IF_ERROR(detail::revokeLogins(repo, clock, *call.principal.user));
    accessRevoked(*call.principal.user);
  }
  RestResponse r;
  r.status = 204;
  r.headers.emplace_back("Set-Cookie", cookieHeader("", Duration(0), call.request.secure));
  return r;
}

RouteResult RestApi::Impl::me(const RouteCall& call) {
  if (!call.principal.user) return notFound("this api key belongs to no user");
  KASM_ASSIGN_OR_RETURN(auto user, repo.get<User>(call.principal.user->str()));
  KASM_ASSIGN_OR_RETURN(auto o, meJson(user.value, call.principal, call.request.cookie_token));
  RestResponse r = rest::reply(200, o);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

}  // namespace kasm::api
