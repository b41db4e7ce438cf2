#pragma once

// kasm::aws: the "aws-ec2" VM provider (kasm/spi/vm_provider.hpp) over the EC2 Query API
// (Version 2016-11-15), signed with AWS Signature Version 4. Link kasm::aws.
//
// What each SPI call sends (POST, application/x-www-form-urlencoded, to the configured endpoint only):
//   create   RunInstances: ImageId, InstanceType, MinCount=MaxCount=1, ClientToken (spec.client_token),
//            SubnetId, SecurityGroupId.N, KeyName, IamInstanceProfile.Name or .Arn, UserData (base64),
//            TagSpecification.1 (ResourceType=instance) with the configured tags, spec.tags and "Name"
//            (spec.name); later ones win on a clash.
//   list     DescribeInstances with Filter.N (tag:<key> = value) per tag, following every NextToken.
//   status   DescribeInstances with InstanceId.1.
//   destroy  TerminateInstances with InstanceId.1.
//
// Errors (EC2's <Error><Code> and HTTP status), each message carrying AWS's code and message:
//   RequestLimitExceeded, Throttling, InsufficientInstanceCapacity (and kin): retried with exponential
//     backoff and jitter up to max_retries, then ResourceExhausted. Quota codes (InstanceLimitExceeded,
//     VcpuLimitExceeded): ResourceExhausted at once.
//   AuthFailure, UnauthorizedOperation, SignatureDoesNotMatch and other credential codes: PermissionDenied.
//   Invalid*, Missing*, Unknown*, Unsupported* (InvalidAMIID.*, InvalidParameterValue, ...): InvalidArgument.
//   InvalidInstanceID.NotFound / .Malformed: NotFound from status(), success from destroy().
//   HTTP 5xx, InternalError, Unavailable, transport failures and timeouts: retried, then Unavailable.
//   Any other refusal: FailedPrecondition.
// The secret access key never appears in an error or anywhere but the signature; nothing is logged.

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"
#include "kasm/spi/vm_provider.hpp"

namespace kasm::aws {

// The name the provider is registered under.
inline constexpr std::string_view kEc2ProviderName = "aws-ec2";

// The Query API version spoken.
inline constexpr std::string_view kEc2ApiVersion = "2016-11-15";

// Responses larger than this are refused (Unavailable) rather than held in memory.
inline constexpr std::size_t kMaxEc2ResponseBytes = 16u << 20;

struct Ec2Options {
  // ---- from provider_config_json (field names as below) ----
  std::string region;             // Required, e.g. "us-east-1"; also the signing region.
  std::string endpoint;           // "http(s)://host[:port][/path]"; empty: https://ec2.<region>.amazonaws.com.
  std::string access_key_id;      // Required.
  std::string secret_access_key;  // Required. Held in memory only to sign.
  std::string session_token;      // Optional (temporary credentials): sent as X-Amz-Security-Token.
  std::string image_id;           // Required: the AMI every machine boots.
  std::string instance_type;      // Required, e.g. "t3.large".
  std::string subnet_id;          // Optional.
  std::vector<std::string> security_group_ids;  // Optional ("security_group_ids": ["sg-..."]).
  std::string key_name;                         // Optional EC2 key pair.
  std::string iam_instance_profile;             // Optional: a profile name, or its ARN ("arn:...").
  // Optional extra tags on every machine. Keys "Name", "aws:*" and "kasm:*" are refused: the
  // provider sets those itself.
  std::map<std::string, std::string> tags;
  Duration request_timeout = std::chrono::seconds(30);  // "request_timeout_seconds": per HTTP request.
  int max_retries = 5;  // "max_retries": retries of a throttled or failed request (0..20).

  // ---- not configurable from JSON (embedders and tests) ----
  // The first backoff; each retry doubles it (capped at retry_max_delay) and waits a random time
  // between half of that and all of it, drawn from the OS CSPRNG.
  Duration retry_base_delay = std::chrono::milliseconds(200);
  Duration retry_max_delay = std::chrono::seconds(20);
  // MaxResults of each DescribeInstances page when listing (EC2 accepts 5..1000).
  int list_page_size = 1000;
};

// Parses provider_config_json (a JSON object). InvalidArgument naming the field for a missing
// required field, a wrong type or value, or a field it does not know (typos must not pass silently).
// The endpoint is filled in from the region when absent.
Result<Ec2Options> parseEc2Options(const std::string& json);

// Checks options however they were made (parseEc2Options calls it): InvalidArgument naming the field.
Result<void> validateEc2Options(const Ec2Options& options);

// A provider for these options (validated first). No request is made until the first call.
// The provider is thread-safe; calls through one instance are serialised.
Result<std::unique_ptr<spi::VmProvider>> makeEc2Provider(Ec2Options options);

// Registers "aws-ec2" (kEc2ProviderName); its factory parses the configuration's JSON with
// parseEc2Options. AlreadyExists when the name is taken.
Result<void> registerEc2Provider(spi::VmProviderRegistry& registry);

}  // namespace kasm::aws
