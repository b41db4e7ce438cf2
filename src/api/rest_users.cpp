// REST API: users, groups and their members, api keys. Everything here grants or uses
// permissions, so each write checks that the caller holds what it hands out or touches.

#include "api/authorization.hpp"
#include "api/rest_collections.hpp"
#include "kasm/auth/password.hpp"
#include "kasm/auth/secret.hpp"

namespace kasm::api {

using namespace rest;

namespace {

// A login editing its own account (profile, password). API keys never count as their owner here:
// a key acts within its own permissions, so changing its owner needs users:manage like anyone else.
bool editsSelf(const Principal& p, const std::optional<User>& before) {
  return before && p.via_cookie && p.is(before->id);
}

Result<User> saveUser(RestApi::Impl& im, const RouteCall& call, User u, const std::optional<User>& before) {
  const auto& p = call.principal;
  const auto& b = *call.body;
  if (!editsSelf(p, before)) {
    KASM_RETURN_IF_ERROR(require(p, permissions::kUsersManage));
    if (before) KASM_RETURN_IF_ERROR(detail::requireMayManageUser(im.repo, p.permissions, *before));
  }
  if (auto pw = b.if_contains("password"); pw && !pw->is_null()) {
    if (!pw->is_string() || pw->get_string().size() < 8 || pw->get_string().size() > 1024) {
      return invalidArgument("password must be a string of 8 to 1024 characters");
    }
    KASM_ASSIGN_OR_RETURN(u.password_hash, auth::hashPassword(std::string_view(pw->get_string())));
    // A new password ends every login and desktop token issued with the old one.
    if (before) u.sessions_valid_after = detail::revocationInstant(im.clock);
  }
  const std::vector<GroupId> no_groups;
  const auto& groups_before = before ? before->group_ids : no_groups;
  if (groups_before != u.group_ids) {
    // Membership grants permissions: it takes users:manage, and only groups whose permissions the
    // caller holds itself.
    KASM_RETURN_IF_ERROR(require(p, permissions::kUsersManage));
    KASM_RETURN_IF_ERROR(detail::requireMayGrantGroups(im.repo, p.permissions, groups_before, u.group_ids));
  }
  if (!before) {
    if (u.group_ids.empty()) {
      KASM_ASSIGN_OR_RETURN(auto groups,
                            im.repo.list<Group>(spi::Query().where("name", im.options.default_group_name)));
      if (!groups.empty()) u.group_ids.push_back(groups.front().value.id);
    }
    return saveInRepo<User, UserId>(im, std::move(u));
  }
  if (before->disabled != u.disabled || before->locked != u.locked) {
    KASM_RETURN_IF_ERROR(require(p, permissions::kUsersManage));
    if (p.is(before->id)) return failedPrecondition("you cannot disable or lock yourself");
  }
  KASM_ASSIGN_OR_RETURN(User saved, (saveInRepo<User, UserId>(im, std::move(u))));
  detail::afterUserChange(im.manager, *before, saved, im.options.on_access_revoked);
  return saved;
}

}  // namespace

RouteResult rest::usersRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  const auto& p = call.principal;
  if (call.params.empty()) {
    KASM_RETURN_IF_ERROR(require(p, permissions::kUsersManage));
    if (method == "GET") return listOf<User>(im, call, {});
    if (method == "POST") {
      return writeOne<User>(im, call, std::nullopt,
                            [&](User u) { return saveUser(im, call, std::move(u), std::nullopt); });
    }
    return methodNotAllowed(method, "/users");
  }
  const std::string& id = call.params[0];
  if (method == "GET") {
    // Reading one's own record is what /auth/me does for any principal of the user.
    if (!p.is(UserId(id))) KASM_RETURN_IF_ERROR(require(p, permissions::kUsersManage));
    return getOne<User>(im, id);
  }
  if (method == "PATCH" || method == "PUT") {
    // saveUser() decides: a login may edit its own profile, the rest needs users:manage.
    if (!p.is(UserId(id)) || !p.via_cookie) KASM_RETURN_IF_ERROR(require(p, permissions::kUsersManage));
    KASM_ASSIGN_OR_RETURN(auto before, im.repo.get<User>(id));
    return writeOne<User>(im, call, id, [&](User u) { return saveUser(im, call, std::move(u), before.value); });
  }
  if (method == "DELETE") {
    KASM_RETURN_IF_ERROR(require(p, permissions::kUsersManage));
    if (p.is(UserId(id))) return failedPrecondition("you cannot delete yourself");
    // ?delete_profiles=true: their per-user persistent profiles go too (answered 200 with what was
    // removed and what was not); without it, 204 and the profiles stay.
    const std::string_view flag = call.queryValue("delete_profiles");
    if (!flag.empty() && flag != "true" && flag != "false") {
      return invalidArgument("delete_profiles must be true or false");
    }
    const bool delete_profiles = flag == "true";
    KASM_ASSIGN_OR_RETURN(auto target, im.repo.get<User>(id));
    KASM_RETURN_IF_ERROR(detail::requireMayManageUser(im.repo, p.permissions, target.value));
    KASM_ASSIGN_OR_RETURN(auto live, im.repo.list<Session>(spi::Query().where("user_id", id)));
    for (const auto& s : live) {
      if (s.value.state != SessionState::kDestroyed && s.value.state != SessionState::kFailed) {
        (void)im.manager.destroySession(s.value.id, "the user was deleted");
      }
    }
    // A session whose end did not finish still has the profile mounted: keep the user and refuse.
    if (delete_profiles) KASM_RETURN_IF_ERROR(detail::requireNoProfileInUse(im.repo, target.value));
    KASM_RETURN_IF_ERROR(im.repo.remove<User>(id));
    im.accessRevoked(target.value.id);
    if (!delete_profiles) return noContent();
    auto removal = im.manager.removeUserProfiles(target.value);
    if (!removal.ok()) {
      return removal.error().withContext("user '" + target.value.username +
                                         "' was deleted, but their persistent profiles were not removed");
    }
    boost::json::object report = detail::profileRemovalJson(*removal);
    report["user_id"] = id;
    return rest::reply(200, std::move(report));
  }
  return methodNotAllowed(method, "/users/{id}");
}

// Adds or removes one member: users:manage, over a user the caller may manage, and (to add) a
// group whose permissions the caller holds.
static RouteResult changeMembership(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  const auto& p = call.principal;
  KASM_RETURN_IF_ERROR(require(p, permissions::kUsersManage));
  KASM_ASSIGN_OR_RETURN(auto group, im.repo.get<Group>(call.params[0]));
  for (int attempt = 0; attempt < 8; ++attempt) {
    KASM_ASSIGN_OR_RETURN(auto user, im.repo.get<User>(call.params[2]));
    KASM_RETURN_IF_ERROR(detail::requireMayManageUser(im.repo, p.permissions, user.value));
    const auto before = user.value.group_ids;
    auto& gids = user.value.group_ids;
    const bool member = std::find(gids.begin(), gids.end(), group.value.id) != gids.end();
    if (method == "POST" && !member) gids.push_back(group.value.id);
    if (method == "DELETE") std::erase(gids, group.value.id);
    KASM_RETURN_IF_ERROR(detail::requireMayGrantGroups(im.repo, p.permissions, before, gids));
    auto w = im.repo.update(user.value, user.version);
    if (w.ok()) return noContent();
    if (w.error().code() != ErrorCode::kAborted) return w.error();
  }
  return aborted("the user changed concurrently; retry");
}

RouteResult rest::groupsRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  const auto& p = call.principal;
  if (call.params.size() == 3 && call.params[1] == "users") {
    if (method != "POST" && method != "DELETE") return methodNotAllowed(method, "/groups/{id}/users/{user_id}");
    return changeMembership(im, call, method);
  }
  if (method == "GET") {
    KASM_RETURN_IF_ERROR(require(p, permissions::kUsersManage));
  } else if (!p.isAdmin()) {
    // Groups carry permissions: changing them is an admin's job.
    return permissionDenied("only an admin changes groups");
  }
  auto save = [&](Group g) -> Result<Group> {
    for (const auto& perm : g.permissions) {
      if (!permissions::isKnown(perm)) return invalidArgument("permissions: unknown permission '" + perm + "'");
    }
    return saveInRepo<Group, GroupId>(im, std::move(g));
  };
  if (call.params.empty()) {
    if (method == "GET") return listOf<Group>(im, call, {});
    if (method == "POST") return writeOne<Group>(im, call, std::nullopt, save);
    return methodNotAllowed(method, "/groups");
  }
  if (call.params.size() != 1) return notFound("no such route");
  const std::string& id = call.params[0];
  if (method == "GET") return getOne<Group>(im, id);
  if (method == "PUT" || method == "PATCH") return writeOne<Group>(im, call, id, save);
  if (method == "DELETE") {
    KASM_RETURN_IF_ERROR(im.repo.remove<Group>(id));
    return noContent();
  }
  return methodNotAllowed(method, "/groups/{id}");
}

RouteResult rest::apiKeysRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method) {
  // API keys carry permissions of their own: only an admin hands them out.
  if (!call.principal.isAdmin()) return permissionDenied("only an admin manages api keys");
  if (call.params.empty()) {
    if (method == "GET") return listOf<ApiKey>(im, call, {});
    if (method == "POST") {
      KASM_ASSIGN_OR_RETURN(ApiKey k, patched(ApiKey{}, *call.body));
      if (k.permissions.empty()) return invalidArgument("permissions: name at least one");
      for (const auto& perm : k.permissions) {
        if (!permissions::isKnown(perm)) return invalidArgument("permissions: unknown permission '" + perm + "'");
      }
      const std::string secret = auth::generateToken(32);
      k.id = ApiKeyId::generate();
      k.key = auth::generateToken(12);
      k.secret_hash = auth::hashSecret(secret);
      k.created_at = im.clock.now();
      KASM_RETURN_IF_ERROR(k.validate());
      KASM_RETURN_IF_ERROR(im.repo.insert(k));
      KASM_ASSIGN_OR_RETURN(auto o, toObject(k));
      o["api_key"] = k.key;
      o["api_key_secret"] = secret;  // Shown once.
      return rest::reply(201, o);
    }
    return methodNotAllowed(method, "/api-keys");
  }
  const std::string& id = call.params[0];
  if (method == "GET") return getOne<ApiKey>(im, id);
  if (method == "DELETE") {
    KASM_RETURN_IF_ERROR(im.repo.remove<ApiKey>(id));
    return noContent();
  }
  return methodNotAllowed(method, "/api-keys/{id}");
}

}  // namespace kasm::api
