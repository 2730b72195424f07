#include "linquant/distributed/launch.h"

#include <cstdlib>
#include <string>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "linquant/common/communication_error.h"

namespace linquant::distributed {
namespace {

std::optional<std::string> variable(const char* name) {
  const char* value = std::getenv(name);
  if (!value) return std::nullopt;
  return std::string(value);
}

int integer_variable(const char* name, int fallback, int lowest, int highest) {
  const std::optional<std::string> text = variable(name);
  if (!text) return fallback;
  size_t used = 0;
  long value = 0;
  try {
    value = std::stol(*text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text->size() || value < lowest || value > highest) {
    throw Error(std::string(name) + "='" + *text + "' is not an integer from " +
                std::to_string(lowest) + " to " + std::to_string(highest));
  }
  return static_cast<int>(value);
}

// The network interface Gloo binds: GLOO_SOCKET_IFNAME as in torch; loopback for a job on this
// machine alone; otherwise the address this machine's hostname resolves to.
std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& master_addr) {
  if (const std::optional<std::string> interface = variable("GLOO_SOCKET_IFNAME")) {
    return c10d::ProcessGroupGloo::createDeviceForInterface(*interface);
  }
  if (master_addr == "localhost" || master_addr.rfind("127.", 0) == 0) {
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

std::optional<WorkerPlacement> placement_from_environment() {
  if (!variable("WORLD_SIZE")) return std::nullopt;
  WorkerPlacement p;
  p.world_size = integer_variable("WORLD_SIZE", 1, 1, 1 << 16);
  p.rank = integer_variable("RANK", 0, 0, p.world_size - 1);
  p.local_world_size = integer_variable("LOCAL_WORLD_SIZE", p.world_size, 1, p.world_size);
  p.local_rank = integer_variable("LOCAL_RANK", 0, 0, p.local_world_size - 1);
  p.master_addr = variable("MASTER_ADDR").value_or(p.master_addr);
  if (p.master_addr.empty()) throw Error("MASTER_ADDR is empty");
  p.master_port = integer_variable("MASTER_PORT", p.master_port, 1, 65535);
  return p;
}

c10::intrusive_ptr<c10d::ProcessGroup> join(const WorkerPlacement& placement,
                                            std::chrono::milliseconds timeout) {
  const std::string where = placement.master_addr + ":" + std::to_string(placement.master_port);
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(placement.master_port);
    store_options.isServer = placement.rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(placement.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(placement.master_addr, store_options);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(gloo_device(placement.master_addr));
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store, placement.rank, placement.world_size,
                                                       options);
  } catch (const std::exception& e) {
    throw CommunicationError("rank " + std::to_string(placement.rank) + " of " +
                             std::to_string(placement.world_size) + " could not join the job at " +
                             where + ": " + e.what());
  }
}

}  // namespace linquant::distributed
