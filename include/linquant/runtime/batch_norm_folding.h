// Folding a fused BatchNorm into its conv/linear weights (reference 4.3): shared by the QAT
// forward, which scales the weight before fake quantization, and by finalize(), which folds.
#pragma once

#include <ATen/core/Tensor.h>

#include "linquant/ir/graph.h"

namespace linquant::runtime {

// weight * factor with the factor running along the weight's output channels: axis 0 for
// conv and linear weights, axis 1 within each group for transposed-conv weights
// [in, out / groups, k...].
at::Tensor scale_output_channels(const ir::Node& node, const at::Tensor& weight,
                                 const at::Tensor& factor);

// gamma / sqrt(running_var + eps) of a node with bn_* attributes (gamma = 1 without affine),
// as the QAT forward computes it (differentiable in gamma).
at::Tensor batch_norm_factor(const ir::Graph& graph, const ir::Node& node);

// (b - running_mean) * factor + beta, b = 0 without a bias: the folded bias.
at::Tensor folded_bias(const ir::Graph& graph, const ir::Node& node, const at::Tensor& factor);

struct FoldedWeights {
  at::Tensor weight;  // W * factor
  at::Tensor bias;    // folded_bias
};

// The inference-time weights of a node with a fused BatchNorm (running statistics), with the
// same factor the QAT forward uses, so a frozen prepared model and its finalized form
// compute the same numbers.
FoldedWeights fold_batch_norm(const ir::Graph& graph, const ir::Node& node);

}  // namespace linquant::runtime
