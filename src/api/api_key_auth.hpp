#pragma once

// API-key authentication shared by the developer and REST APIs.

#include <optional>
#include <string>
#include <string_view>

#include "kasm/core/clock.hpp"
#include "kasm/store/repository.hpp"

namespace kasm::api::detail {

struct ApiKeyCredentials {
  std::string key;
  std::string secret;
};

// "Basic base64(key:secret)", and also "Bearer key:secret" when `allow_bearer`.
std::optional<ApiKeyCredentials> parseAuthorizationHeader(std::string_view header, bool allow_bearer);

// The stored key when it exists, is enabled and unexpired, the secret verifies, and its owner (if
// any) exists and is neither disabled nor locked; otherwise Unauthenticated (the same message for an
// unknown key and a wrong secret: nothing to enumerate).
Result<ApiKey> verifyApiKey(Repository& repo, const Clock& clock, const ApiKeyCredentials& creds);

}  // namespace kasm::api::detail
