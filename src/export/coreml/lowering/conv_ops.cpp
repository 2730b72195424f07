// conv, conv_transpose, linear and matmul. Weights come from weight_constants.cpp; biases are
// plain constants in the program's precision. Padding is always explicit (pad_type "custom").
#include <ATen/ATen.h>

#include <optional>

#include "linquant/export/coreml/identifier.h"
#include "linquant/ir/attribute_keys.h"
#include "lowering.h"

namespace linquant::coreml::lowering {
namespace {

// Bias constants are named after their tensor and shared like weights.
std::optional<Var> bias_var(const ir::Node& node, LoweringContext& context) {
  if (!node.attrs.has(ir::attr::bias)) return std::nullopt;
  const std::string& tensor_name = node.attrs.s(ir::attr::bias);
  auto& cache = context.tensor_vars();
  if (const auto it = cache.find(tensor_name); it != cache.end()) return it->second;
  const Var var =
      context.builder().add_const(sanitize_identifier(tensor_name),
                                  context.float_tensor(context.model_tensor(node, ir::attr::bias)));
  cache.emplace(tensor_name, var);
  return var;
}

void check_padding_mode(const ir::Node& node) {
  const std::string mode = node.attrs.s("padding_mode", "zeros");
  if (mode != "zeros") {
    fail(node, "padding_mode '" + mode + "' has no Core ML conv equivalent (only zeros)");
  }
}

// Parameters shared by conv and conv_transpose, in coremltools' order.
Args conv_params(const ir::Node& node, const Var& x, const Var& weight,
                 const std::optional<Var>& bias, const std::vector<int64_t>& pad, size_t dims) {
  Args args = {{"x", x}, {"weight", weight}};
  if (bias) args.push_back({"bias", *bias});
  auto list = [&](const std::string& key) {
    return TensorValue::int32_list(to_int32(node, spatial_ints(node, key, dims)));
  };
  args.push_back({"strides", list("stride")});
  args.push_back({"pad_type", TensorValue::scalar_string("custom")});
  args.push_back({"pad", TensorValue::int32_list(to_int32(node, pad))});
  args.push_back({"dilations", list("dilation")});
  const int32_t groups = to_int32(node, {node.attrs.i("groups", 1)})[0];
  args.push_back({"groups", TensorValue::scalar_int32(groups)});
  return args;
}

size_t spatial_dims(const ir::Node& node, const Var& weight) {
  const size_t dims = weight.type().rank() - 2;
  if (dims < 1 || dims > 3) fail(node, "weights of rank " + std::to_string(weight.type().rank()) +
                                           " are not a 1-, 2- or 3-D convolution");
  return dims;
}

void lower_conv(const ir::Node& node, LoweringContext& context) {
  check_padding_mode(node);
  const Var weight = weight_var(node, context);
  const size_t dims = spatial_dims(node, weight);
  std::vector<int64_t> pad;
  if (!node.attrs.has("padding")) fail(node, "attribute 'padding' is missing");
  const ir::AttributeValue& padding = node.attrs.all().at("padding");
  if (const auto* text = std::get_if<std::string>(&padding)) {
    if (*text != "valid") {
      fail(node, "padding '" + *text + "' is not supported; give explicit padding sizes");
    }
    pad.assign(2 * dims, 0);
  } else {
    for (int64_t p : spatial_ints(node, "padding", dims)) {
      pad.push_back(p);  // before
      pad.push_back(p);  // after
    }
  }
  const Var x = context.input(node);
  const std::optional<Var> bias = bias_var(node, context);
  context.define(node.outputs[0],
                 context.builder().add_op("conv", context.output_name(node),
                                          conv_params(node, x, weight, bias, pad, dims),
                                          context.output_type(node)));
}

void lower_conv_transpose(const ir::Node& node, LoweringContext& context) {
  check_padding_mode(node);
  const Var weight = weight_var(node, context);
  const size_t dims = spatial_dims(node, weight);
  const std::vector<int64_t> padding = spatial_ints(node, "padding", dims);
  const std::vector<int64_t> output_padding = node.attrs.has("output_padding")
                                                  ? spatial_ints(node, "output_padding", dims)
                                                  : std::vector<int64_t>(dims, 0);
  // MIL crops pad[before] and pad[after] off the full transposed convolution; torch crops
  // `padding` before and `padding - output_padding` after.
  std::vector<int64_t> pad;
  for (size_t d = 0; d < dims; ++d) {
    if (output_padding[d] > padding[d]) {
      fail(node, "output_padding " + std::to_string(output_padding[d]) + " larger than padding " +
                     std::to_string(padding[d]) + " is not supported by the Core ML export");
    }
    pad.push_back(padding[d]);
    pad.push_back(padding[d] - output_padding[d]);
  }
  const Var x = context.input(node);
  const std::optional<Var> bias = bias_var(node, context);
  context.define(node.outputs[0],
                 context.builder().add_op("conv_transpose", context.output_name(node),
                                          conv_params(node, x, weight, bias, pad, dims),
                                          context.output_type(node)));
}

void lower_linear(const ir::Node& node, LoweringContext& context) {
  const Var x = context.input(node);
  const Var weight = weight_var(node, context);
  const std::optional<Var> bias = bias_var(node, context);
  if (x.type().rank() <= 3) {
    Args args = {{"x", x}, {"weight", weight}};
    if (bias) args.push_back({"bias", *bias});
    context.define(node.outputs[0], context.builder().add_op("linear", context.output_name(node),
                                                             args, context.output_type(node)));
    return;
  }
  // MIL linear takes inputs of rank <= 3; higher ranks use matmul with the weight transposed.
  const bool has_bias = bias.has_value();
  const Var product = context.builder().add_op(
      "matmul", has_bias ? context.helper_name(node, "matmul") : context.output_name(node),
      {{"x", x}, {"y", weight}, {"transpose_x", TensorValue::scalar_bool(false)},
       {"transpose_y", TensorValue::scalar_bool(true)}},
      context.output_type(node));
  context.define(node.outputs[0],
                 has_bias ? context.builder().add_op("add", context.output_name(node),
                                                     {{"x", product}, {"y", *bias}},
                                                     context.output_type(node))
                          : product);
}

}  // namespace

void lower_weighted(const ir::Node& node, LoweringContext& context) {
  switch (node.op) {
    case ir::Op::conv: return lower_conv(node, context);
    case ir::Op::conv_transpose: return lower_conv_transpose(node, context);
    case ir::Op::linear: return lower_linear(node, context);
    case ir::Op::embedding:
      // Rows of the (dequantized) table: a gather along axis 0.
      return context.define(
          node.outputs[0],
          context.builder().add_op("gather", context.output_name(node),
                                   {{"x", weight_var(node, context)},
                                    {"indices", context.input(node, 0)},
                                    {"axis", TensorValue::scalar_int32(0)}},
                                   context.output_type(node)));
    default: fail(node, "internal error: not a weighted op");
  }
}

void lower_matmul(const ir::Node& node, LoweringContext& context) {
  const Var x = context.input(node, 0);
  const Var y = context.input(node, 1);
  if (x.type().rank() < 1 || y.type().rank() < 1) fail(node, "matmul of a scalar");
  context.define(node.outputs[0],
                 context.builder().add_op("matmul", context.output_name(node),
                                          {{"x", x}, {"y", y},
                                           {"transpose_x", TensorValue::scalar_bool(false)},
                                           {"transpose_y", TensorValue::scalar_bool(false)}},
                                          context.output_type(node)));
}

}  // namespace linquant::coreml::lowering
