#pragma once

// A base for ContainerRuntime test doubles: every call fails with "unused" (no images, no host
// resources), so a double overrides only what its test exercises.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kasm/spi/container_runtime.hpp"

namespace kasm::testing {

class UnusedRuntime : public spi::ContainerRuntime {
 public:
  Result<spi::HostResources> hostResources() override { return spi::HostResources{}; }
  Result<spi::ContainerInfo> createAndStart(const spi::ContainerSpec&) override { return unused(); }
  Result<spi::ContainerInfo> inspect(const std::string&) override { return unused(); }
  Result<std::vector<spi::ContainerInfo>> list(const std::map<std::string, std::string>&) override { return unused(); }
  Result<void> stop(const std::string&, Duration) override { return unused(); }
  Result<void> start(const std::string&) override { return unused(); }
  Result<void> kill(const std::string&) override { return unused(); }
  Result<void> pause(const std::string&) override { return unused(); }
  Result<void> unpause(const std::string&) override { return unused(); }
  Result<void> remove(const std::string&) override { return unused(); }
  Result<spi::ExecResult> exec(const std::string&, const spi::ExecRequest&) override { return unused(); }
  Result<std::vector<spi::ImageInfo>> listImages() override { return std::vector<spi::ImageInfo>{}; }
  Result<void> pullImage(const std::string&, const std::optional<spi::RegistryCredentials>&,
                         const std::function<void(const spi::PullProgress&)>&) override {
    return unused();
  }
  Result<void> removeImage(const std::string&) override { return unused(); }

 protected:
  static Error unused() { return internalError("unused"); }
};

}  // namespace kasm::testing
