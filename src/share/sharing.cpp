#include "kasm/share/sharing.hpp"

#include <mutex>

#include "kasm/auth/seal.hpp"
#include "kasm/auth/secret.hpp"
#include "kasm/license/licensing.hpp"
#include "kasm/manager/manager.hpp"
#include "kasm/store/repository.hpp"

namespace kasm::share {
namespace {

constexpr std::string_view kSealPurpose = "share-id";
constexpr int kMaxRetries = 16;

// The share index key of a share id: its SHA-256 (hex, without hashSecret's "$sha256$").
std::string lookupOf(std::string_view share_id) {
  return auth::hashSecret(share_id).substr(8);
}

// States in which a session can be shared and joined.
bool live(SessionState st) {
  return st == SessionState::kRequested || st == SessionState::kProvisioning || st == SessionState::kRunning ||
         st == SessionState::kPaused;
}

bool wellFormedShareId(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

struct Sharing::Impl {
  Impl(Manager& m, spi::Store& s, const Clock& c, SharingOptions o)
      : manager(m), store(s), repo(s), clock(c), options(std::move(o)) {}
  Manager& manager;
  spi::Store& store;
  Repository repo;
  const Clock& clock;
  SharingOptions options;
  std::mutex listener_mutex;
  ViewerListener listener;

  void notify(const std::vector<ViewerChange>& changes) {
    ViewerListener l;
    {
      std::lock_guard lock(listener_mutex);
      l = listener;
    }
    if (!l) return;
    for (const auto& c : changes) l(c);
  }

  bool expired(const SessionShare& share) const { return share.expires_at && *share.expires_at <= clock.now(); }

  // Reads the session, lets `change` edit it (and add mutations to the same batch), and writes it
  // back with a compare-and-set, retrying lost races. `change` returns false to write nothing.
  template <class Fn>
  Result<Session> mutate(const SessionId& id, Fn&& change) {
    for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
      auto cur = repo.get<Session>(id.str());
      if (!cur.ok()) {
        if (cur.error().code() == ErrorCode::kNotFound) return notFound("session " + id.str() + " does not exist");
        return cur.error();
      }
      Session s = cur->value;
      std::vector<spi::Mutation> extra;
      KASM_ASSIGN_OR_RETURN(bool write, change(s, extra));
      if (!write) return s;
      KASM_ASSIGN_OR_RETURN(auto op, Repository::updateOp(s, cur->version));
      extra.insert(extra.begin(), std::move(op));
      auto applied = store.apply(extra);
      if (applied.ok()) return s;
      if (applied.error().code() != ErrorCode::kAborted) return applied.error();
    }
    return aborted("session " + id.str() + " kept changing; try again");
  }

  Result<void> mayShare(const Session& s) {
    if (!live(s.state)) {
      return failedPrecondition("session " + s.id.str() + " is " + std::string(enumName(s.state)) +
                                "; only a live session can be shared");
    }
    return ownerMayShare(s.user_id);
  }
  Result<void> ownerMayShare(const UserId& owner) {
    KASM_ASSIGN_OR_RETURN(GroupSettings settings, manager.effectiveSettings(owner));
    if (!settings.allow_sharing) return permissionDenied("the owner's group does not allow sharing sessions");
    if (!options.required_feature.empty()) {
      KASM_RETURN_IF_ERROR(manager.licensing().requireFeature(options.required_feature));
    }
    return {};
  }
};

Result<std::unique_ptr<Sharing>> Sharing::create(Manager& manager, spi::Store& store, const Clock& clock,
                                                 SharingOptions options) {
  if (options.secret_key.size() < 32) {
    return invalidArgument("sharing: the secret key must have at least 32 bytes (it seals share ids)");
  }
  return std::unique_ptr<Sharing>(new Sharing(std::make_unique<Impl>(manager, store, clock, std::move(options))));
}

Sharing::Sharing(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sharing::~Sharing() = default;

void Sharing::setListener(ViewerListener listener) {
  std::lock_guard lock(impl_->listener_mutex);
  impl_->listener = std::move(listener);
}

Result<void> Sharing::mayShare(const UserId& owner) {
  return impl_->ownerMayShare(owner);
}

Result<std::string> Sharing::createShare(const SessionId& session, std::optional<TimePoint> expires_at) {
  auto& im = *impl_;
  if (expires_at && *expires_at <= im.clock.now()) return invalidArgument("expires_at is in the past");
  std::string made;
  KASM_ASSIGN_OR_RETURN(
      Session s, im.mutate(session, [&](Session& s, std::vector<spi::Mutation>& extra) -> Result<bool> {
        KASM_RETURN_IF_ERROR(im.mayShare(s));
        if (s.share && !im.expired(*s.share)) {
          // Already shared: the same link (a new expiry, when asked for, replaces the old one).
          KASM_ASSIGN_OR_RETURN(made, auth::unseal(im.options.secret_key, kSealPurpose, s.share->sealed_id));
          if (!expires_at || s.share->expires_at == expires_at) return false;
          s.share->expires_at = expires_at;
          return true;
        }
        if (s.share) {
          // An expired link is replaced, never revived.
          extra.push_back(Repository::removeOp<ShareIndex>(s.share->lookup, std::nullopt));
        }
        made = auth::generateToken(16);
        SessionShare share;
        KASM_ASSIGN_OR_RETURN(share.sealed_id, auth::seal(im.options.secret_key, kSealPurpose, made));
        share.lookup = lookupOf(made);
        share.created_by = s.user_id;
        share.created_at = im.clock.now();
        share.expires_at = expires_at;
        s.share = share;
        KASM_ASSIGN_OR_RETURN(auto index, Repository::insertOp(ShareIndex{share.lookup, s.id, share.created_at}));
        extra.push_back(std::move(index));
        return true;
      }));
  (void)s;
  return made;
}

Result<std::optional<std::string>> Sharing::shareId(const SessionId& session) {
  auto& im = *impl_;
  auto s = im.repo.get<Session>(session.str());
  if (!s.ok()) {
    if (s.error().code() == ErrorCode::kNotFound) return notFound("session " + session.str() + " does not exist");
    return s.error();
  }
  if (!s->value.share || im.expired(*s->value.share)) return std::optional<std::string>();
  KASM_ASSIGN_OR_RETURN(auto id, auth::unseal(im.options.secret_key, kSealPurpose, s->value.share->sealed_id));
  return std::optional<std::string>(std::move(id));
}

std::optional<std::string> Sharing::shareIdOf(const Session& session) const {
  if (!session.share || impl_->expired(*session.share)) return std::nullopt;
  auto id = auth::unseal(impl_->options.secret_key, kSealPurpose, session.share->sealed_id);
  if (!id.ok()) return std::nullopt;
  return std::move(*id);
}

Result<void> Sharing::deleteShare(const SessionId& session) {
  auto& im = *impl_;
  std::vector<ViewerChange> gone;
  KASM_ASSIGN_OR_RETURN(Session s,
                        im.mutate(session, [&](Session& s, std::vector<spi::Mutation>& extra) -> Result<bool> {
                          gone.clear();
                          if (!s.share && s.permissions.empty()) return false;
                          if (s.share) extra.push_back(Repository::removeOp<ShareIndex>(s.share->lookup, std::nullopt));
                          for (const auto& p : s.permissions) gone.push_back({s.id, p.user_id, std::nullopt});
                          s.share.reset();
                          s.permissions.clear();
                          return true;
                        }));
  (void)s;
  im.notify(gone);
  return {};
}

Result<JoinResult> Sharing::join(std::string_view share_id, const UserId& user) {
  auto& im = *impl_;
  const auto unknown = notFound("no session is shared as this share id (it may have been revoked or expired)");
  if (!wellFormedShareId(share_id)) return unknown;
  const std::string lookup = lookupOf(share_id);
  auto index = im.repo.get<ShareIndex>(lookup);
  if (!index.ok()) return index.error().code() == ErrorCode::kNotFound ? unknown : index.error();
  auto joiner = im.repo.get<User>(user.str());
  if (!joiner.ok()) {
    if (joiner.error().code() == ErrorCode::kNotFound) return notFound("user " + user.str() + " does not exist");
    return joiner.error();
  }
  if (!joiner->value.canAct()) return permissionDenied("user '" + joiner->value.username + "' is disabled or locked");
  JoinResult out;
  KASM_ASSIGN_OR_RETURN(
      out.session, im.mutate(index->value.session_id, [&](Session& s, std::vector<spi::Mutation>&) -> Result<bool> {
        // The link must still be this session's live one.
        if (!s.share || s.share->lookup != lookup || im.expired(*s.share)) return unknown;
        if (!live(s.state)) return failedPrecondition("the shared session is " + std::string(enumName(s.state)));
        if (s.user_id == user) {
          out.access = ShareAccess::kReadWrite;
          return false;
        }
        if (const auto* p = s.permissionOf(user)) {
          out.access = p->access;
          return false;
        }
        if (s.permissions.size() >= kMaxSessionPermissions) {
          return resourceExhausted("this session is already shared with " + std::to_string(kMaxSessionPermissions) +
                                   " people");
        }
        s.permissions.push_back({user, joiner->value.username, ShareAccess::kRead, im.clock.now()});
        out.access = ShareAccess::kRead;
        return true;
      }));
  return out;
}

Result<std::vector<SessionPermission>> Sharing::permissions(const SessionId& session) {
  auto s = impl_->repo.get<Session>(session.str());
  if (!s.ok()) {
    if (s.error().code() == ErrorCode::kNotFound) return notFound("session " + session.str() + " does not exist");
    return s.error();
  }
  return s->value.permissions;
}

Result<SessionPermission> Sharing::setPermission(const SessionId& session, const UserId& user, ShareAccess access) {
  auto& im = *impl_;
  auto target = im.repo.get<User>(user.str());
  if (!target.ok()) {
    if (target.error().code() == ErrorCode::kNotFound) return notFound("user " + user.str() + " does not exist");
    return target.error();
  }
  SessionPermission granted;
  bool changed = false;
  KASM_ASSIGN_OR_RETURN(Session s, im.mutate(session, [&](Session& s, std::vector<spi::Mutation>&) -> Result<bool> {
    changed = false;
    if (s.user_id == user) {
      return invalidArgument("the owner of a session always has full control of it");
    }
    KASM_RETURN_IF_ERROR(im.mayShare(s));
    if (access == ShareAccess::kReadWrite) {
      KASM_ASSIGN_OR_RETURN(GroupSettings settings, im.manager.effectiveSettings(s.user_id));
      if (!settings.shared_session_full_control) {
        return permissionDenied("the owner's group does not allow giving control of a shared session");
      }
    }
    for (auto& p : s.permissions) {
      if (p.user_id != user) continue;
      granted = p;
      if (p.access == access) return false;
      p.access = access;
      granted = p;
      changed = true;
      return true;
    }
    if (s.permissions.size() >= kMaxSessionPermissions) {
      return resourceExhausted("this session is already shared with " + std::to_string(kMaxSessionPermissions) +
                               " people");
    }
    granted = {user, target->value.username, access, im.clock.now()};
    s.permissions.push_back(granted);
    changed = true;
    return true;
  }));
  (void)s;
  if (changed) im.notify({{session, user, access}});
  return granted;
}

Result<void> Sharing::removePermission(const SessionId& session, const UserId& user) {
  auto& im = *impl_;
  bool found = false;
  KASM_ASSIGN_OR_RETURN(Session s, im.mutate(session, [&](Session& s, std::vector<spi::Mutation>&) -> Result<bool> {
    found = std::erase_if(s.permissions, [&](const auto& p) { return p.user_id == user; }) > 0;
    return found;
  }));
  (void)s;
  if (!found) return notFound("user " + user.str() + " has no permission on session " + session.str());
  im.notify({{session, user, std::nullopt}});
  return {};
}

Result<Role> Sharing::roleOf(const Session& session, const UserId& user) {
  if (session.user_id == user) return Role::kOwner;
  if (const auto* p = session.permissionOf(user)) {
    return p->access == ShareAccess::kReadWrite ? Role::kControl : Role::kWatch;
  }
  return permissionDenied("the session was not shared with this user");
}

Result<void> Sharing::endSession(const SessionId& session) {
  return deleteShare(session);
}

}  // namespace kasm::share
