#pragma once

// The REST API for users and administrators (/api/v1/...), independent of the HTTP library, with
// its OpenAPI 3.1 description. Browser logins use a signed HttpOnly cookie plus a CSRF header;
// scripts use API keys (`Authorization: Bearer <api_key>:<api_key_secret>` or HTTP Basic).

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kasm/api/developer_api.hpp"
#include "kasm/auth/access_token.hpp"
#include "kasm/auth/web_session.hpp"
#include "kasm/core/clock.hpp"
#include "kasm/manager/manager.hpp"
#include "kasm/spi/store.hpp"

namespace kasm::autoscale {
class Autoscaler;
}

namespace kasm::api {

struct RestRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // Below the API root, e.g. "/api/v1/sessions/abc".
  std::vector<std::pair<std::string, std::string>> query;
  std::string body;
  std::string cookie_token;     // Value of the login cookie, if the request carried one.
  std::string csrf_token;       // Value of the X-CSRF-Token header.
  std::string authorization;    // Value of the Authorization header.
  std::string content_type;     // Value of the Content-Type header (login accepts JSON only).
  std::string idempotency_key;  // Value of the Idempotency-Key header (POST /sessions).
  std::string remote_address;
  bool secure = false;  // Reached over HTTPS (cookies get the Secure attribute).
};

struct RestResponse {
  int status = 200;
  std::string body;  // JSON, or empty for 204.
  std::vector<std::pair<std::string, std::string>> headers;
};

struct RestApiOptions {
  std::string cookie_name = "kasm_auth";
  Duration login_ttl = std::chrono::hours(12);
  // Lifetime of the session access tokens put in session URLs.
  Duration session_token_ttl = std::chrono::hours(8);
  std::string session_path_prefix = "/desktop/";
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_page = 1000;
  // Session sharing (/sessions/{id}/share, /sessions/{id}/permissions, /shares/{id}/join). Unset:
  // those routes answer 412. Not owned; outlives the API.
  share::Sharing* sharing = nullptr;
  // Autoscaling (/autoscale: configurations, their machines and decisions). Unset: those routes
  // answer 412. Not owned; outlives the API.
  autoscale::Autoscaler* autoscaler = nullptr;
  std::string default_group_name = "All Users";
  auth::LoginRateLimiter::Options login_limits;
  // Runs a task on another thread (false when it cannot be queued). When set, POST /sessions
  // answers 202 as soon as the session is placed and lets the container start in such a task;
  // otherwise it answers 201 once the session runs. Must not share threads with the callers of
  // handle(), which wait for the placement.
  std::function<bool(std::function<void()>)> background;
  // Called after a user lost access (disabled, locked, deleted, logged out everywhere, a new
  // password), so the server can close that user's open desktop connections at once. Runs on the
  // calling thread; must not call back into the RestApi.
  std::function<void(const UserId&)> on_access_revoked;
  // Checks a password against a stored hash; auth::verifyPassword unless a test observes it.
  std::function<bool(std::string_view password, std::string_view phc)> verify_password;
};

// Routes: auth (login, logout, me), workspaces, zones, agents, sessions, users, groups (and their
// members), api-keys, staging, settings, licenses, installation. Lists take `limit`, `offset` or
// `after` (keyset cursor) and per-collection filters, and answer {"items", "total", "limit",
// "offset", "next"}. Errors are {"error_message", "code"} with the status of the ErrorCode.
//
// Authorization: every route but login needs a principal; administration needs the permission named
// in the OpenAPI document (`x-kasm-permission`; admin grants all). One's own things (sessions, the
// account) need only a login, or for an API key the permission named in `x-kasm-owner-permission`:
// a key acts within its own permission set, its owner's things included. Nobody manages a user who
// holds permissions they lack, or adds anyone to a group that carries such permissions. Read-only
// API keys may only GET and never receive session access tokens; cookie-authenticated writes must
// carry the CSRF token; login takes JSON only (Content-Type: application/json), so a cross-site
// form cannot log a browser into another account.
//
// Thread-safe; handle() may block on the store and on agents (session start), so servers call it
// on a worker pool.
class RestApi {
 public:
  RestApi(Manager& manager, spi::Store& store, Clock& clock, const auth::AccessTokenSigner& signer,
          const auth::WebSessionSigner& web_signer, RestApiOptions options = {});
  ~RestApi();

  RestResponse handle(const RestRequest& request);
  // The OpenAPI 3.1 document (JSON) describing every route and schema handle() serves.
  const std::string& openApiDocument() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kasm::api
