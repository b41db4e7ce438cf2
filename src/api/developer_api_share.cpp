// Developer API: session sharing (join_kasm, the share-id verbs and the session-permission verbs).
// The rules are kasm::share::Sharing's; this file maps Kasm's request and response shapes onto it.

#include <boost/json.hpp>

#include "api/developer_api_impl.hpp"
#include "kasm/share/sharing.hpp"

namespace kasm::api {

namespace json = boost::json;
using detail::kasmTime;
using detail::optionalString;
using detail::requireString;

namespace {

// Kasm wraps the permission verbs' arguments in "target_session_permissions"; plain top-level
// fields are accepted too.
const json::object& permissionArgs(const json::object& o) {
  if (auto t = o.if_contains("target_session_permissions"); t && t->is_object()) return t->get_object();
  return o;
}

json::object permissionJson(const SessionId& session, const SessionPermission& p) {
  json::object o;
  o["kasm_id"] = session.str();
  o["user_id"] = p.user_id.str();
  o["username"] = p.username;
  o["access"] = std::string(enumName(p.access));
  o["granted_date"] = kasmTime(p.granted_at);
  return o;
}

json::object permissionsJson(const SessionId& session, const std::vector<SessionPermission>& list) {
  json::array arr;
  for (const auto& p : list) arr.push_back(permissionJson(session, p));
  json::object out;
  out["session_permissions"] = std::move(arr);
  return out;
}

Result<ShareAccess> parseAccess(const json::object& entry) {
  KASM_ASSIGN_OR_RETURN(auto access, optionalString(entry, "access", "session_permissions[]."));
  if (!access) return ShareAccess::kRead;
  auto parsed = enumFromName<ShareAccess>(*access);
  if (!parsed) return invalidArgument("session_permissions[].access must be \"r\" or \"rw\", not '" + *access + "'");
  return *parsed;
}

}  // namespace

Result<share::Sharing*> DeveloperApi::Impl::sharing() {
  if (!options.sharing) return failedPrecondition("session sharing is not configured on this server");
  return options.sharing;
}

Result<json::object> DeveloperApi::Impl::joinKasm(const json::object& o, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(share::Sharing * sharing, this->sharing());
  KASM_ASSIGN_OR_RETURN(std::string share_id, requireString(o, "share_id", ""));
  KASM_ASSIGN_OR_RETURN(std::string user_text, requireString(o, "user_id", ""));
  KASM_ASSIGN_OR_RETURN(auto user_id, UserId::parse(user_text, "user_id"));
  KASM_ASSIGN_OR_RETURN(share::JoinResult joined, sharing->join(share_id, user_id));
  const Session& s = joined.session;
  const std::string token = signer.issue(s.id, user_id, options.session_token_ttl);
  json::object out;
  out["kasm"] = kasmJson(s);
  out["kasm_id"] = s.id.str();
  out["user_id"] = user_id.str();
  out["access"] = std::string(enumName(joined.access));
  out["session_token"] = token;
  out["kasm_url"] = options.session_path_prefix + s.id.str() + "/?token=" + token;
  return out;
}

Result<json::object> DeveloperApi::Impl::createKasmShareId(const json::object& o, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(share::Sharing * sharing, this->sharing());
  KASM_ASSIGN_OR_RETURN(auto s, sessionOfUser(o));
  KASM_ASSIGN_OR_RETURN(std::string id, sharing->createShare(s.value.id, std::nullopt));
  json::object out;
  out["share_id"] = id;
  return out;
}

Result<json::object> DeveloperApi::Impl::getKasmShareId(const json::object& o, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(share::Sharing * sharing, this->sharing());
  KASM_ASSIGN_OR_RETURN(auto s, sessionOfUser(o));
  auto id = sharing->shareIdOf(s.value);
  json::object out;
  out["share_id"] = id ? json::value(*id) : json::value(nullptr);
  return out;
}

Result<json::object> DeveloperApi::Impl::deleteKasmShareId(const json::object& o, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(share::Sharing * sharing, this->sharing());
  KASM_ASSIGN_OR_RETURN(auto s, sessionOfUser(o));
  KASM_RETURN_IF_ERROR(sharing->deleteShare(s.value.id));
  return json::object{};
}

Result<json::object> DeveloperApi::Impl::getSessionPermissions(const json::object& o, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(share::Sharing * sharing, this->sharing());
  KASM_ASSIGN_OR_RETURN(auto s, sessionOfUser(permissionArgs(o)));
  KASM_ASSIGN_OR_RETURN(auto list, sharing->permissions(s.value.id));
  return permissionsJson(s.value.id, list);
}

Result<json::object> DeveloperApi::Impl::setSessionPermissions(const json::object& o, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(share::Sharing * sharing, this->sharing());
  const json::object& args = permissionArgs(o);
  KASM_ASSIGN_OR_RETURN(auto s, sessionOfUser(args));
  auto list = args.if_contains("session_permissions");
  if (!list || !list->is_array()) return invalidArgument("session_permissions must be a list of {user_id, access}");
  // Everything is checked before anything changes.
  std::vector<std::pair<UserId, ShareAccess>> wanted;
  for (const auto& entry : list->get_array()) {
    if (!entry.is_object()) return invalidArgument("session_permissions[] must be objects {user_id, access}");
    KASM_ASSIGN_OR_RETURN(std::string user_text,
                          requireString(entry.get_object(), "user_id", "session_permissions[]."));
    KASM_ASSIGN_OR_RETURN(auto user_id, UserId::parse(user_text, "session_permissions[].user_id"));
    KASM_ASSIGN_OR_RETURN(auto access, parseAccess(entry.get_object()));
    wanted.emplace_back(std::move(user_id), access);
  }
  for (const auto& [user, access] : wanted) KASM_RETURN_IF_ERROR(sharing->setPermission(s.value.id, user, access));
  KASM_ASSIGN_OR_RETURN(auto now, sharing->permissions(s.value.id));
  return permissionsJson(s.value.id, now);
}

Result<json::object> DeveloperApi::Impl::deleteSessionPermissions(const json::object& o, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(share::Sharing * sharing, this->sharing());
  const json::object& args = permissionArgs(o);
  KASM_ASSIGN_OR_RETURN(auto s, sessionOfUser(args));
  std::vector<UserId> users;
  if (auto list = args.if_contains("session_permissions"); list && !list->is_null()) {
    if (!list->is_array()) return invalidArgument("session_permissions must be a list of {user_id}");
    for (const auto& entry : list->get_array()) {
      if (!entry.is_object()) return invalidArgument("session_permissions[] must be objects {user_id}");
      KASM_ASSIGN_OR_RETURN(std::string user_text,
                            requireString(entry.get_object(), "user_id", "session_permissions[]."));
      KASM_ASSIGN_OR_RETURN(auto user_id, UserId::parse(user_text, "session_permissions[].user_id"));
      users.push_back(std::move(user_id));
    }
  } else {
    // No list: everyone the session was shared with.
    for (const auto& p : s.value.permissions) users.push_back(p.user_id);
  }
  for (const auto& user : users) {
    auto r = sharing->removePermission(s.value.id, user);
    if (!r.ok() && r.error().code() != ErrorCode::kNotFound) return r.error();
  }
  KASM_ASSIGN_OR_RETURN(auto now, sharing->permissions(s.value.id));
  return permissionsJson(s.value.id, now);
}

}  // namespace kasm::api
