#pragma once

// Private state of kasm::api::RestApi, shared by its implementation files.

#include <boost/json.hpp>
#include <functional>
#include <set>
#include <unordered_map>

#include "kasm/api/rest_api.hpp"
#include "kasm/store/repository.hpp"

namespace kasm::api {

// Who is calling, after authentication.
struct Principal {
  std::optional<UserId> user;  // Empty for an API key without an owner.
  std::set<std::string> permissions;
  bool read_only = false;
  bool via_cookie = false;
  bool can(std::string_view permission) const {
    return permissions.count(std::string(permissions::kAdmin)) > 0 || permissions.count(std::string(permission)) > 0;
  }
  bool isAdmin() const { return permissions.count(std::string(permissions::kAdmin)) > 0; }
  bool is(const UserId& id) const { return user && *user == id; }
  // Acting on the caller's own things (own sessions, own account): a login may; an API key only
  // with `permission`, because a key acts within its own permission set, its owner's things included.
  bool mayActAsOwner(std::string_view permission) const { return via_cookie || can(permission); }
};

// One matched route: the path's {id} parts in order.
struct RouteCall {
  const RestRequest& request;
  const Principal& principal;
  std::vector<std::string> params;
  const boost::json::object* body = nullptr;  // Parsed body of writes (an object), else null.
  std::string_view queryValue(std::string_view key) const {
    for (const auto& [k, v] : request.query) {
      if (k == key) return v;
    }
    return {};
  }
};

using RouteResult = Result<RestResponse>;

struct RestApi::Impl {
  Impl(Manager& m, spi::Store& s, Clock& c, const auth::AccessTokenSigner& sg, const auth::WebSessionSigner& wsg,
       RestApiOptions o)
      : manager(m),
        repo(s),
        clock(c),
        signer(sg),
        web_signer(wsg),
        options(std::move(o)),
        limiter(c, options.login_limits) {}

  Manager& manager;
  Repository repo;
  Clock& clock;
  const auth::AccessTokenSigner& signer;
  const auth::WebSessionSigner& web_signer;
  RestApiOptions options;
  auth::LoginRateLimiter limiter;
  std::string openapi;

  // rest_api.cpp
  Result<Principal> authenticate(const RestRequest& request);
  Result<Principal> principalOfUser(const User& user);
  // Tells the server (RestApiOptions::on_access_revoked) that `user` lost access.
  void accessRevoked(const UserId& user) const {
    if (options.on_access_revoked) options.on_access_revoked(user);
  }
  RouteResult login(const RouteCall& call);
  RouteResult logout(const RouteCall& call);
  RouteResult me(const RouteCall& call);
  Result<boost::json::object> meJson(const User& user, const Principal& p, std::string_view cookie);
  std::string cookieHeader(std::string_view value, Duration max_age, bool secure) const;

  // rest_resources.cpp
  RouteResult dispatch(const RouteCall& call, std::string_view method, const std::vector<std::string>& segments);
  // A workspace as `p` may see it: without workspaces:manage, no container configuration (run
  // config, exec hooks and their environment, host volume paths).
  Result<boost::json::object> workspaceJson(const Workspace& w, const Principal& p);
  // A staging pool with `active` and, when it cannot fill, `inactive_reason` (disabled, or the
  // licence lacks the staging feature or allows no new session).
  Result<boost::json::object> stagingJson(const StagingConfig& c);
  // rest_autoscale.cpp: provider secrets masked, and the autoscaler's latest word on it.
  Result<boost::json::object> autoscaleJson(const AutoscaleConfig& c);

  // rest_sessions.cpp
  using ProtocolCache = std::unordered_map<WorkspaceId, std::optional<SessionProtocol>>;
  Result<boost::json::object> sessionJson(const Session& s, const Principal& p, ProtocolCache* protocols = nullptr);
};

namespace rest {
RestResponse reply(int status, const boost::json::value& body);
RestResponse error(const Error& e);
Result<boost::json::object> parseObject(std::string_view body);
// Removes what must never leave the server (hashes of secrets).
boost::json::object redact(boost::json::object o);
std::string buildOpenApi();
}  // namespace rest

}  // namespace kasm::api
