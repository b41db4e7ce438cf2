// Provider settings at rest: secret members sealed (AES-256-GCM, purpose "autoscale-provider"),
// shown as "********", kept when an edit sends "********" back.

#include <boost/json.hpp>

#include "kasm/auth/seal.hpp"
#include "kasm/autoscale/autoscaler.hpp"
#include "kasm/model/autoscale.hpp"

namespace kasm::autoscale {

namespace {

namespace json = boost::json;

constexpr std::string_view kPurpose = "autoscale-provider";
constexpr std::string_view kSealedPrefix = "sealed:";
constexpr std::string_view kMask = "********";

Result<json::object> parseObject(std::string_view text, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(text.empty() ? std::string_view("{}") : text, ec);
  if (ec || !v.is_object()) return invalidArgument(std::string(what) + " must be a JSON object");
  return std::move(v.as_object());
}

}  // namespace

// Secret members at any depth (an "environment" object of a command provider may carry an API
// token), by name: sealed, unsealed or masked in place.
namespace {

Result<void> sealIn(json::object& in, const json::object* old, std::string_view key, const std::string& path) {
  for (auto& [k, v] : in) {
    const std::string field = path + "." + std::string(k);
    const json::value* before = old ? old->if_contains(k) : nullptr;
    if (v.is_object()) {
      KASM_RETURN_IF_ERROR(
          sealIn(v.as_object(), before && before->is_object() ? &before->as_object() : nullptr, key, field));
      continue;
    }
    if (!isSecretProviderField(k) || !v.is_string()) continue;
    const std::string_view text(v.get_string());
    if (text == kMask) {
      // Kept as stored (or emptied when nothing is stored: a mask is never a value).
      v = before ? *before : json::value("");
      continue;
    }
    if (text.empty()) continue;
    if (text.starts_with(kSealedPrefix)) {
      if (!(before && *before == v)) return invalidArgument(field + " cannot be a sealed value");
      continue;
    }
    if (key.size() < 32) {
      return failedPrecondition("provider secrets need the installation's secret key (32 bytes or more) to seal them");
    }
    KASM_ASSIGN_OR_RETURN(auto sealed, auth::seal(key, kPurpose, text));
    v = std::string(kSealedPrefix) + sealed;
  }
  return {};
}

Result<void> unsealIn(json::object& obj, std::string_view key, const std::string& path) {
  for (auto& [k, v] : obj) {
    const std::string field = path + "." + std::string(k);
    if (v.is_object()) {
      KASM_RETURN_IF_ERROR(unsealIn(v.as_object(), key, field));
      continue;
    }
    if (!v.is_string() || !std::string_view(v.get_string()).starts_with(kSealedPrefix)) continue;
    auto plain = auth::unseal(key, kPurpose, std::string_view(v.get_string()).substr(kSealedPrefix.size()));
    if (!plain.ok()) return plain.error().withContext(field);
    v = *plain;
  }
  return {};
}

void maskIn(json::object& obj) {
  for (auto& [k, v] : obj) {
    if (v.is_object()) {
      maskIn(v.as_object());
    } else if (isSecretProviderField(k) && v.is_string() && !v.get_string().empty()) {
      v = kMask;
    }
  }
}

}  // namespace

Result<std::string> sealProviderConfig(std::string_view incoming, std::string_view stored, std::string_view key) {
  KASM_ASSIGN_OR_RETURN(auto in, parseObject(incoming, "provider_config_json"));
  auto old = parseObject(stored, "stored provider_config_json");
  KASM_RETURN_IF_ERROR(sealIn(in, old.ok() ? &*old : nullptr, key, "provider_config_json"));
  return json::serialize(in);
}

Result<std::string> unsealProviderConfig(std::string_view stored, std::string_view key) {
  KASM_ASSIGN_OR_RETURN(auto obj, parseObject(stored, "provider_config_json"));
  KASM_RETURN_IF_ERROR(unsealIn(obj, key, "provider_config_json"));
  return json::serialize(obj);
}

std::string redactProviderConfig(std::string_view stored) {
  auto obj = parseObject(stored, "provider_config_json");
  if (!obj.ok()) return "{}";
  maskIn(*obj);
  return json::serialize(*obj);
}

}  // namespace kasm::autoscale
