// Keeps a Docker host's workspace images pulled ahead of launches (kasm-server for its in-process
// agent, kasm-agent for its host): a thread that runs agent::ImageSync against the images the
// installation wants there, every `period` and whenever that set changes. A launch on a host still
// without its image pulls it anyway (LocalAgent); this takes the pull off the user's wait.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/spi/container_runtime.hpp"

namespace kasm::server {

class ImagePuller {
 public:
  using Log = std::function<void(const std::string& event, const std::string& detail)>;
  // `runtime` is this puller's own (a pull blocks its connection for minutes).
  ImagePuller(std::shared_ptr<spi::ContainerRuntime> runtime, Log log, Duration period = std::chrono::seconds(60));
  ~ImagePuller();
  ImagePuller(const ImagePuller&) = delete;
  ImagePuller& operator=(const ImagePuller&) = delete;

  // Replaces the wanted images; a change wakes the thread at once.
  void setDesired(std::vector<std::string> images);
  // Ends the thread: at once between pulls; a pull in progress is left to finish on its own (the
  // thread is detached after `grace`, owning what it uses), so stopping never waits for a registry.
  void stop(Duration grace = std::chrono::seconds(2));

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

}  // namespace kasm::server
