// Where this process stands in a data-parallel job, read from the environment variables
// torchrun (torch.distributed.run) sets for its workers, and joining that job: a TCPStore
// served by rank 0 at MASTER_ADDR:MASTER_PORT and a Gloo process group over it (LibTorch's
// own c10d, docs/distributed.md).
#pragma once

#include <c10/util/intrusive_ptr.h>

#include <chrono>
#include <optional>
#include <string>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

namespace linquant::distributed {

struct WorkerPlacement {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;  // workers on this machine (LOCAL_WORLD_SIZE; else WORLD_SIZE)
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// From RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT; nullopt when
// WORLD_SIZE is not set (not launched as a worker). Throws linquant::Error naming a malformed
// variable.
std::optional<WorkerPlacement> placement_from_environment();

// Connects to the job's other workers: waits for all of them up to `timeout`, which also
// bounds every later collective (a dead or hung peer makes them throw). Throws
// linquant::Error when the store or the peers cannot be reached in time.
c10::intrusive_ptr<c10d::ProcessGroup> join(const WorkerPlacement& placement,
                                            std::chrono::milliseconds timeout);

}  // namespace linquant::distributed
