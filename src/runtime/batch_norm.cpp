// BatchNorm as torch::nn::BatchNorm*d computes it, shared by standalone batch_norm nodes and
// the BatchNorm fused into conv/linear: the same statistics update and batch counting, so a
// graph trains its running statistics exactly like the captured module would.
#include <ATen/ATen.h>

#include <string>

#include "run_context.h"

namespace linquant::runtime {

double count_batch(const BatchNormState& state, bool use_batch_stats) {
  // torch's momentum=None is a cumulative average; without a batch counter it is 0, as in
  // torch::nn::BatchNorm.
  double factor = state.momentum < 0.0 ? 0.0 : state.momentum;
  if (use_batch_stats && state.num_batches_tracked.defined()) {
    const at::NoGradGuard no_grad;
    state.num_batches_tracked.add_(1);
    if (state.momentum < 0.0) factor = 1.0 / state.num_batches_tracked.item<double>();
  }
  return factor;
}

at::Tensor batch_norm(const at::Tensor& x, const BatchNormState& state, bool use_batch_stats,
                      const BatchStatsReducer* reducer) {
  const double factor = count_batch(state, use_batch_stats);
  if (use_batch_stats && reducer) return sync_batch_norm(x, state, factor, *reducer);
  return at::batch_norm(x, state.weight, state.bias, state.running_mean, state.running_var,
                        use_batch_stats, factor, state.eps, /*cudnn_enabled=*/true);
}

BatchNormState batch_norm_state(const ir::Node& node, const RunContext& context,
                                const std::string& prefix) {
  BatchNormState state;
  state.weight = context.optional_tensor(node, prefix + "weight");
  state.bias = context.optional_tensor(node, prefix + "bias");
  state.running_mean = context.tensor(node, prefix + "running_mean");
  state.running_var = context.tensor(node, prefix + "running_var");
  state.num_batches_tracked = context.optional_tensor(node, prefix + "num_batches_tracked");
  state.eps = node.attrs.f(prefix + "eps");
  state.momentum = node.attrs.f(prefix + "momentum", -1.0);
  return state;
}

at::Tensor run_batch_norm(const ir::Node& node, const at::Tensor& x, const RunContext& context) {
  const BatchNormState state = batch_norm_state(node, context, "");
  // Only fused BatchNorm has a freeze flag: coremltools' freeze_bn_stats reaches the QAT
  // ConvBn modules, never a standalone BatchNorm.
  return batch_norm(x, state, context.training && !context.record_only,
                    context.batch_stats_reducer);
}

}  // namespace linquant::runtime
