#pragma once

// The VM provider SPI: what the autoscaler (kasm/autoscale/autoscaler.hpp) needs of a cloud or a
// hypervisor to add and remove the machines that become agents or servers. Built-in providers:
// "aws-ec2" (src/backends/aws/, the EC2 Query API with Signature V4) and "command" (executables
// an administrator configures: Proxmox, vSphere or anything scriptable; src/backends/command/).
// Embedders register their own by name in a VmProviderRegistry.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/enum_names.hpp"
#include "kasm/core/result.hpp"
#include "kasm/spi/registry.hpp"

namespace kasm::spi {

// What a provider says of one machine. kPending: created, not yet running; kRunning: booted (the
// agent in it may still be starting); kStopping / kStopped: powered down or going; kTerminated:
// destroyed (a provider may list those for a while, as EC2 does for about an hour).
enum class VmState { kPending, kRunning, kStopping, kStopped, kTerminated, kUnknown };

}  // namespace kasm::spi

KASM_ENUM_NAMES(kasm::spi::VmState, 6, {kasm::spi::VmState::kPending, "pending"},
                {kasm::spi::VmState::kRunning, "running"}, {kasm::spi::VmState::kStopping, "stopping"},
                {kasm::spi::VmState::kStopped, "stopped"}, {kasm::spi::VmState::kTerminated, "terminated"},
                {kasm::spi::VmState::kUnknown, "unknown"});

namespace kasm::spi {

// Tags every machine an installation makes carries (keys; values are ids).
namespace vm_tags {
inline constexpr std::string_view kInstallation = "kasm:installation";  // The installation's id.
inline constexpr std::string_view kConfig = "kasm:autoscale-config";    // The AutoscaleConfig's id.
inline constexpr std::string_view kVm = "kasm:vm";                      // The autoscaler's row for it.
}  // namespace vm_tags

// One machine to make.
struct VmSpec {
  std::string name;  // A readable name ("kasm-east-1a2b3c"); providers may use it as the host name.
  // The idempotency key: creating twice with one key makes one machine (EC2's ClientToken). The
  // autoscaler passes its row id, so a create whose answer was lost is retried safely.
  std::string client_token;
  std::string user_data;                    // The rendered startup script, as the machine receives it.
  std::map<std::string, std::string> tags;  // At least the three vm_tags; providers store them all.
};

// One machine as the provider reports it.
struct VmInstance {
  std::string id;  // The provider's id ("i-0abc...", a Proxmox VMID, ...).
  VmState state = VmState::kUnknown;
  std::string private_address;  // Where it is reached inside the deployment, when known.
  std::map<std::string, std::string> tags;
  std::optional<TimePoint> launched_at;
};

// Threading: methods may be called from any thread, one at a time per instance (the autoscaler
// serialises the calls of one configuration); they block until the provider answers.
// Errors: Unavailable for a provider that cannot be reached or failed inside (retried with
// backoff); ResourceExhausted for throttling or a quota (backed off longer); InvalidArgument,
// PermissionDenied or FailedPrecondition for a configuration the provider refuses (recorded with
// the provider's words; an administrator must act); NotFound from status() for an unknown id.
class VmProvider {
 public:
  virtual ~VmProvider() = default;

  // Creates one machine; idempotent per spec.client_token.
  virtual Result<VmInstance> create(const VmSpec& spec) = 0;
  // Destroys it. An id that is already gone (or terminated) succeeds.
  virtual Result<void> destroy(const std::string& instance_id) = 0;
  // Every machine carrying all of `tags` (key and value), terminated ones included or not, as the
  // provider lists them. Complete: a provider pages through its listing before answering.
  virtual Result<std::vector<VmInstance>> list(const std::map<std::string, std::string>& tags) = 0;
  // One machine; NotFound when the provider does not know the id.
  virtual Result<VmInstance> status(const std::string& instance_id) = 0;
};

// Providers by name; a factory takes the configuration's provider_config_json (a JSON object).
using VmProviderRegistry = Registry<VmProvider, const std::string&>;

}  // namespace kasm::spi
