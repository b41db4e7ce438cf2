#pragma once

// The EC2 shapes of the VM provider SPI: request parameters from a VmSpec and tags, and VmInstances
// from DescribeInstances / RunInstances answers. Pure functions; private to kasm::aws.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/aws/ec2_client.hpp"
#include "backends/aws/xml_reader.hpp"
#include "kasm/aws/ec2_provider.hpp"
#include "kasm/spi/vm_provider.hpp"

namespace kasm::aws::detail {

// EC2's instance-state name: pending, running, stopping, stopped, shutting-down (kStopping),
// terminated; anything else kUnknown.
spi::VmState vmStateFromEc2(std::string_view name);

// An ISO 8601 UTC instant as EC2 writes it ("2024-05-06T09:00:00.000Z", also "+00:00" and no
// fraction); nullopt for anything else.
std::optional<TimePoint> parseEc2Time(std::string_view text);

// Standard base64 with padding.
std::string base64Encode(std::string_view data);

// One <item> of an instancesSet.
spi::VmInstance instanceFromXml(const XmlElement& item);

// Every instance of every reservation in a DescribeInstances answer (reservationSet/item/instancesSet/item).
std::vector<spi::VmInstance> instancesFromDescribe(const XmlElement& root);

// The instances of a RunInstances answer (instancesSet/item).
std::vector<spi::VmInstance> instancesFromRun(const XmlElement& root);

// The tags a machine made for `spec` carries: the configured ones, then spec.tags, then Name.
std::map<std::string, std::string> machineTags(const Ec2Options& options, const spi::VmSpec& spec);

// RunInstances for one machine. InvalidArgument for a spec EC2 would refuse (a client token that is
// empty, over 64 characters or not printable ASCII; user data over 16 KiB; over 50 tags; a tag key
// over 128 or value over 256 characters).
Result<QueryParams> runInstancesParams(const Ec2Options& options, const spi::VmSpec& spec);

// One DescribeInstances page of the machines carrying every tag in `tags`.
QueryParams describeByTagsParams(const std::map<std::string, std::string>& tags, int page_size,
                                 const std::string& next_token);

// Whether `id` can be an EC2 instance id ("i-" and 8 to 32 letters or digits). Other ids are known
// not to exist without asking.
bool plausibleInstanceId(std::string_view id);

}  // namespace kasm::aws::detail
