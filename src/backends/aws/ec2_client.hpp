#pragma once

// The EC2 Query API client: form-encodes an action, signs it (Signature V4, service "ec2"), POSTs
// it to the one configured endpoint, retries what EC2 says to retry, and maps EC2's error codes to
// kasm's. Private to kasm::aws; the provider (ec2_provider.cpp) and the tests build on it.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/aws/http_client.hpp"
#include "backends/aws/sigv4.hpp"
#include "backends/aws/xml_reader.hpp"
#include "kasm/aws/ec2_provider.hpp"
#include "kasm/core/result.hpp"

namespace kasm::aws::detail {

// Parameters of one action, decoded ("TagSpecification.1.Tag.1.Key", "kasm:vm").
using QueryParams = std::vector<std::pair<std::string, std::string>>;

struct Endpoint {
  std::string url;   // As configured, without a trailing fragment or query.
  std::string host;  // The authority ("127.0.0.1:5000"), sent as Host and signed.
  std::string path;  // "/" when the URL has none.
};

// "http(s)://host[:port][/path]"; InvalidArgument naming `field` for anything else (user info,
// query, fragment, another scheme, an empty host).
Result<Endpoint> parseEndpoint(const std::string& url, std::string_view field = "endpoint");

// "k=v&k=v" with every key and value percent-encoded the way Signature V4 canonicalises them.
std::string formEncode(const QueryParams& params);

// What a failed answer means for the caller.
struct Ec2Failure {
  Error error;
  bool retriable = false;
};

// Classifies an answer with a status outside 2xx from EC2's <Error><Code>/<Message> (and the status
// when the body is not an EC2 error document). See kasm/aws/ec2_provider.hpp for the mapping.
Ec2Failure classifyEc2Failure(std::string_view action, long status, std::string_view body);

// The wait before retry number `attempt` (0-based): min(max, base * 2^attempt), jittered down to
// between half and all of it with the OS CSPRNG.
Duration backoffDelay(int attempt, Duration base, Duration max);

struct Ec2ClientConfig {
  Endpoint endpoint;
  std::string region;
  AwsCredentials credentials;
  Duration timeout = std::chrono::seconds(30);
  int max_retries = 5;
  Duration retry_base_delay = std::chrono::milliseconds(200);
  Duration retry_max_delay = std::chrono::seconds(20);
};

// Thread-safe (the HTTP client serialises requests).
class Ec2Client {
 public:
  explicit Ec2Client(Ec2ClientConfig config);

  // The client for validated provider options.
  static Result<std::unique_ptr<Ec2Client>> fromOptions(const Ec2Options& options);

  // Calls `action` with `params` (Action and Version are added) and returns the answer's root
  // element. Throttling and unavailability are retried up to max_retries times with backoff; the
  // error is then the last one, saying how many attempts were made.
  Result<XmlElement> call(std::string_view action, const QueryParams& params);

 private:
  // One signed attempt: the document, or the failure and whether to retry it.
  Result<XmlElement> attempt(std::string_view action, const std::string& body, bool& retriable);

  Ec2ClientConfig config_;
  HttpClient http_;
};

}  // namespace kasm::aws::detail
