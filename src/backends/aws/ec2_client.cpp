#include "backends/aws/ec2_client.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <thread>

#include "kasm/core/secure_random.hpp"

namespace kasm::aws::detail {
namespace {

constexpr std::size_t kMaxMessageChars = 1024;

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}
bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

template <std::size_t N>
bool oneOf(std::string_view code, const std::array<std::string_view, N>& codes) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

// Codes after which waiting helps: EC2 is rate-limiting us or has no capacity right now.
constexpr std::array<std::string_view, 12> kThrottleCodes = {"RequestLimitExceeded",
                                                             "Throttling",
                                                             "ThrottlingException",
                                                             "RequestThrottled",
                                                             "RequestThrottledException",
                                                             "TooManyRequestsException",
                                                             "SlowDown",
                                                             "InsufficientInstanceCapacity",
                                                             "InsufficientHostCapacity",
                                                             "InsufficientCapacity",
                                                             "InsufficientReservedInstanceCapacity",
                                                             "InsufficientAddressCapacity"};

// Codes that mean the credentials are wrong or not allowed to do this.
constexpr std::array<std::string_view, 14> kAuthCodes = {"AuthFailure",           "UnauthorizedOperation",
                                                         "SignatureDoesNotMatch", "InvalidClientTokenId",
                                                         "IncompleteSignature",   "MissingAuthenticationToken",
                                                         "RequestExpired",        "ExpiredToken",
                                                         "OptInRequired",         "Blocked",
                                                         "PendingVerification",   "AccessDenied",
                                                         "AccessDeniedException", "UnrecognizedClientException"};

// Codes of an EC2 that failed inside.
constexpr std::array<std::string_view, 5> kServerCodes = {"InternalError", "InternalFailure", "ServiceUnavailable",
                                                          "Unavailable", "ServerInternal"};

std::string clip(std::string s) {
  if (s.size() > kMaxMessageChars) {
    s.resize(kMaxMessageChars);
    s += "...";
  }
  for (auto& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return s;
}

}  // namespace

Result<Endpoint> parseEndpoint(const std::string& url, std::string_view field) {
  // A URL with user information may hold a secret: it is not quoted back.
  if (url.find('@') != std::string::npos)
    return invalidArgument(std::string(field) + ": must not carry user information (user:password@)");
  const std::string where = std::string(field) + " '" + url + "'";
  std::string_view rest = url;
  if (startsWith(rest, "https://")) {
    rest.remove_prefix(8);
  } else if (startsWith(rest, "http://")) {
    rest.remove_prefix(7);
  } else {
    return invalidArgument(where + ": must start with https:// (or http:// for a local test endpoint)");
  }
  if (rest.find_first_of("?#") != std::string_view::npos)
    return invalidArgument(where + ": must not have a query or a fragment");
  const auto slash = rest.find('/');
  Endpoint ep;
  ep.host = std::string(rest.substr(0, slash));
  ep.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (ep.host.empty()) return invalidArgument(where + ": has no host");
  for (char c : ep.host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '-' || c == ':' || c == '[' || c == ']';
    if (!ok) return invalidArgument(where + ": the host has a character that is not allowed");
  }
  for (char c : ep.path)
    if (static_cast<unsigned char>(c) <= 0x20 || c == '%' || static_cast<unsigned char>(c) >= 0x7F)
      return invalidArgument(where + ": the path has a character that is not allowed");
  for (auto& c : ep.host)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  ep.url = url;
  return ep;
}

std::string formEncode(const QueryParams& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out.push_back('&');
    out += uriEncode(k);
    out.push_back('=');
    out += uriEncode(v);
  }
  return out;
}

Ec2Failure classifyEc2Failure(std::string_view action, long status, std::string_view body) {
  std::string code, message, request_id;
  if (auto doc = parseXml(body); doc.ok()) {
    const XmlElement* error = doc->name == "Error" ? &*doc : doc->findDescendant("Error");
    if (error) {
      code = error->childText("Code");
      message = error->childText("Message");
    }
    request_id = doc->childText("RequestID");
    if (request_id.empty()) request_id = doc->childText("RequestId");
  }
  std::string text = "aws-ec2 " + std::string(action) + ": ";
  text += code.empty() ? "HTTP " + std::to_string(status) + " without an EC2 error code" : code;
  if (!message.empty()) text += ": " + message;
  text += " (HTTP " + std::to_string(status);
  if (!request_id.empty()) text += ", request " + request_id;
  text += ")";
  text = clip(std::move(text));

  if (code.empty()) {
    if (status == 429) return {resourceExhausted(text), true};
    if (status == 401 || status == 403) return {permissionDenied(text), false};
    if (status >= 500) return {unavailable(text), true};
    return {failedPrecondition(text), false};
  }
  if (oneOf(code, kThrottleCodes)) return {resourceExhausted(text), true};
  if (endsWith(code, "LimitExceeded") || code == "InsufficientFreeAddressesInSubnet")
    return {resourceExhausted(text), false};
  if (oneOf(code, kAuthCodes) || startsWith(code, "AuthFailure.")) return {permissionDenied(text), false};
  if (startsWith(code, "InvalidInstanceID.")) return {notFound(text), false};
  if (oneOf(code, kServerCodes)) return {unavailable(text), true};
  if (code == "IdempotentParameterMismatch") return {failedPrecondition(text), false};
  if (startsWith(code, "Invalid") || startsWith(code, "Missing") || startsWith(code, "Unknown") ||
      startsWith(code, "Unsupported") || startsWith(code, "Malformed") || code == "ValidationError")
    return {invalidArgument(text), false};
  if (status >= 500) return {unavailable(text), true};
  return {failedPrecondition(text), false};
}

Duration backoffDelay(int attempt, Duration base, Duration max) {
  Duration cap = std::max(base, Duration(1));
  for (int i = 0; i < attempt && cap < max; ++i) cap *= 2;
  cap = std::min(cap, std::max(max, Duration(1)));
  const auto half = cap.count() / 2;
  const auto span = static_cast<std::uint64_t>(cap.count() - half) + 1;
  return Duration(half + static_cast<Duration::rep>(secureRandomU64() % span));
}

Ec2Client::Ec2Client(Ec2ClientConfig config)
    : config_(std::move(config)), http_(config_.timeout, kMaxEc2ResponseBytes) {}

Result<std::unique_ptr<Ec2Client>> Ec2Client::fromOptions(const Ec2Options& options) {
  KASM_RETURN_IF_ERROR(validateEc2Options(options));
  KASM_ASSIGN_OR_RETURN(Endpoint endpoint, parseEndpoint(options.endpoint));
  Ec2ClientConfig config;
  config.endpoint = std::move(endpoint);
  config.region = options.region;
  config.credentials = {options.access_key_id, options.secret_access_key, options.session_token};
  config.timeout = options.request_timeout;
  config.max_retries = options.max_retries;
  config.retry_base_delay = options.retry_base_delay;
  config.retry_max_delay = options.retry_max_delay;
  return std::make_unique<Ec2Client>(std::move(config));
}

Result<XmlElement> Ec2Client::call(std::string_view action, const QueryParams& params) {
  QueryParams all;
  all.reserve(params.size() + 2);
  all.emplace_back("Action", std::string(action));
  all.emplace_back("Version", std::string(kEc2ApiVersion));
  all.insert(all.end(), params.begin(), params.end());
  const std::string body = formEncode(all);

  for (int attempt_no = 0;; ++attempt_no) {
    bool retriable = false;
    auto answer = attempt(action, body, retriable);
    if (answer.ok()) return answer;
    if (!retriable || attempt_no >= config_.max_retries) {
      if (attempt_no == 0) return answer;
      const Error& e = answer.error();
      return Error(e.code(), e.message() + " (gave up after " + std::to_string(attempt_no + 1) + " attempts)");
    }
    std::this_thread::sleep_for(backoffDelay(attempt_no, config_.retry_base_delay, config_.retry_max_delay));
  }
}

Result<XmlElement> Ec2Client::attempt(std::string_view action, const std::string& body, bool& retriable) {
  static const SystemClock clock;
  const std::string content_type = "application/x-www-form-urlencoded; charset=utf-8";
  SigningScope scope{amzDate(clock.now()), config_.region, "ec2"};
  SignableRequest signable;
  signable.method = "POST";
  signable.path = config_.endpoint.path;
  signable.headers = {{"Content-Type", content_type}, {"Host", config_.endpoint.host}, {"X-Amz-Date", scope.amz_date}};
  if (!config_.credentials.session_token.empty())
    signable.headers.emplace_back("X-Amz-Security-Token", config_.credentials.session_token);
  signable.payload = body;

  HttpPost post;
  post.url = config_.endpoint.url;
  for (const auto& [name, value] : signable.headers) post.headers.push_back(name + ": " + value);
  post.headers.push_back("Authorization: " + authorizationHeader(config_.credentials, scope, signable));
  post.body = body;

  auto reply = http_.post(post);
  if (!reply.ok()) {
    retriable = true;
    return Error(reply.error().code(), "aws-ec2 " + std::string(action) + ": " + reply.error().message());
  }
  if (reply->status < 200 || reply->status > 299) {
    Ec2Failure failure = classifyEc2Failure(action, reply->status, reply->body);
    retriable = failure.retriable;
    return std::move(failure.error);
  }
  auto doc = parseXml(reply->body);
  if (!doc.ok()) {
    retriable = true;
    return unavailable("aws-ec2 " + std::string(action) +
                       ": the answer is not a readable EC2 document: " + doc.error().message());
  }
  return doc;
}

}  // namespace kasm::aws::detail
