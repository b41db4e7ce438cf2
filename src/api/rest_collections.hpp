#pragma once

// REST API: what the route files share: permission checks, JSON merge patches, and the generic
// list / get / write helpers over the repository.

#include <charconv>
#include <functional>

#include "api/rest_impl.hpp"
#include "kasm/model/json.hpp"

namespace kasm::api::rest {

namespace json = boost::json;

inline Error methodNotAllowed(std::string_view method, std::string_view what) {
  return invalidArgument(std::string(method) + " is not allowed on " + std::string(what));
}

inline Result<void> require(const Principal& p, std::string_view permission) {
  if (!p.can(permission)) return permissionDenied("this needs the '" + std::string(permission) + "' permission");
  return {};
}

template <class T>
Result<json::object> toObject(const T& v) {
  KASM_ASSIGN_OR_RETURN(auto o, rest::parseObject(toJson(v)));
  return rest::redact(std::move(o));
}

inline Result<std::size_t> parseCount(std::string_view text, std::size_t fallback, std::string_view name) {
  if (text.empty()) return fallback;
  std::size_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) {
    return invalidArgument(std::string(name) + " must be a non-negative integer");
  }
  return v;
}

// Fields a client may not set through a write: identity, timestamps and secrets.
inline const std::set<std::string, std::less<>>& protectedFields() {
  static const std::set<std::string, std::less<>> kFields = {"id",
                                                             "created_at",
                                                             "updated_at",
                                                             "password_hash",
                                                             "secret_hash",
                                                             "token_hash",
                                                             "key",
                                                             "registered_at",
                                                             "sessions_valid_after",
                                                             "last_login_at",
                                                             "connection_password_sealed",
                                                             "connection_private_key_sealed",
                                                             "connection_sealed",
                                                             "registration_token_sealed",
                                                             "token_expires_at"};
  return kFields;
}

// RFC 7396 merge patch of `patch` into `target`.
inline void mergePatch(json::object& target, const json::object& patch) {
  for (const auto& [k, v] : patch) {
    if (protectedFields().count(k)) continue;
    if (v.is_null()) {
      target.erase(k);
    } else if (v.is_object() && target.contains(k) && target[k].is_object()) {
      mergePatch(target[k].as_object(), v.as_object());
    } else {
      target[k] = v;
    }
  }
}

// Builds a T from `base` (an existing value or defaults) with `patch` merged in.
template <class T>
Result<T> patched(const T& base, const json::object& patch) {
  KASM_ASSIGN_OR_RETURN(auto merged, rest::parseObject(toJson(base)));
  mergePatch(merged, patch);
  KASM_ASSIGN_OR_RETURN(T out, fromJson<T>(json::serialize(merged)));
  return out;
}

// A manager as the API shows it: `alive` while its heartbeat is recent (a killed one's row keeps
// the zones it led at its last heartbeat: they are not shown as led).
json::object managerJson(RestApi::Impl& im, const ManagerNode& m);

template <class T>
RouteResult listOf(RestApi::Impl& im, const RouteCall& call, spi::Query query,
                   const std::function<bool(const T&)>& visible = nullptr) {
  const auto& schema = spi::tableSchema(EntityTraits<T>::kTable);
  for (const auto& column : schema.columns) {
    auto v = call.queryValue(column);
    if (!v.empty()) query.where(std::string(column), std::string(v));
  }
  KASM_ASSIGN_OR_RETURN(std::size_t limit, parseCount(call.queryValue("limit"), 100, "limit"));
  KASM_ASSIGN_OR_RETURN(std::size_t offset, parseCount(call.queryValue("offset"), 0, "offset"));
  limit = std::clamp<std::size_t>(limit, 1, im.options.max_page);
  query.after_id = std::string(call.queryValue("after"));
  std::vector<Versioned<T>> rows;
  std::int64_t total = 0;
  if (visible) {
    // Filtered in memory (ownership): scan all matching rows.
    KASM_ASSIGN_OR_RETURN(rows, im.repo.list<T>(query));
    std::erase_if(rows, [&](const Versioned<T>& r) { return !visible(r.value); });
    total = static_cast<std::int64_t>(rows.size());
  } else {
    spi::Query count_query = query;
    count_query.after_id.clear();
    KASM_ASSIGN_OR_RETURN(total, im.repo.count<T>(count_query));
    query.limit = limit + offset;
    KASM_ASSIGN_OR_RETURN(rows, im.repo.list<T>(query));
  }
  json::array items;
  std::string last;
  [[maybe_unused]] RestApi::Impl::ProtocolCache protocols;
  for (std::size_t i = offset; i < rows.size() && items.size() < limit; ++i) {
    last = EntityTraits<T>::id(rows[i].value);
    if constexpr (std::is_same_v<T, Session>) {
      KASM_ASSIGN_OR_RETURN(auto o, im.sessionJson(rows[i].value, call.principal, &protocols));
      items.push_back(std::move(o));
    } else if constexpr (std::is_same_v<T, Workspace>) {
      KASM_ASSIGN_OR_RETURN(auto o, im.workspaceJson(rows[i].value, call.principal));
      items.push_back(std::move(o));
    } else if constexpr (std::is_same_v<T, StagingConfig>) {
      KASM_ASSIGN_OR_RETURN(auto o, im.stagingJson(rows[i].value));
      items.push_back(std::move(o));
    } else if constexpr (std::is_same_v<T, AutoscaleConfig>) {
      KASM_ASSIGN_OR_RETURN(auto o, im.autoscaleJson(rows[i].value));
      items.push_back(std::move(o));
    } else if constexpr (std::is_same_v<T, ManagerNode>) {
      items.push_back(managerJson(im, rows[i].value));
    } else {
      KASM_ASSIGN_OR_RETURN(auto o, toObject(rows[i].value));
      items.push_back(std::move(o));
    }
  }
  json::object out;
  const bool more = offset + items.size() < rows.size() || (!visible && rows.size() >= limit + offset);
  out["items"] = std::move(items);
  out["total"] = total;
  out["limit"] = limit;
  out["offset"] = offset;
  out["next"] = more && !last.empty() ? json::value(last) : json::value(nullptr);
  return rest::reply(200, out);
}

template <class T>
RouteResult getOne(RestApi::Impl& im, std::string_view id) {
  KASM_ASSIGN_OR_RETURN(auto v, im.repo.get<T>(id));
  KASM_ASSIGN_OR_RETURN(auto o, toObject(v.value));
  return rest::reply(200, o);
}

// Create (id empty) or update (merge patch) through `save`, which assigns ids and timestamps.
template <class T>
RouteResult writeOne(RestApi::Impl& im, const RouteCall& call, std::optional<std::string_view> id,
                     const std::function<Result<T>(T)>& save) {
  T base{};
  if (id) {
    KASM_ASSIGN_OR_RETURN(auto existing, im.repo.get<T>(*id));
    base = existing.value;
  }
  KASM_ASSIGN_OR_RETURN(T value, patched(base, *call.body));
  // save() assigns the id of a new value, and the repository validates what it writes.
  KASM_ASSIGN_OR_RETURN(T saved, save(std::move(value)));
  KASM_ASSIGN_OR_RETURN(auto o, toObject(saved));
  return rest::reply(id ? 200 : 201, o);
}

// Saves through the repository: insert with a new id, or update under compare-and-set.
template <class T, class IdT>
Result<T> saveInRepo(RestApi::Impl& im, T value) {
  if (value.id.empty()) {
    value.id = IdT::generate();
    if constexpr (requires { value.created_at; }) value.created_at = im.clock.now();
    KASM_RETURN_IF_ERROR(im.repo.insert(value));
    return value;
  }
  KASM_ASSIGN_OR_RETURN(auto existing, im.repo.get<T>(value.id.str()));
  KASM_RETURN_IF_ERROR(im.repo.update(value, existing.version));
  return value;
}

inline RestResponse noContent() {
  RestResponse r;
  r.status = 204;
  return r;
}

// The route handlers, one per collection (rest_sessions.cpp, rest_users.cpp, rest_resources.cpp).
RouteResult sessionsRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method);
RouteResult serversRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method);
RouteResult serverPoolsRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method);
RouteResult autoscaleRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method);
RouteResult managersRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method);
RouteResult usersRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method);
RouteResult groupsRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method);
RouteResult apiKeysRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method);
// rest_shares.cpp
RouteResult sessionShareRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method, const Session& s);
RouteResult sharesRoute(RestApi::Impl& im, const RouteCall& call, std::string_view method);

}  // namespace kasm::api::rest
