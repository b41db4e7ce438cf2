#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "kasm/auth/access_token.hpp"
#include "kasm/core/clock.hpp"
#include "kasm/manager/manager.hpp"
#include "kasm/spi/store.hpp"

namespace kasm::share {
class Sharing;
}

namespace kasm::api {

// A response of the API layer, independent of the HTTP library: a status code and a JSON body.
struct ApiResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";  // get_kasm_screenshot answers image/png.
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
  // Called after a user lost access (disabled, locked, deleted, logged out, a new password), so the
  // server can close that user's open desktop connections at once. Runs on the calling thread.
  std::function<void(const UserId&)> on_access_revoked;
  // Takes a PNG of a running session's screen, `width` pixels wide (get_kasm_screenshot). Unset:
  // the verb answers 501. kasm-server: kasm::net::captureVncSnapshot on the session's upstream.
  std::function<Result<std::string>(const Session&, int width)> screenshot;
  // Session sharing (join_kasm, the share-id and session-permission verbs, request_kasm's
  // enable_sharing). Unset: those verbs answer 501. Not owned; outlives the API.
  share::Sharing* sharing = nullptr;
};

// One verb of the developer API and what its key needs: `permission` (admin grants all; empty: any
// permission at all), and whether a read-only key may call it. Some verbs ask more for some
// arguments: exec_command_kasm with `privileged` or `user` needs admin.
struct DeveloperApiVerb {
  std::string_view name;
  std::string_view permission;
  bool read = false;
};

// Kasm's public developer API (POST /api/public/<verb>, JSON bodies carrying api_key and
// api_key_secret, errors as {"error_message": ...}) on top of the Manager and the Store, so an
// existing Kasm API client works unchanged. Verbs: request_kasm, get_kasm_status, destroy_kasm,
// keepalive, get_kasms, exec_command_kasm, get_user, get_users, create_user, update_user,
// delete_user, logout_user, get_images, add_user_group, remove_user_group, get_attributes,
// update_user_attributes, and with DeveloperApiOptions::sharing join_kasm, create_kasm_share_id,
// get_kasm_share_id, delete_kasm_share_id, get_session_permissions, set_session_permissions and
// delete_session_permissions. The verbs of fixed servers (assign_user_server, ...) and
// get_kasm_frame_stats answer 501 "not supported" to an authenticated caller; get_kasm_screenshot answers image/png
// through DeveloperApiOptions::screenshot (501 when unset).
//
// Authorisation: the key must exist, be enabled and unexpired, its secret must verify and its owner
// (if any) must exist and be neither disabled nor locked; then the verb needs the permission of
// verbs() and read-only keys may only call get_* verbs. The same rules as the REST API apply on top:
// a key never manages a user who holds permissions it lacks nor adds anyone to a group carrying
// them; a read-only key never receives a session access token, and get_kasm_status hands one out
// only for the session's owner (the request names them, or the key is theirs); users launch only
// workspaces assigned to their groups. Credentials may also come as HTTP Basic (`authorization` =
// the Authorization header value).
//
// Thread-safe; handle() blocks while the manager talks to agents (request_kasm waits until the
// session runs), so servers call it on a worker pool.
class DeveloperApi {
 public:
  DeveloperApi(Manager& manager, spi::Store& store, Clock& clock, const auth::AccessTokenSigner& signer,
               DeveloperApiOptions options = {});
  ~DeveloperApi();

  // `idempotency_key`: the request's Idempotency-Key header, which request_kasm takes as its body's
  // `idempotency_key` (both sent and different: 400). A request_kasm with a key that names an
  // earlier launch of the user answers that session (SessionRequest::idempotency_key); without
  // user_id, the anonymous user is the same for every retry with the key through one API key.
  ApiResponse handle(std::string_view verb, std::string_view body, std::string_view authorization = {},
                     std::string_view idempotency_key = {});

  // Every verb handle() serves, with what it needs (the authorization matrix test walks it).
  static std::span<const DeveloperApiVerb> verbs();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kasm::api
