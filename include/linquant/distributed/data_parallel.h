// Data-parallel QAT of a prepared model over a c10d process group: W processes, each with its
// share of every batch, train one model. DataParallel keeps the ranks identical where
// torch's DistributedDataParallel does (parameters and buffers from rank 0 at the start,
// gradients averaged after every backward pass) and makes the observers exact: each
// activation quantizer's batch range is combined over the ranks (minimum of minimums, maximum
// of maximums) before its moving-average update, so W ranks with batch B end with the
// observer state one process has with batch W*B (PyTorch's DDP keeps rank 0's observers;
// coremltools averages them).
#pragma once

#include <c10/util/intrusive_ptr.h>

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <vector>

#include "linquant/runtime/graph_module.h"

namespace linquant::distributed {

struct DataParallelOptions {
  // Combine the activation observers' batch ranges over the ranks (exact data-parallel
  // observers). Off: each rank's observers see only its own shard, and broadcast_state() is
  // the only thing that aligns them.
  bool synchronize_observers = true;
  // Training-mode BatchNorm (QAT Conv-BN included) normalizes with the statistics of the
  // whole batch over all ranks, and updates its running statistics with them (torch's
  // SyncBatchNorm): two small all-reduces per BatchNorm, one each way. Off: each rank's own.
  bool synchronize_batch_norm = true;
};

class DataParallel {
 public:
  // Installs the observer and BatchNorm synchronization on `model`. Every rank must
  // build the same model and call the methods below in the same order.
  DataParallel(GraphModule model, c10::intrusive_ptr<c10d::ProcessGroup> group,
               DataParallelOptions options = {});

  // Parameters and buffers (weights, quantizer and observer state, BatchNorm statistics,
  // milestone flags) from rank 0 to every rank.
  void broadcast_state();
  // After backward: every trainable parameter's gradient becomes the mean over the ranks (a
  // parameter without a gradient counts as zero). One all-reduce over all gradients, flattened.
  void average_gradients();

  int rank() const;
  int world_size() const;
  const GraphModule& model() const { return model_; }

 private:
  GraphModule model_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
};

// Every rank's `tensor` (contiguous, CPU) summed into every rank's, in place.
// Collective failures (a dead or hung peer) throw CommunicationError.
void all_reduce_sum(const at::Tensor& tensor, c10d::ProcessGroup& group);

// DataParallel's gradient averaging for any list of parameters (e.g. an optimizer's).
// Every trainable parameter's gradient becomes the mean over the ranks (a missing gradient counts
// as zero; a parameter that does not require grad keeps none): one all-reduce, flattened.
void average_gradients(const std::vector<at::Tensor>& parameters, c10d::ProcessGroup& group);

// The combination DataParallel installs, for one range: on return every rank holds the
// channel-wise union of all ranks' ranges (per tensor: empty if no rank saw a finite value).
// `channels`: the range's channel count when this rank's range is empty.
void all_reduce_range(ObservedRange& range, int64_t channels, bool per_channel,
                      c10d::ProcessGroup& group);

}  // namespace linquant::distributed
