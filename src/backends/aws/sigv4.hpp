#pragma once

// AWS Signature Version 4 (HMAC-SHA256), the signing every AWS query API takes. Private to kasm::aws.
// The steps are separate functions so that each can be checked against AWS's published test suite
// (canonical request, string to sign, signature); signRequest() strings them together.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kasm/core/clock.hpp"

namespace kasm::aws::detail {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // Empty unless the credentials are temporary.
};

// Where and when a signature is valid: "<date>/<region>/<service>/aws4_request".
struct SigningScope {
  std::string amz_date;  // "20150830T123600Z", the X-Amz-Date header sent.
  std::string region;
  std::string service;

  std::string date() const { return amz_date.substr(0, 8); }
  std::string credentialScope() const { return date() + "/" + region + "/" + service + "/aws4_request"; }
};

// A request as it is signed. Every header given is signed; the caller sends exactly these (Host and
// X-Amz-Date among them). Values are the decoded ones: encoding is part of canonicalisation.
struct SignableRequest {
  std::string method = "POST";
  std::string path = "/";  // Decoded; "" means "/". Dot segments are not normalised.
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload;
};

// Lowercase hex of SHA-256(data).
std::string sha256Hex(std::string_view data);
// Raw HMAC-SHA256(key, data), 32 bytes.
std::string hmacSha256(std::string_view key, std::string_view data);
std::string hexEncode(std::string_view bytes);

// RFC 3986 percent-encoding as AWS wants it: A-Z a-z 0-9 - _ . ~ kept, every other byte %XX
// (uppercase); '/' kept unless encode_slash.
std::string uriEncode(std::string_view s, bool encode_slash = true);

// "YYYYMMDDTHHMMSSZ" in UTC.
std::string amzDate(TimePoint t);

// Lowercase header names, sorted and joined with ';'.
std::string signedHeaders(const SignableRequest& request);
// Method, canonical URI, canonical query, canonical headers, signed headers and the payload hash,
// joined with newlines. Header values are trimmed and inner runs of spaces collapsed; a name given
// twice is signed once with its values joined by ',' in the order given.
std::string canonicalRequest(const SignableRequest& request);
std::string stringToSign(const SigningScope& scope, std::string_view canonical_request);
// Lowercase hex signature with the key derived from the secret and the scope.
std::string signature(std::string_view secret_access_key, const SigningScope& scope, std::string_view string_to_sign);
// The Authorization header's value: "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
std::string authorizationHeader(const AwsCredentials& credentials, const SigningScope& scope,
                                const SignableRequest& request);

}  // namespace kasm::aws::detail
