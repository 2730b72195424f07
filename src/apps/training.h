// The training and evaluation loops the commands share: one epoch of minibatch training with
// a progress bar and a recorded curve, and a no-grad pass over a test set.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "image_data.h"
#include "worker_group.h"

namespace torch::optim {
class Optimizer;
}  // namespace torch::optim

namespace linquant::apps {

using Forward = std::function<at::Tensor(const at::Tensor&)>;
using LossFn = std::function<at::Tensor(const at::Tensor& output, const at::Tensor& target)>;

// nll_loss for models ending in LogSoftmax (the tutorial nets), cross_entropy for logits.
LossFn nll_loss_fn();
LossFn cross_entropy_fn();

// A point of a training curve: means over the steps since the previous point.
struct CurvePoint {
  double epoch = 0;  // x: epochs since the start of the run (fractional)
  double loss = 0;
  double accuracy = 0;  // percent
};

struct EpochStats {
  double loss = 0;      // mean over the epoch's batches
  double accuracy = 0;  // percent, over the epoch's samples
  int64_t steps = 0;
  double seconds = 0;
};

// The running sums of an epoch (its mean loss and accuracy, the curve's current window): kept
// by the caller when an epoch may be resumed from a checkpoint.
struct EpochProgress {
  double loss_sum = 0, window_loss = 0;
  int64_t correct = 0, seen = 0, window_correct = 0, window_seen = 0, window_steps = 0;
};

struct TrainEpochArgs {
  std::string label;  // progress bar label, e.g. "float 1/4"
  int64_t batch_size = 128;
  uint64_t seed = 0;
  int64_t epoch = 0;         // picks the shuffling order (with the seed)
  double curve_x_start = 0;  // x of this epoch's first step on the curve
  int points_per_epoch = 20;
  std::function<void()> before_step;  // e.g. LinearQuantizer::step(), as the tutorial does
  int64_t first_step = 0;             // steps of this epoch done before (a resumed run skips them)
  EpochProgress* progress = nullptr;  // the sums so far, updated after each step (may be null)
  // After each step's update, with the number of this epoch's steps done (checkpoints).
  std::function<void(int64_t steps_done)> after_step;
  // Data-parallel: this worker trains its shard of every batch, gradients are averaged before
  // the update and the metrics are the whole batch's. Default: alone.
  WorkerGroup workers;
};

// Every worker of several needs at least one image of every batch: Error naming `context`
// otherwise (a process alone is not checked).
void check_batch_shares(int64_t batch_images, const WorkerGroup& workers,
                        const std::string& context);

// Trains one epoch in the model's current mode; appends to `curve` when given.
EpochStats train_epoch(const Forward& forward, const LossFn& loss_fn,
                       torch::optim::Optimizer& optimizer, const ImageSet& data,
                       const TrainEpochArgs& args, std::vector<CurvePoint>* curve);

struct EvalStats {
  double loss = 0;
  double accuracy = 0;  // percent
  int64_t count = 0;
  double seconds = 0;
};

// Without gradients, in the model's current mode (callers switch to eval()). Several workers
// each evaluate their share of `data` and report the statistics of the whole.
EvalStats evaluate(const Forward& forward, const LossFn& loss_fn, const ImageSet& data,
                   int64_t batch_size, const std::string& label,
                   const WorkerGroup& workers = WorkerGroup());

}  // namespace linquant::apps
