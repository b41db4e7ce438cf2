// parseEc2Options and validateEc2Options: the provider's configuration (provider_config_json).

#include <boost/json.hpp>
#include <cmath>
#include <set>

#include "backends/aws/ec2_client.hpp"
#include "kasm/aws/ec2_provider.hpp"

namespace kasm::aws {
namespace {

namespace json = boost::json;

constexpr std::string_view kWhere = "aws-ec2 configuration: ";

Error fieldError(std::string_view field, const std::string& what) {
  return invalidArgument(std::string(kWhere) + "'" + std::string(field) + "' " + what);
}

const std::set<std::string, std::less<>>& knownFields() {
  static const std::set<std::string, std::less<>> fields = {"region",
                                                            "endpoint",
                                                            "access_key_id",
                                                            "secret_access_key",
                                                            "session_token",
                                                            "image_id",
                                                            "instance_type",
                                                            "subnet_id",
                                                            "security_group_ids",
                                                            "key_name",
                                                            "iam_instance_profile",
                                                            "tags",
                                                            "request_timeout_seconds",
                                                            "max_retries"};
  return fields;
}

Result<std::string> stringField(const json::object& o, std::string_view field) {
  const json::value* v = o.if_contains(field);
  if (!v) return std::string();
  if (!v->is_string()) return fieldError(field, "must be a string");
  return std::string(v->as_string());
}

// Printable ASCII without spaces: what AWS ids, names and credentials are made of.
bool plainToken(std::string_view s) {
  for (unsigned char c : s)
    if (c <= 0x20 || c >= 0x7F) return false;
  return true;
}

bool validUtf8Text(std::string_view s) {
  return validUtf8(std::string(s)) == s;
}

Result<void> checkTag(std::string_view field, const std::string& key, const std::string& value) {
  if (key.empty() || key.size() > 128 || !validUtf8Text(key))
    return fieldError(field, "has a key that is empty, longer than 128 characters or not UTF-8");
  if (value.size() > 256 || !validUtf8Text(value))
    return fieldError(field, "key '" + key + "' has a value longer than 256 characters or not UTF-8");
  if (key == "Name" || key.rfind("aws:", 0) == 0 || key.rfind("kasm:", 0) == 0)
    return fieldError(field, "must not set '" + key + "': Name, aws:* and kasm:* tags are set by the provider");
  return {};
}

}  // namespace

Result<Ec2Options> parseEc2Options(const std::string& text) {
  boost::system::error_code ec;
  json::value parsed = json::parse(text, ec);
  if (ec || !parsed.is_object())
    return invalidArgument(std::string(kWhere) + "must be a JSON object" + (ec ? " (" + ec.message() + ")" : ""));
  const json::object& o = parsed.as_object();
  for (const auto& [key, value] : o) {
    if (!knownFields().contains(std::string_view(key)))
      return invalidArgument(std::string(kWhere) + "unknown field '" + std::string(key) +
                             "' (known: region, endpoint, access_key_id, secret_access_key, session_token, image_id, "
                             "instance_type, subnet_id, security_group_ids, key_name, iam_instance_profile, tags, "
                             "request_timeout_seconds, max_retries)");
  }

  Ec2Options out;
  KASM_ASSIGN_OR_RETURN(out.region, stringField(o, "region"));
  KASM_ASSIGN_OR_RETURN(out.endpoint, stringField(o, "endpoint"));
  KASM_ASSIGN_OR_RETURN(out.access_key_id, stringField(o, "access_key_id"));
  KASM_ASSIGN_OR_RETURN(out.secret_access_key, stringField(o, "secret_access_key"));
  KASM_ASSIGN_OR_RETURN(out.session_token, stringField(o, "session_token"));
  KASM_ASSIGN_OR_RETURN(out.image_id, stringField(o, "image_id"));
  KASM_ASSIGN_OR_RETURN(out.instance_type, stringField(o, "instance_type"));
  KASM_ASSIGN_OR_RETURN(out.subnet_id, stringField(o, "subnet_id"));
  KASM_ASSIGN_OR_RETURN(out.key_name, stringField(o, "key_name"));
  KASM_ASSIGN_OR_RETURN(out.iam_instance_profile, stringField(o, "iam_instance_profile"));

  if (const json::value* v = o.if_contains("security_group_ids")) {
    if (!v->is_array()) return fieldError("security_group_ids", "must be an array of strings");
    for (const auto& item : v->as_array()) {
      if (!item.is_string()) return fieldError("security_group_ids", "must be an array of strings");
      out.security_group_ids.emplace_back(item.as_string());
    }
  }
  if (const json::value* v = o.if_contains("tags")) {
    if (!v->is_object()) return fieldError("tags", "must be an object of string values");
    for (const auto& [key, value] : v->as_object()) {
      if (!value.is_string()) return fieldError("tags", "key '" + std::string(key) + "' must have a string value");
      out.tags.emplace(std::string(key), std::string(value.as_string()));
    }
  }
  if (const json::value* v = o.if_contains("request_timeout_seconds")) {
    if (!v->is_number()) return fieldError("request_timeout_seconds", "must be a number");
    const double seconds = v->to_number<double>();
    if (!std::isfinite(seconds) || seconds <= 0 || seconds > 3600)
      return fieldError("request_timeout_seconds", "must be more than 0 and at most 3600");
    out.request_timeout = Duration(static_cast<Duration::rep>(std::llround(seconds * 1000)));
  }
  if (const json::value* v = o.if_contains("max_retries")) {
    if (!v->is_int64() && !v->is_uint64()) return fieldError("max_retries", "must be a whole number");
    const auto n =
        v->is_int64() ? v->as_int64() : static_cast<std::int64_t>(std::min<std::uint64_t>(v->as_uint64(), 1000));
    if (n < 0 || n > 20) return fieldError("max_retries", "must be between 0 and 20");
    out.max_retries = static_cast<int>(n);
  }
  if (out.endpoint.empty() && !out.region.empty()) out.endpoint = "https://ec2." + out.region + ".amazonaws.com";
  KASM_RETURN_IF_ERROR(validateEc2Options(out));
  return out;
}

Result<void> validateEc2Options(const Ec2Options& o) {
  if (o.region.empty()) return fieldError("region", "is required (e.g. \"us-east-1\")");
  for (char c : o.region)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return fieldError("region", "must be lowercase letters, digits and '-' (e.g. \"us-east-1\")");
  if (o.endpoint.empty()) return fieldError("endpoint", "is empty");
  if (auto ep = detail::parseEndpoint(o.endpoint, "'endpoint'"); !ep.ok())
    return Error(ep.error().code(), std::string(kWhere) + ep.error().message());
  // The credentials are never quoted back: only what is wrong with them.
  if (o.access_key_id.empty()) return fieldError("access_key_id", "is required");
  if (!plainToken(o.access_key_id)) return fieldError("access_key_id", "must be printable ASCII without spaces");
  if (o.secret_access_key.empty()) return fieldError("secret_access_key", "is required");
  if (!plainToken(o.secret_access_key))
    return fieldError("secret_access_key", "must be printable ASCII without spaces");
  if (!plainToken(o.session_token)) return fieldError("session_token", "must be printable ASCII without spaces");
  if (o.image_id.empty()) return fieldError("image_id", "is required (an AMI id, \"ami-...\")");
  if (!plainToken(o.image_id)) return fieldError("image_id", "must be printable ASCII without spaces");
  if (o.instance_type.empty()) return fieldError("instance_type", "is required (e.g. \"t3.large\")");
  if (!plainToken(o.instance_type)) return fieldError("instance_type", "must be printable ASCII without spaces");
  if (!plainToken(o.subnet_id)) return fieldError("subnet_id", "must be printable ASCII without spaces");
  for (const auto& sg : o.security_group_ids)
    if (sg.empty() || !plainToken(sg))
      return fieldError("security_group_ids", "must hold non-empty ids of printable ASCII without spaces");
  if (!validUtf8Text(o.key_name) || o.key_name.size() > 255)
    return fieldError("key_name", "must be UTF-8 of at most 255 characters");
  if (!plainToken(o.iam_instance_profile))
    return fieldError("iam_instance_profile", "must be a profile name or ARN without spaces");
  // EC2 takes 50 tags per instance; the provider adds Name and the autoscaler's kasm:* tags.
  if (o.tags.size() > 40) return fieldError("tags", "may hold at most 40 tags");
  for (const auto& [key, value] : o.tags) KASM_RETURN_IF_ERROR(checkTag("tags", key, value));
  if (o.request_timeout <= Duration::zero()) return fieldError("request_timeout_seconds", "must be more than 0");
  if (o.max_retries < 0 || o.max_retries > 20) return fieldError("max_retries", "must be between 0 and 20");
  if (o.retry_base_delay < Duration::zero() || o.retry_max_delay < o.retry_base_delay)
    return invalidArgument(std::string(kWhere) + "retry delays must be >= 0 with the maximum >= the base");
  if (o.list_page_size < 5 || o.list_page_size > 1000)
    return invalidArgument(std::string(kWhere) + "list_page_size must be between 5 and 1000");
  return {};
}

}  // namespace kasm::aws
