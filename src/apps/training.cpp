// Minibatch loops with progress reporting.
#include "training.h"

#include <ATen/ATen.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "linquant/common/error.h"
#include "progress_bar.h"

namespace linquant::apps {
namespace {

std::string metrics_text(double loss, double accuracy) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "loss %.4f  acc %6.2f%%", loss, accuracy);
  return buffer;
}

int64_t correct_count(const at::Tensor& output, const at::Tensor& target) {
  return output.argmax(1).eq(target).sum().item<int64_t>();
}

void check_output(const at::Tensor& output, const ImageSet& data) {
  if (output.dim() != 2) {
    throw Error("the model's output has shape " + std::to_string(output.dim()) +
                "-D; a classifier must output [batch, classes]");
  }
  if (output.size(1) < data.num_classes()) {
    throw Error("the model outputs " + std::to_string(output.size(1)) +
                " classes but the data set has labels up to " +
                std::to_string(data.num_classes() - 1));
  }
}

std::string number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

// Training cannot recover from a non-finite loss or weight: stop, saying where.
Error diverged(const TrainEpochArgs& args, int64_t step, const std::string& what) {
  return Error("training diverged at step " + std::to_string(step + 1) + " of " + args.label +
               ": " + what + " (is the learning rate too high?)");
}

}  // namespace

void check_batch_shares(int64_t batch_images, const WorkerGroup& workers,
                        const std::string& context) {
  if (workers.alone() || batch_images >= workers.size()) return;
  throw Error("a batch of " + std::to_string(batch_images) + " images cannot be shared by " +
              std::to_string(workers.size()) + " workers (" + context +
              "): change the batch size or the number of images");
}

LossFn nll_loss_fn() {
  return [](const at::Tensor& output, const at::Tensor& target) {
    return at::nll_loss(output, target);
  };
}

LossFn cross_entropy_fn() {
  return [](const at::Tensor& output, const at::Tensor& target) {
    return at::cross_entropy_loss(output, target);
  };
}

EpochStats train_epoch(const Forward& forward, const LossFn& loss_fn,
                       torch::optim::Optimizer& optimizer, const ImageSet& data,
                       const TrainEpochArgs& args, std::vector<CurvePoint>* curve) {
  const int64_t size = data.size();
  const int64_t steps = num_batches(size, args.batch_size);
  const at::Tensor order = epoch_order(size, args.seed, args.epoch);
  const int64_t points = std::max<int64_t>(1, std::min<int64_t>(args.points_per_epoch, steps));
  ProgressBar bar(args.label, steps);
  EpochProgress local;
  EpochProgress& p = args.progress ? *args.progress : local;
  double& loss_sum = p.loss_sum;
  double& window_loss = p.window_loss;
  int64_t& correct = p.correct;
  int64_t& seen = p.seen;
  int64_t& window_correct = p.window_correct;
  int64_t& window_seen = p.window_seen;
  int64_t& window_steps = p.window_steps;
  const WorkerGroup& workers = args.workers;
  // The last batch is the smallest.
  check_batch_shares(
      size % args.batch_size == 0 ? std::min(size, args.batch_size) : size % args.batch_size,
      workers,
      std::to_string(size) + " training images in batches of " + std::to_string(args.batch_size));
  std::vector<at::Tensor> parameters;
  for (const auto& group : optimizer.param_groups()) {
    parameters.insert(parameters.end(), group.params().begin(), group.params().end());
  }
  for (int64_t step = args.first_step; step < steps; ++step) {
    const at::Tensor batch =
        order.slice(0, step * args.batch_size, std::min(size, (step + 1) * args.batch_size));
    const at::Tensor index = workers.shard(batch);
    const at::Tensor images = data.batch(index);
    const at::Tensor labels = data.labels.index_select(0, index);
    if (args.before_step) args.before_step();
    optimizer.zero_grad();
    const at::Tensor output = forward(images);
    if (step == 0) check_output(output, data);
    const at::Tensor loss = loss_fn(output, labels);
    // Shards of unequal size (a last batch not divisible by the workers) are weighted so that
    // the workers' mean gradient is the whole batch's; equal shares are left exactly as they are.
    const int64_t share = index.size(0) * workers.size();
    (share == batch.size(0) ? loss : loss * (static_cast<double>(share) / batch.size(0)))
        .backward();
    workers.average_gradients(parameters);
    optimizer.step();

    double loss_value = loss.item<double>();
    int64_t batch_correct = correct_count(output.detach(), labels);
    int64_t batch_seen = labels.size(0);
    if (!workers.alone()) {
      std::vector<double> sums = {loss_value * static_cast<double>(batch_seen),
                                  static_cast<double>(batch_correct),
                                  static_cast<double>(batch_seen)};
      workers.sum(sums);
      loss_value = sums[0] / sums[2];
      batch_correct = static_cast<int64_t>(sums[1]);
      batch_seen = static_cast<int64_t>(sums[2]);
    }
    if (!std::isfinite(loss_value)) throw diverged(args, step, "the loss is " + number(loss_value));
    loss_sum += loss_value;
    correct += batch_correct;
    seen += batch_seen;
    window_loss += loss_value;
    window_correct += batch_correct;
    window_seen += batch_seen;
    ++window_steps;
    // Curve points at evenly spaced steps; the last step of the epoch always closes one.
    const bool close_point =
        (step + 1) * points / steps != step * points / steps || step + 1 == steps;
    if (curve && close_point && window_steps > 0) {
      curve->push_back(
          {args.curve_x_start + static_cast<double>(step + 1) / static_cast<double>(steps),
           window_loss / static_cast<double>(window_steps),
           100.0 * static_cast<double>(window_correct) / static_cast<double>(window_seen)});
      window_loss = 0;
      window_correct = window_seen = window_steps = 0;
    }
    bar.update(step + 1, seen,
               metrics_text(loss_sum / static_cast<double>(step + 1),
                            100.0 * static_cast<double>(correct) / static_cast<double>(seen)));
    if (args.after_step) args.after_step(step + 1);
  }
  // The last step's update is seen by no loss: the weights themselves must be finite.
  for (const auto& group : optimizer.param_groups()) {
    for (const at::Tensor& p : group.params()) {
      if (!at::isfinite(p).all().item<bool>()) {
        throw diverged(args, steps - 1, "a weight is not finite after the update");
      }
    }
  }
  EpochStats stats;
  stats.steps = steps;
  stats.loss = loss_sum / static_cast<double>(steps);
  stats.accuracy =
      100.0 * static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(seen, 1));
  stats.seconds = bar.elapsed_seconds();
  bar.finish(metrics_text(stats.loss, stats.accuracy));
  return stats;
}

EvalStats evaluate(const Forward& forward, const LossFn& loss_fn, const ImageSet& data,
                   int64_t batch_size, const std::string& label, const WorkerGroup& workers) {
  const torch::NoGradGuard no_grad;
  const auto [first, last] = workers.share(data.size());
  const int64_t steps = num_batches(last - first, batch_size);
  ProgressBar bar(label, steps);
  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
  for (int64_t step = 0; step < steps; ++step) {
    const int64_t begin = first + step * batch_size, end = std::min(last, begin + batch_size);
    const at::Tensor labels = data.labels.slice(0, begin, end);
    const at::Tensor output = forward(data.range(begin, end));
    if (step == 0) check_output(output, data);
    // Weighted by batch size so the last, smaller batch counts right.
    loss_sum += loss_fn(output, labels).item<double>() * static_cast<double>(end - begin);
    correct += correct_count(output, labels);
    seen += end - begin;
    bar.update(step + 1, seen,
               metrics_text(loss_sum / static_cast<double>(seen),
                            100.0 * static_cast<double>(correct) / static_cast<double>(seen)));
  }
  if (!workers.alone()) {
    std::vector<double> sums = {loss_sum, static_cast<double>(correct), static_cast<double>(seen)};
    workers.sum(sums);
    loss_sum = sums[0];
    correct = static_cast<int64_t>(sums[1]);
    seen = static_cast<int64_t>(sums[2]);
  }
  EvalStats stats;
  stats.count = seen;
  stats.loss = loss_sum / static_cast<double>(std::max<int64_t>(seen, 1));
  stats.accuracy =
      100.0 * static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(seen, 1));
  stats.seconds = bar.elapsed_seconds();
  bar.finish(metrics_text(stats.loss, stats.accuracy));
  return stats;
}

}  // namespace linquant::apps
