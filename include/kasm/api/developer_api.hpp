#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "kasm/auth/access_token.hpp"
#include "kasm/core/clock.hpp"
#include "kasm/manager/manager.hpp"
#include "kasm/spi/store.hpp"

namespace kasm::api {

// A response of the API layer, independent of the HTTP library: a status code and a JSON body.
struct ApiResponse {
  int status = 200;
  std::string body;
};

struct DeveloperApiOptions {
  // Lifetime of the session access tokens handed out in kasm_url / session_token.
  Duration session_token_ttl = std::chrono::hours(8);
  // URL prefix of session pages served by the proxy.
  std::string session_path_prefix = "/desktop/";
  // Bodies larger than this are refused before parsing.
  std::size_t max_body_bytes = 1024 * 1024;
  // Name of the group new users join (Kasm's "All Users"); none when missing.
  std::string default_group_name = "All Users";
  // Runs a task on another thread (false when it cannot be queued). When set, request_kasm
  // answers as soon as the session is placed (status "starting"; poll get_kasm_status for
  // operational_status, operational_message and operational_progress) and the container starts
  // in such a task; otherwise it answers once the session runs. Must not share threads with the
  // callers of handle().
  std::function<bool(std::function<void()>)> background;
};

// Kasm's public developer API (POST /api/public/<verb>, JSON bodies carrying api_key and
// api_key_secret, errors as {"error_message": ...}) on top of the Manager and the Store, so an
// existing Kasm API client works unchanged. Verbs: request_kasm, get_kasm_status, destroy_kasm,
// keepalive, get_kasms, exec_command_kasm, get_user, get_users, create_user, update_user,
// delete_user, logout_user, get_images, add_user_group, remove_user_group.
//
// Authorisation: the key must exist, be enabled and unexpired, and its secret must verify; then the
// verb needs a permission (sessions:manage for session verbs, users:manage for user verbs, any
// permission for get_images; admin grants all), and read-only keys may only call get_* verbs.
// Credentials may also come as HTTP Basic (`authorization` = the Authorization header value).
//
// Thread-safe; handle() blocks while the manager talks to agents (request_kasm waits until the
// session runs), so servers call it on a worker pool.
class DeveloperApi {
 public:
  DeveloperApi(Manager& manager, spi::Store& store, Clock& clock, const auth::AccessTokenSigner& signer,
               DeveloperApiOptions options = {});
  ~DeveloperApi();

  ApiResponse handle(std::string_view verb, std::string_view body, std::string_view authorization = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kasm::api
