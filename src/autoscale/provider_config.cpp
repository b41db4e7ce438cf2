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

Result<std::string> sealProviderConfig(std::string_view incoming, std::string_view stored, std::string_view key) {
  KASM_ASSIGN_OR_RETURN(auto in, parseObject(incoming, "provider_config_json"));
  auto old = parseObject(stored, "stored provider_config_json");
  for (auto& [k, v] : in) {
    if (!isSecretProviderField(k) || !v.is_string()) continue;
    const std::string_view text(v.get_string());
    if (text == kMask) {
      // Kept as stored (or dropped when nothing is stored: a mask is never a value).
      if (old.ok() && old->contains(k)) {
        v = old->at(k);
      } else {
        v = "";
      }
      continue;
    }
    if (text.empty() || text.starts_with(kSealedPrefix)) {
      if (!text.empty() && !(old.ok() && old->contains(k) && old->at(k) == v)) {
        return invalidArgument("provider_config_json." + std::string(k) + " cannot be a sealed value");
      }
      continue;
    }
    if (key.size() < 32) {
      return failedPrecondition("provider secrets need the installation's secret key (32 bytes or more) to seal them");
    }
    KASM_ASSIGN_OR_RETURN(auto sealed, auth::seal(key, kPurpose, text));
    v = std::string(kSealedPrefix) + sealed;
  }
  return json::serialize(in);
}

Result<std::string> unsealProviderConfig(std::string_view stored, std::string_view key) {
  KASM_ASSIGN_OR_RETURN(auto obj, parseObject(stored, "provider_config_json"));
  for (auto& [k, v] : obj) {
    if (!v.is_string()) continue;
    const std::string_view text(v.get_string());
    if (!text.starts_with(kSealedPrefix)) continue;
    auto plain = auth::unseal(key, kPurpose, text.substr(kSealedPrefix.size()));
    if (!plain.ok()) return plain.error().withContext("provider_config_json." + std::string(k));
    v = *plain;
  }
  return json::serialize(obj);
}

std::string redactProviderConfig(std::string_view stored) {
  auto obj = parseObject(stored, "provider_config_json");
  if (!obj.ok()) return "{}";
  for (auto& [k, v] : *obj) {
    if (isSecretProviderField(k) && v.is_string() && !v.get_string().empty()) v = kMask;
  }
  return json::serialize(*obj);
}

}  // namespace kasm::autoscale
