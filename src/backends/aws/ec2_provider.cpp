// The "aws-ec2" VmProvider: the SPI's four calls as EC2 actions (kasm/aws/ec2_provider.hpp).

#include "kasm/aws/ec2_provider.hpp"

#include <mutex>
#include <set>

#include "backends/aws/ec2_client.hpp"
#include "backends/aws/ec2_instances.hpp"

namespace kasm::aws {
namespace {

using detail::Ec2Client;
using detail::QueryParams;

// Pages a listing may take before it is taken for a loop (1000 per page: ten million machines).
constexpr int kMaxListPages = 10'000;

bool carriesAll(const spi::VmInstance& vm, const std::map<std::string, std::string>& tags) {
  for (const auto& [k, v] : tags) {
    auto it = vm.tags.find(k);
    if (it == vm.tags.end() || it->second != v) return false;
  }
  return true;
}

class Ec2Provider final : public spi::VmProvider {
 public:
  Ec2Provider(Ec2Options options, std::unique_ptr<Ec2Client> client)
      : options_(std::move(options)), client_(std::move(client)) {}

  Result<spi::VmInstance> create(const spi::VmSpec& spec) override {
    KASM_ASSIGN_OR_RETURN(QueryParams params, detail::runInstancesParams(options_, spec));
    std::lock_guard lock(mu_);
    KASM_ASSIGN_OR_RETURN(detail::XmlElement answer, client_->call("RunInstances", params));
    auto instances = detail::instancesFromRun(answer);
    if (instances.empty() || instances.front().id.empty())
      return unavailable("aws-ec2 RunInstances: the answer names no instance");
    spi::VmInstance vm = std::move(instances.front());
    // RunInstances may answer without the tags; they are the ones just sent.
    if (vm.tags.empty()) vm.tags = detail::machineTags(options_, spec);
    return vm;
  }

  Result<void> destroy(const std::string& instance_id) override {
    // An id EC2 cannot have issued names no machine: it is gone already.
    if (!detail::plausibleInstanceId(instance_id)) return {};
    std::lock_guard lock(mu_);
    auto answer = client_->call("TerminateInstances", {{"InstanceId.1", instance_id}});
    if (!answer.ok() && answer.error().code() == ErrorCode::kNotFound) return {};
    if (!answer.ok()) return std::move(answer).error();
    return {};
  }

  Result<std::vector<spi::VmInstance>> list(const std::map<std::string, std::string>& tags) override {
    std::lock_guard lock(mu_);
    std::vector<spi::VmInstance> out;
    std::set<std::string> seen_ids, seen_tokens;
    std::string token;
    for (int page = 0;; ++page) {
      if (page >= kMaxListPages)
        return unavailable("aws-ec2 DescribeInstances: more than " + std::to_string(kMaxListPages) + " pages");
      KASM_ASSIGN_OR_RETURN(
          detail::XmlElement answer,
          client_->call("DescribeInstances", detail::describeByTagsParams(tags, options_.list_page_size, token)));
      for (auto& vm : detail::instancesFromDescribe(answer)) {
        // EC2 filters treat '*' and '?' as wildcards: keep exact matches only, each once.
        if (!vm.id.empty() && carriesAll(vm, tags) && seen_ids.insert(vm.id).second) out.push_back(std::move(vm));
      }
      token = answer.childText("nextToken");
      if (token.empty()) break;
      if (!seen_tokens.insert(token).second)
        return unavailable("aws-ec2 DescribeInstances: EC2 answered the same NextToken twice");
    }
    return out;
  }

  Result<spi::VmInstance> status(const std::string& instance_id) override {
    if (!detail::plausibleInstanceId(instance_id))
      return notFound("aws-ec2: '" + instance_id + "' is not an EC2 instance id");
    std::lock_guard lock(mu_);
    KASM_ASSIGN_OR_RETURN(detail::XmlElement answer,
                          client_->call("DescribeInstances", {{"InstanceId.1", instance_id}}));
    for (auto& vm : detail::instancesFromDescribe(answer))
      if (vm.id == instance_id) return std::move(vm);
    return notFound("aws-ec2: no instance " + instance_id);
  }

 private:
  const Ec2Options options_;
  std::unique_ptr<Ec2Client> client_;
  std::mutex mu_;  // One call at a time per provider, as the SPI promises its callers.
};

}  // namespace

Result<std::unique_ptr<spi::VmProvider>> makeEc2Provider(Ec2Options options) {
  if (options.endpoint.empty() && !options.region.empty())
    options.endpoint = "https://ec2." + options.region + ".amazonaws.com";
  KASM_ASSIGN_OR_RETURN(std::unique_ptr<Ec2Client> client, Ec2Client::fromOptions(options));
  return std::unique_ptr<spi::VmProvider>(std::make_unique<Ec2Provider>(std::move(options), std::move(client)));
}

Result<void> registerEc2Provider(spi::VmProviderRegistry& registry) {
  return registry.registerFactory(std::string(kEc2ProviderName),
                                  [](const std::string& json) -> Result<std::unique_ptr<spi::VmProvider>> {
                                    KASM_ASSIGN_OR_RETURN(Ec2Options options, parseEc2Options(json));
                                    return makeEc2Provider(std::move(options));
                                  });
}

}  // namespace kasm::aws
