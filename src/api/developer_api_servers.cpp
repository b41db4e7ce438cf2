// Developer API: Kasm's assign_user_server / unassign_user_server.
//
//   {"target_server": {"server_id": "..."}, "target_user": {"user_id": "..."}}

#include "api/developer_api_impl.hpp"

namespace kasm::api {

using detail::requireString;
namespace json = boost::json;

namespace {

Result<std::string> targetId(const json::object& o, std::string_view object, std::string_view field) {
  const auto* v = o.if_contains(object);
  if (!v || !v->is_object()) return invalidArgument(std::string(object) + " (an object) is required");
  return requireString(v->get_object(), field, std::string(object) + ".");
}

json::object serverReply(const Server& s) {
  json::object server;
  server["server_id"] = s.id.str();
  server["friendly_name"] = s.friendly_name;
  server["assigned_user_id"] = s.assigned_user_id ? json::value(s.assigned_user_id->str()) : json::value(nullptr);
  return json::object{{"server", std::move(server)}};
}

}  // namespace

Result<json::object> DeveloperApi::Impl::assignUserServer(const json::object& o, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(std::string server_text, targetId(o, "target_server", "server_id"));
  KASM_ASSIGN_OR_RETURN(std::string user_text, targetId(o, "target_user", "user_id"));
  KASM_ASSIGN_OR_RETURN(auto server, ServerId::parse(server_text, "target_server.server_id"));
  KASM_ASSIGN_OR_RETURN(auto user, UserId::parse(user_text, "target_user.user_id"));
  KASM_ASSIGN_OR_RETURN(Server s, manager.assignUserServer(server, user));
  return serverReply(s);
}

Result<json::object> DeveloperApi::Impl::unassignUserServer(const json::object& o, const ApiKey&) {
  KASM_ASSIGN_OR_RETURN(std::string server_text, targetId(o, "target_server", "server_id"));
  KASM_ASSIGN_OR_RETURN(auto server, ServerId::parse(server_text, "target_server.server_id"));
  KASM_ASSIGN_OR_RETURN(Server s, manager.assignUserServer(server, std::nullopt));
  return serverReply(s);
}

}  // namespace kasm::api
