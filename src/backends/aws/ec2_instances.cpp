#include "backends/aws/ec2_instances.hpp"

#include <openssl/evp.h>

#include <chrono>

namespace kasm::aws::detail {
namespace {

constexpr std::size_t kMaxUserDataBytes = 16 * 1024;  // EC2's limit, before base64.
constexpr std::size_t kMaxTags = 50;                  // EC2's limit per resource.

// Reads `n` decimal digits at `pos`; nullopt unless they are all digits.
std::optional<int> digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

bool printableAscii(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c >= 0x7F) return false;
  return true;
}

}  // namespace

spi::VmState vmStateFromEc2(std::string_view name) {
  if (name == "pending") return spi::VmState::kPending;
  if (name == "running") return spi::VmState::kRunning;
  if (name == "stopping" || name == "shutting-down") return spi::VmState::kStopping;
  if (name == "stopped") return spi::VmState::kStopped;
  if (name == "terminated") return spi::VmState::kTerminated;
  return spi::VmState::kUnknown;
}

std::optional<TimePoint> parseEc2Time(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS
  const auto year = digits(t, 0, 4), month = digits(t, 5, 2), day = digits(t, 8, 2);
  const auto hour = digits(t, 11, 2), minute = digits(t, 14, 2), second = digits(t, 17, 2);
  if (!year || !month || !day || !hour || !minute || !second || t.size() < 19 || t[4] != '-' || t[7] != '-' ||
      (t[10] != 'T' && t[10] != 't' && t[10] != ' ') || t[13] != ':' || t[16] != ':')
    return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(*year), std::chrono::month(static_cast<unsigned>(*month)),
                                        std::chrono::day(static_cast<unsigned>(*day))};
  if (!ymd.ok() || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;
  std::size_t pos = 19;
  long millis = 0;
  if (pos < t.size() && t[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') {
      if (pos - start < 3) millis = millis * 10 + (t[pos] - '0');
      ++pos;
    }
    if (pos == start) return std::nullopt;
    for (std::size_t n = pos - start; n < 3; ++n) millis *= 10;
  }
  long offset_minutes = 0;
  if (pos < t.size() && (t[pos] == 'Z' || t[pos] == 'z')) {
    ++pos;
  } else if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) {
    const auto oh = digits(t, pos + 1, 2), om = digits(t, pos + 4, 2);
    if (!oh || !om || pos + 6 > t.size() || t[pos + 3] != ':' || *oh > 23 || *om > 59) return std::nullopt;
    offset_minutes = (*oh * 60 + *om) * (t[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;  // EC2 always says the zone; a local time would be a guess.
  }
  if (pos != t.size()) return std::nullopt;
  const auto since_epoch = std::chrono::sys_days(ymd).time_since_epoch() + std::chrono::hours(*hour) +
                           std::chrono::minutes(*minute - offset_minutes) + std::chrono::seconds(*second) +
                           std::chrono::milliseconds(millis);
  return TimePoint(std::chrono::duration_cast<Duration>(since_epoch));
}

std::string base64Encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

spi::VmInstance instanceFromXml(const XmlElement& item) {
  spi::VmInstance vm;
  vm.id = item.childText("instanceId");
  if (const XmlElement* state = item.child("instanceState")) vm.state = vmStateFromEc2(state->childText("name"));
  vm.private_address = item.childText("privateIpAddress");
  if (const XmlElement* tags = item.child("tagSet")) {
    for (const XmlElement* tag : tags->childrenNamed("item")) vm.tags[tag->childText("key")] = tag->childText("value");
  }
  vm.launched_at = parseEc2Time(item.childText("launchTime"));
  return vm;
}

std::vector<spi::VmInstance> instancesFromDescribe(const XmlElement& root) {
  std::vector<spi::VmInstance> out;
  const XmlElement* reservations = root.child("reservationSet");
  if (!reservations) return out;
  for (const XmlElement* reservation : reservations->childrenNamed("item")) {
    const XmlElement* instances = reservation->child("instancesSet");
    if (!instances) continue;
    for (const XmlElement* item : instances->childrenNamed("item")) out.push_back(instanceFromXml(*item));
  }
  return out;
}

std::vector<spi::VmInstance> instancesFromRun(const XmlElement& root) {
  std::vector<spi::VmInstance> out;
  if (const XmlElement* instances = root.child("instancesSet")) {
    for (const XmlElement* item : instances->childrenNamed("item")) out.push_back(instanceFromXml(*item));
  }
  return out;
}

std::map<std::string, std::string> machineTags(const Ec2Options& options, const spi::VmSpec& spec) {
  std::map<std::string, std::string> tags = options.tags;
  for (const auto& [k, v] : spec.tags) tags[k] = v;
  if (!spec.name.empty()) tags["Name"] = spec.name;
  return tags;
}

Result<QueryParams> runInstancesParams(const Ec2Options& options, const spi::VmSpec& spec) {
  if (spec.client_token.empty() || spec.client_token.size() > 64 || !printableAscii(spec.client_token))
    return invalidArgument("aws-ec2: the client token must be 1 to 64 printable ASCII characters (EC2's ClientToken)");
  if (spec.user_data.size() > kMaxUserDataBytes)
    return invalidArgument("aws-ec2: the user data has " + std::to_string(spec.user_data.size()) +
                           " bytes; EC2 takes at most 16 KiB");
  const auto tags = machineTags(options, spec);
  if (tags.size() > kMaxTags)
    return invalidArgument("aws-ec2: " + std::to_string(tags.size()) + " tags; EC2 takes at most 50 per instance");
  for (const auto& [k, v] : tags) {
    if (k.empty() || k.size() > 128) return invalidArgument("aws-ec2: a tag key must have 1 to 128 characters");
    if (v.size() > 256) return invalidArgument("aws-ec2: the value of tag '" + k + "' is longer than 256 characters");
  }

  QueryParams p = {{"ImageId", options.image_id},
                   {"InstanceType", options.instance_type},
                   {"MinCount", "1"},
                   {"MaxCount", "1"},
                   {"ClientToken", spec.client_token}};
  if (!options.subnet_id.empty()) p.emplace_back("SubnetId", options.subnet_id);
  for (std::size_t i = 0; i < options.security_group_ids.size(); ++i)
    p.emplace_back("SecurityGroupId." + std::to_string(i + 1), options.security_group_ids[i]);
  if (!options.key_name.empty()) p.emplace_back("KeyName", options.key_name);
  if (!options.iam_instance_profile.empty()) {
    const bool arn = options.iam_instance_profile.rfind("arn:", 0) == 0;
    p.emplace_back(arn ? "IamInstanceProfile.Arn" : "IamInstanceProfile.Name", options.iam_instance_profile);
  }
  if (!spec.user_data.empty()) p.emplace_back("UserData", base64Encode(spec.user_data));
  p.emplace_back("TagSpecification.1.ResourceType", "instance");
  std::size_t n = 0;
  for (const auto& [k, v] : tags) {
    const std::string prefix = "TagSpecification.1.Tag." + std::to_string(++n);
    p.emplace_back(prefix + ".Key", k);
    p.emplace_back(prefix + ".Value", v);
  }
  return p;
}

QueryParams describeByTagsParams(const std::map<std::string, std::string>& tags, int page_size,
                                 const std::string& next_token) {
  QueryParams p;
  std::size_t n = 0;
  for (const auto& [k, v] : tags) {
    const std::string prefix = "Filter." + std::to_string(++n);
    p.emplace_back(prefix + ".Name", "tag:" + k);
    p.emplace_back(prefix + ".Value.1", v);
  }
  p.emplace_back("MaxResults", std::to_string(page_size));
  if (!next_token.empty()) p.emplace_back("NextToken", next_token);
  return p;
}

bool plausibleInstanceId(std::string_view id) {
  if (id.size() < 10 || id.size() > 34 || id.substr(0, 2) != "i-") return false;
  for (char c : id.substr(2))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  return true;
}

}  // namespace kasm::aws::detail
