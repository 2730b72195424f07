// batch_norm (inference form, running statistics) as BatchNormalization; layer_norm as
// LayerNormalization from opset 17, before that from ReduceMean, Sub, Mul, Add, Sqrt and Div.
#include <ATen/ATen.h>

#include "../graph/grid_weight.h"
#include "linquant/ir/attribute_keys.h"
#include "lowering.h"

namespace linquant::onnx::lowering {
namespace {

// A model tensor as an initializer named after it, or `fill` repeated when the node lacks it.
std::string tensor_or(const ir::Node& node, Context& context, const char* key, int64_t size,
                      float fill, const std::string& suffix) {
  if (node.attrs.has(key)) {
    const at::Tensor& t = context.model_tensor(node, key);
    return context.builder().add_floats(node.attrs.s(key), t.sizes().vec(),
                                        graph_export::float_vector(t));
  }
  return context.builder().add_floats(context.helper_name(node, suffix), {size},
                                      std::vector<float>(static_cast<size_t>(size), fill));
}

void batch_norm(const ir::Node& node, Context& context) {
  const std::vector<int64_t>& shape = context.shape(node.inputs.at(0));
  if (shape.size() < 2)
    fail(node, "batch_norm of a rank-" + std::to_string(shape.size()) + " tensor");
  const int64_t channels = shape[1];
  const std::string x = context.input(node);
  const std::vector<std::string> inputs = {
      x, tensor_or(node, context, ir::attr::weight, channels, 1.0f, "gamma"),
      tensor_or(node, context, ir::attr::bias, channels, 0.0f, "beta"),
      tensor_or(node, context, ir::attr::running_mean, channels, 0.0f, "mean"),
      tensor_or(node, context, ir::attr::running_var, channels, 1.0f, "var")};
  context.define(node.outputs[0], context.builder().add(
                                      "BatchNormalization", inputs, context.output_name(node),
                                      {{"epsilon", static_cast<float>(number_attr(node, "eps"))}}));
}

void layer_norm(const ir::Node& node, Context& context) {
  const std::vector<int64_t>& shape = context.shape(node.inputs.at(0));
  const size_t rank = shape.size();
  const std::vector<int64_t>& normalized = node.attrs.ints("normalized_shape");
  if (normalized.empty() || normalized.size() > rank) {
    fail(node, "normalized_shape does not fit a rank-" + std::to_string(rank) + " input");
  }
  std::vector<int64_t> axes;
  int64_t count = 1;
  for (size_t d = rank - normalized.size(); d < rank; ++d) {
    if (shape[d] != normalized[d - (rank - normalized.size())]) {
      fail(node, "normalized_shape does not match the input's trailing dimensions");
    }
    axes.push_back(static_cast<int64_t>(d));
    count *= shape[d];
  }
  const auto eps = static_cast<float>(number_attr(node, "eps"));
  const std::string x = context.input(node);
  OnnxBuilder& b = context.builder();
  const std::vector<int64_t> affine_shape = normalized;
  auto affine = [&](const char* key, float fill, const std::string& suffix) {
    if (node.attrs.has(key)) {
      const at::Tensor& t = context.model_tensor(node, key);
      return b.add_floats(node.attrs.s(key), t.sizes().vec(), graph_export::float_vector(t));
    }
    return b.add_floats(context.helper_name(node, suffix), affine_shape,
                        std::vector<float>(static_cast<size_t>(count), fill));
  };
  const std::string gamma = affine(ir::attr::weight, 1.0f, "gamma");
  const std::string beta = affine(ir::attr::bias, 0.0f, "beta");
  if (context.opset() >= 17) {
    context.define(node.outputs[0],
                   b.add("LayerNormalization", {x, gamma, beta}, context.output_name(node),
                         {{"axis", -static_cast<int64_t>(normalized.size())}, {"epsilon", eps}}));
    return;
  }
  auto h = [&](const std::string& suffix) { return context.helper_name(node, suffix); };
  const std::string centered =
      b.add("Sub", {x, reduce_mean(context, x, axes, true, h("mean"))}, h("centered"));
  const std::string variance = reduce_mean(
      context, b.add("Mul", {centered, centered}, h("squared")), axes, true, h("variance"));
  const std::string std_dev = b.add(
      "Sqrt", {b.add("Add", {variance, context.float_scalar(eps)}, h("variance_eps"))}, h("std"));
  const std::string normalized_x = b.add("Div", {centered, std_dev}, h("normalized"));
  context.define(node.outputs[0],
                 b.add("Add", {b.add("Mul", {normalized_x, gamma}, h("scaled")), beta},
                       context.output_name(node)));
}

}  // namespace

void lower_normalization(const ir::Node& node, Context& context) {
  switch (node.op) {
    case ir::Op::batch_norm:
      return batch_norm(node, context);
    case ir::Op::layer_norm:
      return layer_norm(node, context);
    default:
      fail(node, "internal error: not a normalization");
  }
}

}  // namespace linquant::onnx::lowering
