#include "backends/aws/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

namespace kasm::aws::detail {
namespace {

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '~';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Trims leading and trailing whitespace and collapses every inner run of spaces (and tabs) to one space.
std::string canonicalValue(std::string_view v) {
  std::string out;
  bool pending_space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

// Lowercase name -> values in the order given.
std::map<std::string, std::vector<std::string>> groupedHeaders(const SignableRequest& request) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [name, value] : request.headers) out[lower(canonicalValue(name))].push_back(canonicalValue(value));
  return out;
}

}  // namespace

std::string hexEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return hexEncode(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::string hmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), md, &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string uriEncode(std::string_view s, bool encode_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (unreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string amzDate(TimePoint t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto day = std::chrono::floor<std::chrono::days>(secs);
  const std::chrono::year_month_day ymd(day);
  const std::chrono::hh_mm_ss hms(secs - day);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02d%02d%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::string signedHeaders(const SignableRequest& request) {
  std::string out;
  for (const auto& [name, values] : groupedHeaders(request)) {
    if (!out.empty()) out.push_back(';');
    out += name;
  }
  return out;
}

std::string canonicalRequest(const SignableRequest& request) {
  std::string out = request.method;
  out.push_back('\n');
  out += request.path.empty() ? std::string("/") : uriEncode(request.path, /*encode_slash=*/false);
  out.push_back('\n');

  std::vector<std::pair<std::string, std::string>> query;
  query.reserve(request.query.size());
  for (const auto& [k, v] : request.query) query.emplace_back(uriEncode(k), uriEncode(v));
  std::sort(query.begin(), query.end());
  for (std::size_t i = 0; i < query.size(); ++i) {
    if (i) out.push_back('&');
    out += query[i].first + "=" + query[i].second;
  }
  out.push_back('\n');

  for (const auto& [name, values] : groupedHeaders(request)) {
    out += name;
    out.push_back(':');
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i) out.push_back(',');
      out += values[i];
    }
    out.push_back('\n');
  }
  out.push_back('\n');
  out += signedHeaders(request);
  out.push_back('\n');
  out += sha256Hex(request.payload);
  return out;
}

std::string stringToSign(const SigningScope& scope, std::string_view canonical_request) {
  return "AWS4-HMAC-SHA256\n" + scope.amz_date + "\n" + scope.credentialScope() + "\n" + sha256Hex(canonical_request);
}

std::string signature(std::string_view secret_access_key, const SigningScope& scope, std::string_view string_to_sign) {
  const std::string k_date = hmacSha256("AWS4" + std::string(secret_access_key), scope.date());
  const std::string k_region = hmacSha256(k_date, scope.region);
  const std::string k_service = hmacSha256(k_region, scope.service);
  const std::string k_signing = hmacSha256(k_service, "aws4_request");
  return hexEncode(hmacSha256(k_signing, string_to_sign));
}

std::string authorizationHeader(const AwsCredentials& credentials, const SigningScope& scope,
                                const SignableRequest& request) {
  const std::string sts = stringToSign(scope, canonicalRequest(request));
  return "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + scope.credentialScope() +
         ", SignedHeaders=" + signedHeaders(request) +
         ", Signature=" + signature(credentials.secret_access_key, scope, sts);
}

}  // namespace kasm::aws::detail
