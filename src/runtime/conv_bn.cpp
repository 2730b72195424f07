// Weighted op with a fused BatchNorm in QAT form, as torch's _ConvBnNd._forward_approximate
// (and LinearBn1d, coremltools' ConvTransposeBn) compute it: the weight fake-quantizer sees
// W * gamma / sqrt(running_var + eps); the factor is divided back out of the output, the conv
// bias added, and BatchNorm applied with batch statistics until frozen. Once BatchNorm uses
// running statistics the result equals the folded conv(x, fq(W')) + b' of inference.
#include <ATen/ATen.h>

#include <vector>

#include "channel_divide.h"
#include "divided_batch_norm.h"
#include "linquant/common/error.h"
#include "linquant/ir/attribute_keys.h"
#include "linquant/runtime/batch_norm_folding.h"
#include "run_context.h"

namespace linquant::runtime {
namespace {

// [1, C, 1, ...] for broadcasting a per-channel vector on an output with channels on axis 1.
std::vector<int64_t> channel_shape(const at::Tensor& y) {
  std::vector<int64_t> shape(static_cast<size_t>(y.dim()), 1);
  shape[1] = -1;
  return shape;
}

}  // namespace

bool has_fused_batch_norm(const ir::Node& node) {
  return node.attrs.has(ir::attr::bn_running_mean) || node.attrs.has(ir::attr::bn_running_var);
}

at::Tensor run_conv_bn(const ir::Node& node, const at::Tensor& x, const RunContext& context,
                       FakeQuantize* then_quantize) {
  const auto finish = [&](const at::Tensor& y) {
    return then_quantize ? (*then_quantize)->forward(y) : y;
  };
  const at::Tensor& weight = context.tensor(node, ir::attr::weight);
  const at::Tensor bias = context.optional_tensor(node, "bias");
  const BatchNormState bn = batch_norm_state(node, context, "bn_");

  // gamma / sqrt(running_var + eps), shared with finalize()'s folding.
  const at::Tensor scale_factor = batch_norm_factor(context.graph, node);
  const at::Tensor quantized_weight =
      quantize_weight(node, scale_output_channels(node, weight, scale_factor), context);
  // In eval() BatchNorm uses running statistics, so the block is exactly the folded
  // conv(x, fq(W')) + b' that finalize() produces: computed that way, finalized and prepared
  // models agree bit for bit instead of differing by rounding flips in later quantizers.
  if (!context.training) {
    return finish(
        apply_weighted(node, x, quantized_weight, folded_bias(context.graph, node, scale_factor)));
  }
  // The conv bias is added after the factor is divided out, as in torch; the zero bias keeps
  // the kernel call the same as torch's.
  const at::Tensor zero_bias = at::zeros({scale_factor.numel()}, x.options());
  at::Tensor y = apply_weighted(node, x, quantized_weight, zero_bias);
  if (node.op == ir::Op::linear && y.dim() != 2) {
    throw Error("linear with fused BatchNorm needs a [batch, features] output, got " +
                std::to_string(y.dim()) + " dimensions");
  }
  const bool frozen = context.freeze_bn.at(node.name).item<uint8_t>() != 0;
  const bool batch_stats = !frozen && !context.record_only;
  const at::Tensor factor = scale_factor.reshape({-1});
  // Without a conv bias BatchNorm's input is the quotient itself: one node for the division,
  // BatchNorm and (frozen) the quantizer after it saves passes over memory.
  if (!bias.defined() && !context.record_only) {
    if (batch_stats && !context.batch_stats_reducer && divide_and_batch_norm_applies(y, bn)) {
      return finish(divide_and_batch_norm(y, factor, bn, count_batch(bn, true)));
    }
    if (frozen && then_quantize &&
        divide_frozen_batch_norm_and_quantize_applies(y, bn, *then_quantize)) {
      return divide_frozen_batch_norm_and_quantize(y, factor, bn, *then_quantize);
    }
  }
  y = divide_channels(y, factor);
  if (bias.defined()) y = y + bias.reshape(channel_shape(y));
  return finish(batch_norm(y, bn, batch_stats, context.batch_stats_reducer));
}

}  // namespace linquant::runtime
