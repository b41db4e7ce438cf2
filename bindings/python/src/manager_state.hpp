#pragma once

// What a Python kasm.Manager owns: the manager and everything it borrows by reference (store,
// clock, random, the Docker runtimes and their in-process agents). Members are declared so that the
// manager is destroyed first and the store last.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kasm/agent/local_agent.hpp"
#include "kasm/core/clock.hpp"
#include "kasm/core/random.hpp"
#include "kasm/manager/manager.hpp"
#include "kasm/spi/container_runtime.hpp"
#include "kasm/spi/store.hpp"

namespace kasm::python {

struct DockerAgent {
  AgentId id;
  std::string token;
  std::unique_ptr<spi::ContainerRuntime> runtime;
  std::shared_ptr<agent::LocalAgent> link;
};

struct ManagerState {
  std::shared_ptr<spi::Store> store;
  std::unique_ptr<Clock> clock;
  ManualClock* manual_clock = nullptr;  // Set when the clock is injected (tests, simulations).
  SeededRandom random;
  std::mutex agents_mu;
  std::vector<std::shared_ptr<DockerAgent>> agents;
  std::unique_ptr<Manager> manager;

  ~ManagerState() {
    manager.reset();  // Before the agents and runtimes it links to.
  }
};

}  // namespace kasm::python
