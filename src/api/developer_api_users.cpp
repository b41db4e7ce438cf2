// Kasm-compatible developer API: users, groups and images.

#include <boost/json.hpp>

#include "api/authorization.hpp"
#include "api/developer_api_impl.hpp"
#include "kasm/auth/password.hpp"
#include "license/armor.hpp"

namespace kasm::api {

namespace json = boost::json;
using namespace detail;

namespace {

// Applies the writable fields of a Kasm target_user object onto `u`.
Result<void> applyUserFields(const json::object& t, User& u) {
  struct Field {
    const char* name;
    std::string User::*member;
  };
  static const Field kFields[] = {{"username", &User::username},         {"first_name", &User::first_name},
                                  {"last_name", &User::last_name},       {"email", &User::email},
                                  {"organization", &User::organization}, {"phone", &User::phone}};
  for (const auto& f : kFields) {
    KASM_ASSIGN_OR_RETURN(auto v, optionalString(t, f.name, "target_user."));
    if (v) u.*(f.member) = *v;
  }
  KASM_ASSIGN_OR_RETURN(auto locked, optionalBool(t, "locked", "target_user."));
  if (locked) u.locked = *locked;
  KASM_ASSIGN_OR_RETURN(auto disabled, optionalBool(t, "disabled", "target_user."));
  if (disabled) u.disabled = *disabled;
  KASM_ASSIGN_OR_RETURN(auto password, optionalString(t, "password", "target_user."));
  if (password) {
    KASM_ASSIGN_OR_RETURN(u.password_hash, auth::hashPassword(*password));
  }
  return {};
}

}  // namespace

Result<json::object> DeveloperApi::Impl::userJson(const User& u) {
  json::object o;
  o["user_id"] = u.id.str();
  o["username"] = u.username;
  o["first_name"] = u.first_name;
  o["last_name"] = u.last_name;
  o["email"] = u.email;
  o["organization"] = u.organization;
  o["phone"] = u.phone;
  o["locked"] = u.locked;
  o["disabled"] = u.disabled;
  o["realm"] = "local";
  o["created"] = kasmTime(u.created_at);
  o["last_session"] = u.last_login_at ? json::value(kasmTime(*u.last_login_at)) : json::value(nullptr);
  json::array groups;
  for (const auto& gid : u.group_ids) {
    auto g = repo.get<Group>(gid.str());
    if (!g.ok()) continue;  // A deleted group is not shown.
    json::object go;
    go["group_id"] = gid.str();
    go["name"] = g->value.name;
    groups.push_back(std::move(go));
  }
  o["groups"] = std::move(groups);
  KASM_ASSIGN_OR_RETURN(auto sessions, repo.list<Session>(spi::Query().where("user_id", u.id.str())));
  json::array kasms;
  for (const auto& s : sessions) {
    if (s.value.state == SessionState::kDestroyed || s.value.state == SessionState::kFailed) continue;
    kasms.push_back(kasmJson(s.value));
  }
  o["kasms"] = std::move(kasms);
  return o;
}

Result<Versioned<User>> DeveloperApi::Impl::targetUser(const json::object& o) {
  KASM_ASSIGN_OR_RETURN(const json::object* t, optionalObject(o, "target_user", ""));
  if (!t) return invalidArgument("target_user is required");
  KASM_ASSIGN_OR_RETURN(auto user_id, optionalString(*t, "user_id", "target_user."));
  KASM_ASSIGN_OR_RETURN(auto username, optionalString(*t, "username", "target_user."));
  if (user_id) {
    KASM_ASSIGN_OR_RETURN(auto id, UserId::parse(*user_id, "target_user.user_id"));
    auto u = repo.get<User>(id.str());
    if (!u.ok() && u.error().code() == ErrorCode::kNotFound) return notFound("user '" + *user_id + "' does not exist");
    return u;
  }
  if (username) {
    KASM_ASSIGN_OR_RETURN(auto found, repo.list<User>(spi::Query().where("username", *username)));
    if (found.empty()) return notFound("user '" + username->substr(0, 255) + "' does not exist");
    return found.front();
  }
  return invalidArgument("target_user.user_id or target_user.username is required");
}

Result<Versioned<User>> DeveloperApi::Impl::manageableUser(const json::object& o, const ApiKey& key) {
  KASM_ASSIGN_OR_RETURN(auto u, targetUser(o));
  KASM_RETURN_IF_ERROR(detail::requireMayManageUser(repo, key.permissions, u.value));
  return u;
}

Result<json::object> DeveloperApi::Impl::getUser(const json::object& o, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(auto u, targetUser(o));
  KASM_ASSIGN_OR_RETURN(auto uj, userJson(u.value));
  json::object out;
  out["user"] = std::move(uj);
  return out;
}

Result<json::object> DeveloperApi::Impl::getUsers(const json::object&, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(auto users, repo.list<User>());
  json::array arr;
  for (const auto& u : users) {
    KASM_ASSIGN_OR_RETURN(auto uj, userJson(u.value));
    arr.push_back(std::move(uj));
  }
  json::object out;
  out["users"] = std::move(arr);
  return out;
}

Result<json::object> DeveloperApi::Impl::createUser(const json::object& o, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(const json::object* t, optionalObject(o, "target_user", ""));
  if (!t) return invalidArgument("target_user is required");
  User u;
  u.id = UserId::generate();
  u.created_at = clock.now();
  KASM_RETURN_IF_ERROR(applyUserFields(*t, u));
  if (u.username.empty()) return invalidArgument("target_user.username is required");
  if (!options.default_group_name.empty()) {
    auto groups = repo.list<Group>(spi::Query().where("name", options.default_group_name));
    if (groups.ok() && !groups->empty()) u.group_ids.push_back(groups->front().value.id);
  }
  auto inserted = repo.insert(u);
  if (!inserted.ok()) {
    if (inserted.error().code() == ErrorCode::kAlreadyExists)
      return alreadyExists("username '" + u.username + "' is taken");
    return inserted.error();
  }
  KASM_ASSIGN_OR_RETURN(auto uj, userJson(u));
  json::object out;
  out["user"] = std::move(uj);
  return out;
}

Result<json::object> DeveloperApi::Impl::updateUser(const json::object& o, const ApiKey& key) {
  KASM_ASSIGN_OR_RETURN(auto u, manageableUser(o, key));
  const json::object& t = o.at("target_user").get_object();
  User changed = u.value;
  KASM_RETURN_IF_ERROR(applyUserFields(t, changed));
  // A new password ends every login and desktop token issued with the old one.
  if (changed.password_hash != u.value.password_hash) changed.sessions_valid_after = detail::revocationInstant(clock);
  auto w = repo.update(changed, u.version);
  if (!w.ok()) {
    if (w.error().code() == ErrorCode::kAlreadyExists)
      return alreadyExists("username '" + changed.username + "' is taken");
    return w.error();
  }
  detail::afterUserChange(manager, u.value, changed, options.on_access_revoked);
  KASM_ASSIGN_OR_RETURN(auto uj, userJson(changed));
  json::object out;
  out["user"] = std::move(uj);
  return out;
}

Result<json::object> DeveloperApi::Impl::deleteUser(const json::object& o, const ApiKey& key) {
  KASM_ASSIGN_OR_RETURN(auto u, manageableUser(o, key));
  KASM_ASSIGN_OR_RETURN(auto force, optionalBool(o, "force", ""));
  // delete_profiles: their per-user persistent profiles go too; the answer says what was removed.
  KASM_ASSIGN_OR_RETURN(auto delete_profiles_field, optionalBool(o, "delete_profiles", ""));
  const bool delete_profiles = delete_profiles_field.value_or(false);
  KASM_ASSIGN_OR_RETURN(auto sessions, repo.list<Session>(spi::Query().where("user_id", u.value.id.str())));
  std::vector<SessionId> live;
  for (const auto& s : sessions) {
    if (s.value.state != SessionState::kDestroyed && s.value.state != SessionState::kFailed) live.push_back(s.value.id);
  }
  if (!live.empty() && !force.value_or(false)) {
    return failedPrecondition("user '" + u.value.username + "' has " + std::to_string(live.size()) +
                              " session(s); delete them first or pass force=true");
  }
  for (const auto& id : live) KASM_RETURN_IF_ERROR(manager.destroySession(id, "user deleted"));
  if (delete_profiles) KASM_RETURN_IF_ERROR(detail::requireNoProfileInUse(repo, u.value));
  KASM_RETURN_IF_ERROR(repo.remove<User>(u.value.id.str(), u.version));
  accessRevoked(u.value.id);
  if (!delete_profiles) return json::object{};
  auto removal = manager.removeUserProfiles(u.value);
  if (!removal.ok()) {
    return removal.error().withContext("user '" + u.value.username +
                                       "' was deleted, but their persistent profiles were not removed");
  }
  return json::object{{"profiles", detail::profileRemovalJson(*removal)}};
}

Result<json::object> DeveloperApi::Impl::logoutUser(const json::object& o, const ApiKey& key) {
  // Every browser login and desktop access token of the user issued until now stops working.
  KASM_ASSIGN_OR_RETURN(auto u, manageableUser(o, key));
  KASM_RETURN_IF_ERROR(detail::revokeLogins(repo, clock, u.value.id));
  accessRevoked(u.value.id);
  return json::object{};
}

Result<json::object> DeveloperApi::Impl::getImages(const json::object&, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(auto workspaces, repo.list<Workspace>());
  json::array arr;
  for (const auto& w : workspaces) {
    json::object i;
    i["image_id"] = w.value.id.str();
    i["friendly_name"] = w.value.friendly_name;
    i["name"] = w.value.image;
    i["description"] = w.value.description;
    i["cores"] = static_cast<double>(w.value.resources.millicores) / 1000.0;
    i["memory"] = w.value.resources.memory_bytes;
    i["gpu_count"] = w.value.resources.gpus;
    i["enabled"] = w.value.enabled;
    i["image_type"] = std::string(enumName(w.value.type));
    json::array cats;
    for (const auto& c : w.value.categories) cats.push_back(json::value(c));
    i["categories"] = std::move(cats);
    i["image_src"] = w.value.thumbnail_url;
    arr.push_back(std::move(i));
  }
  json::object out;
  out["images"] = std::move(arr);
  return out;
}

Result<json::object> DeveloperApi::Impl::changeGroup(const json::object& o, const ApiKey& key, bool add) {
  KASM_ASSIGN_OR_RETURN(auto u, manageableUser(o, key));
  KASM_ASSIGN_OR_RETURN(const json::object* tg, optionalObject(o, "target_group", ""));
  if (!tg) return invalidArgument("target_group is required");
  KASM_ASSIGN_OR_RETURN(std::string gid_text, requireString(*tg, "group_id", "target_group."));
  KASM_ASSIGN_OR_RETURN(auto gid, GroupId::parse(gid_text, "target_group.group_id"));
  auto g = repo.get<Group>(gid.str());
  if (!g.ok()) {
    if (g.error().code() == ErrorCode::kNotFound) return notFound("group '" + gid_text + "' does not exist");
    return g.error();
  }
  User changed = u.value;
  auto& ids = changed.group_ids;
  const bool member = std::find(ids.begin(), ids.end(), gid) != ids.end();
  if (add && !member) ids.push_back(gid);
  if (!add && member) ids.erase(std::remove(ids.begin(), ids.end(), gid), ids.end());
  // Membership grants the group's permissions: only a key that holds them hands them out.
  KASM_RETURN_IF_ERROR(detail::requireMayGrantGroups(repo, key.permissions, u.value.group_ids, changed.group_ids));
  if (changed.group_ids != u.value.group_ids) KASM_RETURN_IF_ERROR(repo.update(changed, u.version));
  return json::object{};
}

Result<json::object> DeveloperApi::Impl::addUserGroup(const json::object& o, const ApiKey& key) {
  return changeGroup(o, key, true);
}
Result<json::object> DeveloperApi::Impl::removeUserGroup(const json::object& o, const ApiKey& key) {
  return changeGroup(o, key, false);
}

Result<User> DeveloperApi::Impl::createAnonymousUser(const ApiKey& key, std::string_view idempotency_key,
                                                     bool* created) {
  *created = false;
  User u;
  // A retry of an anonymous launch comes back to the same user: an id derived from the API key and
  // the idempotency key (a SHA-256, like generated ids 32 hex digits), so the insert of the first
  // attempt is what the second finds.
  u.id = idempotency_key.empty()
             ? UserId::generate()
             : UserId(license::detail::sha256Hex("anonymous\n" + key.id.str() + "\n" + std::string(idempotency_key))
                          .substr(0, 32));
  if (!idempotency_key.empty()) {
    auto earlier = repo.get<User>(u.id.str());
    if (earlier.ok()) return earlier->value;
    if (earlier.error().code() != ErrorCode::kNotFound) return earlier.error();
  }
  u.username = "anonymous-" + u.id.str().substr(0, 12);
  u.created_at = clock.now();
  if (!options.default_group_name.empty()) {
    auto groups = repo.list<Group>(spi::Query().where("name", options.default_group_name));
    if (groups.ok() && !groups->empty()) u.group_ids.push_back(groups->front().value.id);
  }
  auto inserted = repo.insert(u);
  if (!inserted.ok()) {
    // A concurrent retry made the user first.
    if (inserted.error().code() == ErrorCode::kAlreadyExists && !idempotency_key.empty()) {
      auto earlier = repo.get<User>(u.id.str());
      if (earlier.ok()) return earlier->value;
    }
    return inserted.error();
  }
  *created = true;
  return u;
}

}  // namespace kasm::api

namespace kasm::api {
namespace {

json::object attributesJson(const User& u) {
  const auto& a = u.attributes;
  json::object o;
  o["user_id"] = u.id.str();
  o["ssh_public_key"] = a.ssh_public_key;
  o["show_tips"] = a.show_tips;
  o["toggle_control_panel"] = a.toggle_control_panel;
  o["chat_sfx"] = a.chat_sfx;
  o["default_image"] = a.default_image ? json::value(a.default_image->str()) : json::value(nullptr);
  o["auto_login_kasm"] = a.auto_login_kasm;
  o["preferred_language"] = a.preferred_language;
  o["preferred_timezone"] = a.preferred_timezone;
  return o;
}

}  // namespace

Result<json::object> DeveloperApi::Impl::getAttributes(const json::object& o, const ApiKey& key) {
  KASM_ASSIGN_OR_RETURN(auto u, manageableUser(o, key));
  json::object out;
  out["user_attributes"] = attributesJson(u.value);
  return out;
}

Result<json::object> DeveloperApi::Impl::updateUserAttributes(const json::object& o, const ApiKey& key) {
  KASM_ASSIGN_OR_RETURN(const json::object* t, optionalObject(o, "target_user_attributes", ""));
  if (!t) return invalidArgument("target_user_attributes is required");
  KASM_ASSIGN_OR_RETURN(std::string user_id, requireString(*t, "user_id", "target_user_attributes."));
  const json::object target{{"target_user", json::object{{"user_id", user_id}}}};
  KASM_ASSIGN_OR_RETURN(auto u, manageableUser(target, key));
  UserAttributes& a = u.value.attributes;
  constexpr std::string_view where = "target_user_attributes.";
  struct Flag {
    const char* name;
    bool UserAttributes::*member;
  };
  static const Flag kFlags[] = {{"show_tips", &UserAttributes::show_tips},
                                {"toggle_control_panel", &UserAttributes::toggle_control_panel},
                                {"chat_sfx", &UserAttributes::chat_sfx},
                                {"auto_login_kasm", &UserAttributes::auto_login_kasm}};
  for (const auto& f : kFlags) {
    KASM_ASSIGN_OR_RETURN(auto v, optionalBool(*t, f.name, where));
    if (v) a.*(f.member) = *v;
  }
  struct Text {
    const char* name;
    std::string UserAttributes::*member;
  };
  static const Text kTexts[] = {{"ssh_public_key", &UserAttributes::ssh_public_key},
                                {"preferred_language", &UserAttributes::preferred_language},
                                {"preferred_timezone", &UserAttributes::preferred_timezone}};
  for (const auto& f : kTexts) {
    KASM_ASSIGN_OR_RETURN(auto v, optionalString(*t, f.name, where));
    if (v) a.*(f.member) = *v;
  }
  if (auto it = t->find("default_image"); it != t->end()) {
    if (it->value().is_null()) {
      a.default_image.reset();
    } else {
      KASM_ASSIGN_OR_RETURN(std::string image, requireString(*t, "default_image", where));
      KASM_ASSIGN_OR_RETURN(auto id, WorkspaceId::parse(image, "target_user_attributes.default_image"));
      auto ws = repo.get<Workspace>(id.str());
      if (!ws.ok()) {
        if (ws.error().code() == ErrorCode::kNotFound) return notFound("workspace '" + image + "' does not exist");
        return ws.error();
      }
      a.default_image = id;
    }
  }
  KASM_RETURN_IF_ERROR(validateAttributes(a));
  KASM_RETURN_IF_ERROR(repo.update(u.value, u.version));
  json::object out;
  out["user_attributes"] = attributesJson(u.value);
  return out;
}

}  // namespace kasm::api
