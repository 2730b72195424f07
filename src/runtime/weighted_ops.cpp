// conv, conv_transpose and linear: the ATen call for each, and the weight fake-quantizer in
// front of it. Nodes with a fused BatchNorm go to conv_bn.cpp, which reuses both pieces.
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "linquant/common/error.h"
#include "linquant/ir/attribute_keys.h"
#include "run_context.h"

namespace linquant::runtime {
namespace {

int64_t spatial_dims(const ir::Node& node, const at::Tensor& weight) {
  return node.attrs.i("spatial_dims", weight.dim() - 2);
}

void check_padding_mode(const ir::Node& node) {
  // Non-zero padding modes pad the input first in torch; the IR has no op for that yet.
  const std::string mode = node.attrs.s("padding_mode", "zeros");
  if (mode != "zeros") throw Error("padding_mode '" + mode + "' is not supported (only zeros)");
}

at::Tensor conv(const ir::Node& node, const at::Tensor& x, const at::Tensor& weight,
                const at::Tensor& bias) {
  check_padding_mode(node);
  const auto& stride = node.attrs.ints("stride");
  const auto& dilation = node.attrs.ints("dilation");
  const int64_t groups = node.attrs.i("groups");
  const int64_t dims = spatial_dims(node, weight);
  const auto& padding_value = node.attrs.all().at("padding");
  // padding="same"/"valid" as torch spells it, when a frontend keeps the string.
  if (const auto* text = std::get_if<std::string>(&padding_value)) {
    switch (dims) {
      case 1: return at::conv1d(x, weight, bias, stride, *text, dilation, groups);
      case 2: return at::conv2d(x, weight, bias, stride, *text, dilation, groups);
      case 3: return at::conv3d(x, weight, bias, stride, *text, dilation, groups);
    }
  } else {
    const auto& padding = node.attrs.ints("padding");
    switch (dims) {
      case 1: return at::conv1d(x, weight, bias, stride, padding, dilation, groups);
      case 2: return at::conv2d(x, weight, bias, stride, padding, dilation, groups);
      case 3: return at::conv3d(x, weight, bias, stride, padding, dilation, groups);
    }
  }
  throw Error("cannot run a convolution with " + std::to_string(dims) + " spatial dimensions");
}

at::Tensor conv_transpose(const ir::Node& node, const at::Tensor& x, const at::Tensor& weight,
                          const at::Tensor& bias) {
  check_padding_mode(node);
  const auto& stride = node.attrs.ints("stride");
  const auto& padding = node.attrs.ints("padding");
  const auto& output_padding = node.attrs.ints("output_padding");
  const auto& dilation = node.attrs.ints("dilation");
  const int64_t groups = node.attrs.i("groups");
  const int64_t dims = spatial_dims(node, weight);
  switch (dims) {
    case 1:
      return at::conv_transpose1d(x, weight, bias, stride, padding, output_padding, groups,
                                  dilation);
    case 2:
      return at::conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups,
                                  dilation);
    case 3:
      return at::conv_transpose3d(x, weight, bias, stride, padding, output_padding, groups,
                                  dilation);
  }
  throw Error("cannot run a transposed convolution with " + std::to_string(dims) +
              " spatial dimensions");
}

}  // namespace

at::Tensor apply_weighted(const ir::Node& node, const at::Tensor& x, const at::Tensor& weight,
                          const at::Tensor& bias) {
  switch (node.op) {
    case ir::Op::conv: return conv(node, x, weight, bias);
    case ir::Op::conv_transpose: return conv_transpose(node, x, weight, bias);
    case ir::Op::linear: return at::linear(x, weight, bias);
    case ir::Op::embedding:
      return at::embedding(weight, x, node.attrs.i("padding_idx"),
                           node.attrs.b("scale_grad_by_freq"), node.attrs.b("sparse"));
    default: throw Error("is not a weighted op");
  }
}

at::Tensor quantize_weight(const ir::Node& node, const at::Tensor& weight,
                           const RunContext& context) {
  if (context.record_only || !node.attrs.has(ir::attr::weight_quantizer)) return weight;
  return context.quantizer(node, ir::attr::weight_quantizer)->forward(weight);
}

at::Tensor run_weighted(const ir::Node& node, const at::Tensor& x, const RunContext& context) {
  if (has_fused_batch_norm(node)) return run_conv_bn(node, x, context);
  const at::Tensor weight = quantize_weight(node, context.tensor(node, ir::attr::weight), context);
  return apply_weighted(node, x, weight, context.optional_tensor(node, "bias"));
}

}  // namespace linquant::runtime
