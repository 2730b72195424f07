// This process's place in a data-parallel run of a command (`--nproc N`, or workers started by
// torchrun): the shard of every batch it trains, the sums it shares with the other workers, and
// whether it writes the outputs. A process on its own is a group of one, and then every method
// leaves its input as it is, so the commands run the same code alone and in a group.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/intrusive_ptr.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace c10d {
class ProcessGroup;
}  // namespace c10d

namespace linquant::apps {

class WorkerGroup {
 public:
  WorkerGroup() = default;  // alone

  // Joins the job torchrun's variables describe (RANK, WORLD_SIZE, MASTER_ADDR, ...); alone
  // when WORLD_SIZE is unset. `timeout` bounds the rendezvous and every later collective: a
  // dead or hung worker makes the others fail with one error instead of waiting for ever.
  // Workers other than rank 0 print no progress and no warnings (rank 0 prints the same).
  static WorkerGroup from_environment(std::chrono::seconds timeout);

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool alone() const { return size_ == 1; }
  bool writes_outputs() const { return rank_ == 0; }
  // Workers on this machine, among which its cores are shared.
  int local_size() const { return local_size_; }
  // The process group, for DataParallel (Error when alone).
  const c10::intrusive_ptr<c10d::ProcessGroup>& process_group() const;

  // This worker's part of a global batch: positions rank, rank + W, rank + 2W, ... of
  // `batch_index`, so that the shards of every epoch's permutation are torch's
  // DistributedSampler shards.
  at::Tensor shard(const at::Tensor& batch_index) const;
  // This worker's contiguous part [first, last) of [0, count) (evaluation).
  std::pair<int64_t, int64_t> share(int64_t count) const;
  // Every worker's `values` summed, in float64, into every worker's.
  void sum(std::vector<double>& values) const;
  // The mean gradient over the workers, after each backward pass.
  void average_gradients(const std::vector<at::Tensor>& parameters) const;

 private:
  int rank_ = 0;
  int size_ = 1;
  int local_size_ = 1;
  // Shared by copies; a shared_ptr so that this header needs no c10d definitions.
  std::shared_ptr<const c10::intrusive_ptr<c10d::ProcessGroup>> group_;
};

}  // namespace linquant::apps
