#pragma once

// Session sharing: an owner shares a running session by a link (a share id), others join it and
// watch, or take control when the owner gives it to them. The rules live here, once, for every API
// (REST, Kasm's developer API) and for the proxy's authorizer:
//
// - Only the owner (or a principal that manages sessions, which the API layers check) shares, and
//   only when the owner's group allows it (GroupSettings::allow_sharing) and the licence includes
//   the `sharing` feature.
// - A share id has 128 bits from the OS CSPRNG. It is stored sealed (AES-256-GCM) and hashed
//   (the share index), never in clear. It can expire, and is revoked by deleteShare().
// - Joining gives read-only access ("r"). The owner may give control ("rw") only when their group
//   allows it (GroupSettings::shared_session_full_control).
// - Every change of who may do what is reported to the ViewerListener at once, so the proxy can
//   close a revoked viewer's connections and switch a viewer between watching and controlling
//   while they stay connected. When the session ends, its share and permissions end with it.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"
#include "kasm/model/model.hpp"
#include "kasm/spi/store.hpp"

namespace kasm {
class Manager;
}

namespace kasm::share {

struct SharingOptions {
  // The installation's secret key (32 bytes or more), which seals share ids. Usually the same as
  // ManagerOptions::session_secret_key.
  std::string secret_key;
  // The licence feature sharing needs; empty: none (an embedder that licenses nothing).
  std::string required_feature = "sharing";
};

// What someone may do on a session's desktop.
enum class Role { kOwner, kControl, kWatch };

// A change the proxy must apply to live connections: `user`'s access to `session` is now `access`,
// or gone (nullopt: close their connections).
struct ViewerChange {
  SessionId session;
  UserId user;
  std::optional<ShareAccess> access;
};
using ViewerListener = std::function<void(const ViewerChange&)>;

struct JoinResult {
  Session session;
  ShareAccess access = ShareAccess::kRead;
};

// Thread-safe; updates are compare-and-set on the session row, so several servers may share one store.
class Sharing {
 public:
  // InvalidArgument when the key is shorter than 32 bytes.
  static Result<std::unique_ptr<Sharing>> create(Manager& manager, spi::Store& store, const Clock& clock,
                                                 SharingOptions options);
  ~Sharing();

  // Called (outside any lock) after every change that affects live viewers. Set it before use.
  void setListener(ViewerListener listener);

  // OK when `owner` may share sessions now: their group allows it and the licence includes sharing.
  Result<void> mayShare(const UserId& owner);

  // Makes the session's share link, or returns the one it has. `by` must be the owner or someone
  // the API layer let act for them. FailedPrecondition once the session ended (a starting session
  // can be shared; joiners see it when it runs); PermissionDenied
  // when the owner's group does not allow sharing or the licence lacks the feature.
  Result<std::string> createShare(const SessionId& session, std::optional<TimePoint> expires_at);
  // The session's share id; nullopt when it has none (or it expired).
  Result<std::optional<std::string>> shareId(const SessionId& session);
  // The same, from a session already read.
  std::optional<std::string> shareIdOf(const Session& session) const;
  // Revokes the link and everyone who joined by it: their connections close at once.
  Result<void> deleteShare(const SessionId& session);

  // `user` joins the session shared as `share_id` (read-only, or with the access they already
  // have). NotFound for an unknown, revoked or expired share id (without saying which);
  // FailedPrecondition when the session no longer runs. The owner joining their own session is
  // not an error: they get their own access.
  Result<JoinResult> join(std::string_view share_id, const UserId& user);

  Result<std::vector<SessionPermission>> permissions(const SessionId& session);
  // Grants or changes `user`'s access. PermissionDenied for "rw" when the owner's group does not
  // allow full control; InvalidArgument for the owner themself.
  Result<SessionPermission> setPermission(const SessionId& session, const UserId& user, ShareAccess access);
  // NotFound when the user had no permission.
  Result<void> removePermission(const SessionId& session, const UserId& user);

  // What `user` may do on `session` now: the owner, or a joiner with a permission. PermissionDenied
  // for anyone else.
  static Result<Role> roleOf(const Session& session, const UserId& user);

  // Forgets the share and the permissions of a session that ended (the background loop calls it
  // for ended sessions that still have them). Viewers are told to go.
  Result<void> endSession(const SessionId& session);

  struct Impl;

 private:
  explicit Sharing(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kasm::share
