#include "api/api_key_auth.hpp"

#include <openssl/evp.h>

#include "kasm/auth/secret.hpp"

namespace kasm::api::detail {

namespace {

std::optional<std::string> decodeBase64(std::string_view b64) {
  if (b64.empty() || b64.size() > 1024 || b64.size() % 4 != 0) return std::nullopt;
  std::string out(3 * b64.size() / 4 + 1, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (n < 0) return std::nullopt;
  std::size_t len = static_cast<std::size_t>(n);
  if (b64.back() == '=') --len;
  if (b64.size() > 1 && b64[b64.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

}  // namespace

std::optional<ApiKeyCredentials> parseAuthorizationHeader(std::string_view header, bool allow_bearer) {
  std::string pair;
  if (auto bearer = auth::authorizationCredentials(header, "Bearer"); allow_bearer && bearer) {
    pair = std::string(*bearer);
  } else if (auto basic = auth::authorizationCredentials(header, "Basic")) {
    auto decoded = decodeBase64(*basic);
    if (!decoded) return std::nullopt;
    pair = std::move(*decoded);
  } else {
    return std::nullopt;
  }
  const auto colon = pair.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return ApiKeyCredentials{pair.substr(0, colon), pair.substr(colon + 1)};
}

Result<ApiKey> verifyApiKey(Repository& repo, const Clock& clock, const ApiKeyCredentials& creds) {
  if (creds.key.empty() || creds.key.size() > 128) return unauthenticated("invalid api_key or api_key_secret");
  KASM_ASSIGN_OR_RETURN(auto keys, repo.list<ApiKey>(spi::Query().where("key", creds.key)));
  if (keys.empty() || !auth::verifySecret(creds.secret, keys.front().value.secret_hash)) {
    return unauthenticated("invalid api_key or api_key_secret");
  }
  const ApiKey& key = keys.front().value;
  if (!key.enabled) return unauthenticated("api key '" + key.name + "' is disabled");
  if (key.isExpired(clock.now())) return unauthenticated("api key '" + key.name + "' has expired");
  if (key.owner) {
    // A key acts for its owner: it dies with the owner's right to act.
    auto owner = repo.get<User>(key.owner->str());
    if (!owner.ok()) {
      if (owner.error().code() == ErrorCode::kNotFound) {
        return unauthenticated("the owner of api key '" + key.name + "' no longer exists");
      }
      return owner.error();
    }
    if (!owner->value.canAct()) {
      return unauthenticated("the owner of api key '" + key.name + "' is disabled or locked");
    }
  }
  return key;
}

}  // namespace kasm::api::detail
