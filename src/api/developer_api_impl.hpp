#pragma once

// Private state of kasm::api::DeveloperApi, shared by its implementation files.

#include <boost/json.hpp>

#include "kasm/api/developer_api.hpp"
#include "kasm/store/repository.hpp"

// Handlers take the request body and the authenticated key.

namespace kasm::api {

namespace detail {
ApiResponse errorResponse(const Error& e);
std::string kasmTime(TimePoint t);
Result<std::string> requireString(const boost::json::object& o, std::string_view key, std::string_view where);
Result<std::optional<std::string>> optionalString(const boost::json::object& o, std::string_view key,
                                                  std::string_view where);
Result<std::optional<bool>> optionalBool(const boost::json::object& o, std::string_view key, std::string_view where);
Result<const boost::json::object*> optionalObject(const boost::json::object& o, std::string_view key,
                                                  std::string_view where);
}  // namespace detail

struct DeveloperApi::Impl {
  Impl(Manager& m, spi::Store& s, Clock& c, const auth::AccessTokenSigner& sg, DeveloperApiOptions o)
      : manager(m), repo(s), clock(c), signer(sg), options(std::move(o)) {}

  Manager& manager;
  Repository repo;
  Clock& clock;
  const auth::AccessTokenSigner& signer;
  DeveloperApiOptions options;

  Result<ApiKey> authenticate(const DeveloperApiVerb& verb, const boost::json::object& body,
                              std::string_view authorization);

  // Session verbs (developer_api.cpp).
  Result<boost::json::object> requestKasm(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> getKasmStatus(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> destroyKasm(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> keepalive(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> getKasms(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> execCommandKasm(const boost::json::object& o, const ApiKey& key);
  // get_kasm_screenshot answers a PNG, not JSON (a raw handler of the verb table).
  ApiResponse getKasmScreenshot(const boost::json::object& o, const ApiKey& key);
  Result<Versioned<Session>> sessionOfUser(const boost::json::object& o);
  boost::json::object kasmJson(const Session& s);
  std::string kasmUrl(const Session& s);
  // The target user of a user verb, after checking that `key` may manage them.
  Result<Versioned<User>> manageableUser(const boost::json::object& o, const ApiKey& key);
  void accessRevoked(const UserId& user) const {
    if (options.on_access_revoked) options.on_access_revoked(user);
  }
  static std::string operationalStatus(SessionState st);

  // User verbs (developer_api_users.cpp).
  Result<boost::json::object> getUser(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> getUsers(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> createUser(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> updateUser(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> deleteUser(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> logoutUser(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> getImages(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> getAttributes(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> updateUserAttributes(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> addUserGroup(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> removeUserGroup(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> joinKasm(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> createKasmShareId(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> getKasmShareId(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> deleteKasmShareId(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> getSessionPermissions(const boost::json::object& o, const ApiKey& key);
  // Fixed servers (developer_api_servers.cpp).
  Result<boost::json::object> assignUserServer(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> unassignUserServer(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> setSessionPermissions(const boost::json::object& o, const ApiKey& key);
  Result<boost::json::object> deleteSessionPermissions(const boost::json::object& o, const ApiKey& key);
  Result<share::Sharing*> sharing();
  // The user of a request_kasm without user_id. With an idempotency key, one user per API key and
  // key (its id derived from both), found again by a retry, so that the launch's idempotency (per
  // user) holds; `*created` says whether this call made it.
  Result<User> createAnonymousUser(const ApiKey& key, std::string_view idempotency_key, bool* created);
  Result<Versioned<User>> targetUser(const boost::json::object& o);
  Result<boost::json::object> userJson(const User& u);
  Result<boost::json::object> changeGroup(const boost::json::object& o, const ApiKey& key, bool add);
};

}  // namespace kasm::api
