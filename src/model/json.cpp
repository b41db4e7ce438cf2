// JSON codec for the model types, driven by the field lists in describe.hpp.

#include "kasm/model/json.hpp"

#include <boost/json.hpp>
#include <cmath>
#include <concepts>
#include <limits>
#include <type_traits>

#include "model/describe.hpp"
#include "model/json_util.hpp"

namespace kasm {
namespace {

namespace json = boost::json;

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};
template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};
template <class T>
struct IsId : std::false_type {};
template <class Tag>
struct IsId<Id<Tag>> : std::true_type {};

struct NullVisitor {
  template <class T>
  void operator()(const char*, T&) {}
};
template <class T>
concept Described = requires(T& t, NullVisitor& v) {
  describe(t, v);
};

template <class E>
concept NamedEnum = std::is_enum_v<E> && requires {
  EnumNames<E>::kValues;
};

// ---- writing ----

template <class T>
json::value toValue(const T& v);

struct Writer {
  json::object obj;
  template <class T>
  void operator()(const char* name, const T& field) {
    if constexpr (IsOptional<T>::value) {
      if (!field) return;  // Absent optionals are omitted.
    }
    obj[name] = toValue(field);
  }
};

template <class T>
json::value toValue(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return json::value(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    return json::value(v);
  } else if constexpr (std::is_integral_v<T>) {
    return json::value(static_cast<std::int64_t>(v));
  } else if constexpr (std::is_floating_point_v<T>) {
    return json::value(static_cast<double>(v));
  } else if constexpr (NamedEnum<T>) {
    return json::value(std::string(enumName(v)));
  } else if constexpr (IsId<T>::value) {
    return json::value(v.str());
  } else if constexpr (std::is_same_v<T, TimePoint>) {
    return json::value(toUnixMillis(v));
  } else if constexpr (std::is_same_v<T, Duration>) {
    return json::value(static_cast<std::int64_t>(v.count()));
  } else if constexpr (IsOptional<T>::value) {
    return v ? toValue(*v) : json::value(nullptr);
  } else if constexpr (IsVector<T>::value || std::is_same_v<T, std::set<std::string>>) {
    json::array arr;
    for (const auto& item : v) arr.push_back(toValue(item));
    return arr;
  } else if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
    json::object o;
    for (const auto& [k, val] : v) o[k] = val;
    return o;
  } else {
    static_assert(Described<T>, "no JSON mapping for this type");
    Writer w;
    describe(const_cast<T&>(v), w);
    return std::move(w.obj);
  }
}

// ---- reading ----

template <class T>
Result<void> fromValue(const json::value& jv, T& out, const std::string& path);

struct Reader {
  const json::object& obj;
  std::string path;
  std::optional<Error> error;
  template <class T>
  void operator()(const char* name, T& field) {
    if (error) return;
    auto it = obj.find(name);
    if (it == obj.end()) return;  // Missing: keep the default.
    auto r = fromValue(it->value(), field, path.empty() ? std::string(name) : path + "." + name);
    if (!r.ok()) error = std::move(r).error();
  }
};

Error typeError(const std::string& path, std::string_view expected) {
  return invalidArgument(path + ": expected " + std::string(expected));
}

template <class I>
Result<void> readInteger(const json::value& jv, I& out, const std::string& path) {
  std::int64_t v = 0;
  if (jv.is_int64())
    v = jv.get_int64();
  else if (jv.is_uint64() && jv.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    v = static_cast<std::int64_t>(jv.get_uint64());
  else if (jv.is_double() && jv.get_double() >= -0x1p63 && jv.get_double() < 0x1p63 &&  // Else the cast is UB.
           jv.get_double() == static_cast<double>(static_cast<std::int64_t>(jv.get_double())))
    v = static_cast<std::int64_t>(jv.get_double());
  else
    return typeError(path, "an integer");
  if (v < static_cast<std::int64_t>(std::numeric_limits<I>::min()) ||
      (v > 0 && static_cast<std::uint64_t>(v) > static_cast<std::uint64_t>(std::numeric_limits<I>::max()))) {
    return invalidArgument(path + ": " + std::to_string(v) + " is out of range");
  }
  out = static_cast<I>(v);
  return {};
}

template <class T>
Result<void> fromValue(const json::value& jv, T& out, const std::string& path) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (!jv.is_string()) return typeError(path, "a string");
    out = std::string(jv.get_string());
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!jv.is_bool()) return typeError(path, "true or false");
    out = jv.get_bool();
  } else if constexpr (std::is_integral_v<T>) {
    return readInteger(jv, out, path);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!jv.is_number()) return typeError(path, "a number");
    // JSON has no infinity: a number too large for a double (1e999, or 0e99999, which Boost.JSON
    // reads as infinity) could not be written back.
    double d = jv.to_number<double>();
    if (!std::isfinite(d)) return invalidArgument(path + " must be a finite number");
    // Boost.JSON 1.81 reads some numbers (5E0090, 50E090) as a neighbour of the nearest double,
    // so the value written back could read as another one. Settle on a value that reads back as
    // itself (one or two steps); a number for which there is none (very large exponents, where
    // the steps can go round in a cycle) is refused, so that a stored row always decodes to what
    // was encoded.
    bool settled = false;
    for (int i = 0; i < 4 && !settled; ++i) {
      boost::system::error_code ec;
      const json::value again = json::parse(json::serialize(json::value(d)), ec);
      if (ec || !again.is_number()) break;
      const double e = again.to_number<double>();
      if (!std::isfinite(e)) break;
      settled = e == d;
      d = e;
    }
    if (!settled) return invalidArgument(path + " is a number that cannot be stored exactly");
    out = static_cast<T>(d);
  } else if constexpr (NamedEnum<T>) {
    if (!jv.is_string()) return typeError(path, "one of " + enumChoices<T>());
    auto e = enumFromName<T>(std::string_view(jv.get_string()));
    if (!e) return invalidArgument(path + ": '" + std::string(jv.get_string()) + "' is not one of " + enumChoices<T>());
    out = *e;
  } else if constexpr (IsId<T>::value) {
    if (!jv.is_string()) return typeError(path, "an id string");
    std::string_view s(jv.get_string());
    if (s.empty()) {
      out = T();
    } else {
      KASM_ASSIGN_OR_RETURN(out, T::parse(s, path));
    }
  } else if constexpr (std::is_same_v<T, TimePoint>) {
    std::int64_t ms = 0;
    KASM_RETURN_IF_ERROR(readInteger(jv, ms, path));
    out = fromUnixMillis(ms);
  } else if constexpr (std::is_same_v<T, Duration>) {
    std::int64_t ms = 0;
    KASM_RETURN_IF_ERROR(readInteger(jv, ms, path));
    out = Duration(ms);
  } else if constexpr (IsOptional<T>::value) {
    if (jv.is_null()) {
      out.reset();
    } else {
      typename T::value_type inner{};
      KASM_RETURN_IF_ERROR(fromValue(jv, inner, path));
      out = std::move(inner);
    }
  } else if constexpr (IsVector<T>::value || std::is_same_v<T, std::set<std::string>>) {
    if (!jv.is_array()) return typeError(path, "an array");
    out.clear();
    std::size_t i = 0;
    for (const auto& item : jv.get_array()) {
      typename T::value_type v{};
      KASM_RETURN_IF_ERROR(fromValue(item, v, path + "[" + std::to_string(i++) + "]"));
      if constexpr (IsVector<T>::value)
        out.push_back(std::move(v));
      else
        out.insert(std::move(v));
    }
  } else if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
    if (!jv.is_object()) return typeError(path, "an object of strings");
    out.clear();
    for (const auto& [k, val] : jv.get_object()) {
      if (!val.is_string()) return typeError(path + "." + std::string(k), "a string");
      out[std::string(k)] = std::string(val.get_string());
    }
  } else {
    static_assert(Described<T>, "no JSON mapping for this type");
    if (!jv.is_object()) return typeError(path, "an object");
    Reader r{jv.get_object(), path, std::nullopt};
    describe(out, r);
    if (r.error) return *r.error;
  }
  return {};
}

}  // namespace

template <class T>
std::string toJson(const T& value) {
  return json::serialize(toValue(value));
}

template <class T>
Result<T> fromJson(std::string_view text) {
  boost::system::error_code ec;
  json::value jv = json::parse(text, ec);
  if (ec) return invalidArgument("malformed JSON: " + ec.message());
  T out{};
  KASM_RETURN_IF_ERROR(fromValue(jv, out, ""));
  return out;
}

// ---- schema ----

namespace {

template <class T>
json::object schemaOf();

struct SchemaWriter {
  json::object properties;
  template <class T>
  void operator()(const char* name, const T&) {
    properties[name] = schemaOf<T>();
  }
};

template <class T>
json::object schemaOf() {
  json::object o;
  if constexpr (std::is_same_v<T, std::string>) {
    o["type"] = "string";
  } else if constexpr (std::is_same_v<T, bool>) {
    o["type"] = "boolean";
  } else if constexpr (std::is_integral_v<T>) {
    o["type"] = "integer";
  } else if constexpr (std::is_floating_point_v<T>) {
    o["type"] = "number";
  } else if constexpr (NamedEnum<T>) {
    o["type"] = "string";
    json::array names;
    for (const auto& [v, n] : EnumNames<T>::kValues) names.emplace_back(n);
    o["enum"] = std::move(names);
  } else if constexpr (IsId<T>::value) {
    o["type"] = "string";
  } else if constexpr (std::is_same_v<T, TimePoint>) {
    o["type"] = "integer";
    o["description"] = "Unix time in milliseconds";
  } else if constexpr (std::is_same_v<T, Duration>) {
    o["type"] = "integer";
    o["description"] = "milliseconds";
  } else if constexpr (IsOptional<T>::value) {
    // Absent optionals are omitted when written; null is accepted when read.
    o = schemaOf<typename T::value_type>();
    json::array types;
    if (auto it = o.find("type"); it != o.end()) {
      types.push_back(it->value());
      types.emplace_back("null");
      o["type"] = std::move(types);
    }
    if (auto it = o.find("enum"); it != o.end()) it->value().as_array().emplace_back(nullptr);
  } else if constexpr (IsVector<T>::value || std::is_same_v<T, std::set<std::string>>) {
    o["type"] = "array";
    o["items"] = schemaOf<typename T::value_type>();
  } else if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
    o["type"] = "object";
    o["additionalProperties"] = json::object{{"type", "string"}};
  } else {
    static_assert(Described<T>, "no JSON schema for this type");
    SchemaWriter w;
    T sample{};
    describe(sample, w);
    o["type"] = "object";
    o["properties"] = std::move(w.properties);
  }
  return o;
}

}  // namespace

template <class T>
std::string jsonSchema() {
  return json::serialize(schemaOf<T>());
}

#define KASM_INSTANTIATE_JSON(T)                    \
  template std::string toJson<T>(const T&);         \
  template Result<T> fromJson<T>(std::string_view); \
  template std::string jsonSchema<T>()
KASM_INSTANTIATE_JSON(Workspace);
KASM_INSTANTIATE_JSON(Zone);
KASM_INSTANTIATE_JSON(Agent);
KASM_INSTANTIATE_JSON(Session);
KASM_INSTANTIATE_JSON(User);
KASM_INSTANTIATE_JSON(Group);
KASM_INSTANTIATE_JSON(GroupSettings);
KASM_INSTANTIATE_JSON(ApiKey);
KASM_INSTANTIATE_JSON(Server);
KASM_INSTANTIATE_JSON(ServerPool);
KASM_INSTANTIATE_JSON(StagingConfig);
KASM_INSTANTIATE_JSON(AutoscaleConfig);
KASM_INSTANTIATE_JSON(AutoscaleVm);
KASM_INSTANTIATE_JSON(AutoscaleDecision);
KASM_INSTANTIATE_JSON(ManagerNode);
KASM_INSTANTIATE_JSON(Lease);
KASM_INSTANTIATE_JSON(AgentCommandRow);
KASM_INSTANTIATE_JSON(LicenseRecord);
KASM_INSTANTIATE_JSON(Setting);
KASM_INSTANTIATE_JSON(ShareIndex);
KASM_INSTANTIATE_JSON(SessionPermission);
KASM_INSTANTIATE_JSON(Resources);
#undef KASM_INSTANTIATE_JSON

namespace detail {

Result<void> checkJsonObject(std::string_view text, std::string_view field) {
  boost::system::error_code ec;
  json::value jv = json::parse(text, ec);
  if (ec) return invalidArgument(std::string(field) + ": malformed JSON: " + ec.message());
  if (!jv.is_object()) return invalidArgument(std::string(field) + ": must be a JSON object");
  return {};
}

}  // namespace detail
}  // namespace kasm
