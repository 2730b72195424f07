// BatchNorm folding arithmetic, in the operation order of torch's fuse_conv_bn_weights.
#include "linquant/runtime/batch_norm_folding.h"

#include <ATen/ATen.h>

#include <vector>

#include "linquant/ir/attribute_keys.h"

namespace linquant::runtime {

at::Tensor scale_output_channels(const ir::Node& node, const at::Tensor& weight,
                                 const at::Tensor& factor) {
  std::vector<int64_t> shape(static_cast<size_t>(weight.dim()), 1);
  if (node.op != ir::Op::conv_transpose) {
    shape[0] = -1;
    return weight * factor.reshape(shape);
  }
  const int64_t groups = node.attrs.i("groups", 1);
  if (groups == 1) {
    shape[1] = -1;
    return weight * factor.reshape(shape);
  }
  // Output channel g * (out / groups) + j lives in the rows of group g, column j.
  std::vector<int64_t> grouped = weight.sizes().vec();
  grouped[0] = weight.size(0) / groups;
  grouped.insert(grouped.begin(), groups);
  std::vector<int64_t> factor_shape(grouped.size(), 1);
  factor_shape[0] = groups;
  factor_shape[2] = weight.size(1);
  return (weight.reshape(grouped) * factor.reshape(factor_shape)).reshape(weight.sizes());
}

at::Tensor batch_norm_factor(const ir::Graph& graph, const ir::Node& node) {
  const at::Tensor var = graph.tensor(node.attrs.s(ir::attr::bn_running_var)).tensor;
  const at::Tensor running_std = at::sqrt(var + node.attrs.f(ir::attr::bn_eps));
  if (!node.attrs.has(ir::attr::bn_weight)) return at::reciprocal(running_std);
  return graph.tensor(node.attrs.s(ir::attr::bn_weight)).tensor / running_std;
}

at::Tensor folded_bias(const ir::Graph& graph, const ir::Node& node, const at::Tensor& factor) {
  auto tensor = [&](const char* key) { return graph.tensor(node.attrs.s(key)).tensor; };
  const at::Tensor mean = tensor(ir::attr::bn_running_mean);
  at::Tensor bias = node.attrs.has(ir::attr::bias) ? tensor(ir::attr::bias) - mean : -mean;
  bias = bias * factor;
  return node.attrs.has(ir::attr::bn_bias) ? bias + tensor(ir::attr::bn_bias) : bias;
}

FoldedWeights fold_batch_norm(const ir::Graph& graph, const ir::Node& node) {
  const at::Tensor factor = batch_norm_factor(graph, node).detach();
  const at::Tensor weight = graph.tensor(node.attrs.s(ir::attr::weight)).tensor.detach();
  return {scale_output_channels(node, weight, factor), folded_bias(graph, node, factor).detach()};
}

}  // namespace linquant::runtime
