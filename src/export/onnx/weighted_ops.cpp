// conv, conv_transpose, linear, embedding and matmul. Quantized weights are integer
// initializers behind a DequantizeLinear (per channel along the finalized axis); a bias whose
// op reads a quantized input with a quantized weight is an int32 initializer on the
// accumulator's grid (scale x_scale * w_scale[c], zero point 0), the form ONNX Runtime needs
// to fuse DequantizeLinear -> Conv/Gemm -> QuantizeLinear into one integer kernel.
#include <ATen/ATen.h>

#include <cmath>
#include <optional>

#include "../graph/grid_weight.h"
#include "linquant/ir/attribute_keys.h"
#include "lowering.h"

namespace linquant::onnx::lowering {
namespace {

using graph_export::GridWeight;

bool has_weight_grid(const ir::Node& node) { return node.attrs.has(ir::attr::weight_scale); }

// Integer kernels (ONNX Runtime's QLinearConv, QGemm, ...) take one weight zero point for all
// channels and refuse per-channel ones that differ, at run time. Such weights (affine
// quint8/quint4 per channel) are written dequantized, as the float values they stand for.
bool uniform_zero_point(const ir::Node& node, const Context& context) {
  const at::Tensor zp = context.model_tensor(node, ir::attr::weight_zero_point);
  return zp.numel() <= 1 || at::equal(zp, zp.flatten()[0].expand_as(zp));
}

bool is_quantized(const ir::Node& node, const Context& context) {
  return has_weight_grid(node) && uniform_zero_point(node, context);
}

ElementType weight_type(const ir::Node& node, const GridWeight& grid) {
  const bool is_signed = node.attrs.i(ir::attr::weight_quant_min) < 0 || grid.is_signed();
  if (grid.bits == 4) return is_signed ? ElementType::Int4 : ElementType::UInt4;
  return is_signed ? ElementType::Int8 : ElementType::UInt8;
}

// The weight as ONNX reads it: float initializer, or integers behind a DequantizeLinear.
std::string weight_value(const ir::Node& node, Context& context) {
  const std::string& tensor_name = node.attrs.s(ir::attr::weight);
  auto& cache = context.tensor_values();
  if (const auto it = cache.find(tensor_name); it != cache.end()) return it->second;
  std::string value;
  if (!is_quantized(node, context)) {
    const at::Tensor& w = context.model_tensor(node, ir::attr::weight);
    value =
        context.builder().add_floats(tensor_name, w.sizes().vec(), graph_export::float_vector(w));
  } else {
    GridWeight grid = graph_export::read_grid_weight(node, context.graph());
    ElementType type = weight_type(node, grid);
    if (type == ElementType::Int8 && context.uint8_weights()) {
      for (int32_t& q : grid.q) q += 128;
      for (int32_t& z : grid.zero_point) z += 128;
      type = ElementType::UInt8;
    }
    const std::vector<int64_t> param_dims =
        grid.axis >= 0 ? std::vector<int64_t>{static_cast<int64_t>(grid.scale.size())}
                       : std::vector<int64_t>{};
    const std::string q =
        context.builder().add_small_ints(tensor_name + "_quantized", type, grid.shape, grid.q);
    const std::string scale =
        context.builder().add_floats(tensor_name + "_scale", param_dims, grid.scale);
    const std::string zero_point = context.builder().add_small_ints(
        tensor_name + "_zero_point", type, param_dims, grid.zero_point);
    std::vector<Attribute> attributes;
    if (grid.axis >= 0) attributes.push_back({"axis", grid.axis});
    value = context.builder().add("DequantizeLinear", {q, scale, zero_point},
                                  tensor_name + "_dequantized", attributes);
  }
  cache.emplace(tensor_name, value);
  return value;
}

// The accumulator grid of a quantized op on a quantized input: x_scale * w_scale[c] in float32,
// as the integer kernels compute it. Empty when either side is float or the bias does not fit.
std::vector<float> bias_scales(const ir::Node& node, Context& context, const at::Tensor& bias) {
  const QuantizedValue* x = context.quantized(node.inputs.at(0));
  if (!context.integer_bias() || !x || !is_quantized(node, context) ||
      node.attrs.i(ir::attr::weight_bits) != 8) {
    return {};
  }
  const int64_t axis = node.attrs.i(ir::attr::weight_axis);
  // Only the output-channel axis lines up with the bias (conv: 0; linear: 0).
  if (axis > 0 || (axis == 0 && node.op == ir::Op::conv_transpose)) return {};
  const std::vector<float> w_scale =
      graph_export::float_vector(context.model_tensor(node, ir::attr::weight_scale));
  const auto x_scale = static_cast<float>(x->qparams.scale);
  const int64_t channels = bias.numel();
  std::vector<float> scales;
  for (int64_t c = 0; c < channels; ++c) {
    scales.push_back(x_scale * w_scale[w_scale.size() == 1 ? 0 : static_cast<size_t>(c)]);
  }
  const std::vector<float> b = graph_export::float_vector(bias);
  for (size_t c = 0; c < b.size(); ++c) {
    const double q = std::nearbyint(static_cast<double>(b[c]) / static_cast<double>(scales[c]));
    if (!(scales[c] > 0.0f) || !std::isfinite(q) || std::fabs(q) > 2147483647.0) return {};
  }
  return scales;
}

std::optional<std::string> bias_value(const ir::Node& node, Context& context) {
  if (!node.attrs.has(ir::attr::bias)) return std::nullopt;
  const std::string& tensor_name = node.attrs.s(ir::attr::bias);
  const at::Tensor& bias = context.model_tensor(node, ir::attr::bias);
  const std::vector<float> scales = bias_scales(node, context, bias);
  if (scales.empty()) {
    // Float bias: shared by every node calling the module.
    auto& cache = context.tensor_values();
    if (const auto it = cache.find(tensor_name); it != cache.end()) return it->second;
    const std::string value = context.builder().add_floats(tensor_name, bias.sizes().vec(),
                                                           graph_export::float_vector(bias));
    cache.emplace(tensor_name, value);
    return value;
  }
  // The integer bias depends on the input's scale: one per node.
  const std::vector<float> b = graph_export::float_vector(bias);
  std::vector<int32_t> q;
  for (size_t c = 0; c < b.size(); ++c) {
    q.push_back(static_cast<int32_t>(
        std::nearbyint(static_cast<double>(b[c]) / static_cast<double>(scales[c]))));
  }
  const std::vector<int64_t> dims = {static_cast<int64_t>(b.size())};
  const std::string base = context.helper_name(node, "bias");
  OnnxBuilder& builder = context.builder();
  return builder.add(
      "DequantizeLinear",
      {builder.add_int32s(base + "_quantized", dims, q),
       builder.add_floats(base + "_scale", dims, scales),
       builder.add_int32s(base + "_zero_point", dims, std::vector<int32_t>(b.size(), 0))},
      base + "_dequantized", {{"axis", int64_t{0}}});
}

size_t spatial_dims(const ir::Node& node, const Context& context) {
  const at::Tensor& w = context.model_tensor(node, ir::attr::weight);
  if (w.dim() < 3 || w.dim() > 5) {
    fail(node,
         "weights of rank " + std::to_string(w.dim()) + " are not a 1-, 2- or 3-D convolution");
  }
  return static_cast<size_t>(w.dim() - 2);
}

void check_padding_mode(const ir::Node& node) {
  const std::string mode = node.attrs.s("padding_mode", "zeros");
  if (mode != "zeros") {
    fail(node, "padding_mode '" + mode + "' has no ONNX Conv equivalent (only zeros)");
  }
}

// ONNX pads: all "begin" sizes, then all "end" sizes.
std::vector<int64_t> symmetric_pads(const std::vector<int64_t>& pad) {
  std::vector<int64_t> pads = pad;
  pads.insert(pads.end(), pad.begin(), pad.end());
  return pads;
}

void lower_conv(const ir::Node& node, Context& context) {
  check_padding_mode(node);
  const size_t dims = spatial_dims(node, context);
  std::vector<int64_t> pad(dims, 0);
  if (!node.attrs.has("padding")) fail(node, "attribute 'padding' is missing");
  const ir::AttributeValue& padding = node.attrs.all().at("padding");
  if (const auto* text = std::get_if<std::string>(&padding)) {
    if (*text != "valid") {
      fail(node, "padding '" + *text + "' is not supported; give explicit padding sizes");
    }
  } else {
    pad = spatial_ints(node, "padding", dims, 0);
  }
  const std::string x = context.input(node);
  std::vector<std::string> inputs = {x, weight_value(node, context)};
  if (auto bias = bias_value(node, context)) inputs.push_back(*bias);
  const at::Tensor& w = context.model_tensor(node, ir::attr::weight);
  std::vector<int64_t> kernel(w.sizes().begin() + 2, w.sizes().end());
  context.define(node.outputs[0],
                 context.builder().add("Conv", inputs, context.output_name(node),
                                       {{"kernel_shape", kernel},
                                        {"strides", spatial_ints(node, "stride", dims, 1)},
                                        {"pads", symmetric_pads(pad)},
                                        {"dilations", spatial_ints(node, "dilation", dims, 1)},
                                        {"group", node.attrs.i("groups", 1)}}));
}

void lower_conv_transpose(const ir::Node& node, Context& context) {
  check_padding_mode(node);
  const size_t dims = spatial_dims(node, context);
  const std::string x = context.input(node);
  std::vector<std::string> inputs = {x, weight_value(node, context)};
  if (auto bias = bias_value(node, context)) inputs.push_back(*bias);
  const at::Tensor& w = context.model_tensor(node, ir::attr::weight);
  std::vector<int64_t> kernel(w.sizes().begin() + 2, w.sizes().end());
  context.define(
      node.outputs[0],
      context.builder().add("ConvTranspose", inputs, context.output_name(node),
                            {{"kernel_shape", kernel},
                             {"strides", spatial_ints(node, "stride", dims, 1)},
                             {"pads", symmetric_pads(spatial_ints(node, "padding", dims, 0))},
                             {"output_padding", spatial_ints(node, "output_padding", dims, 0)},
                             {"dilations", spatial_ints(node, "dilation", dims, 1)},
                             {"group", node.attrs.i("groups", 1)}}));
}

void lower_linear(const ir::Node& node, Context& context) {
  const std::string x = context.input(node);
  const std::string w = weight_value(node, context);
  const std::optional<std::string> bias = bias_value(node, context);
  const size_t rank = context.shape(node.inputs.at(0)).size();
  if (rank == 2) {
    // Gemm(x, W, b) with W transposed: the form ONNX Runtime turns into an integer GEMM.
    std::vector<std::string> inputs = {x, w};
    if (bias) inputs.push_back(*bias);
    context.define(node.outputs[0], context.builder().add("Gemm", inputs, context.output_name(node),
                                                          {{"transB", int64_t{1}}}));
    return;
  }
  const std::string wt =
      context.builder().add("Transpose", {w}, context.helper_name(node, "weight_t"),
                            {{"perm", std::vector<int64_t>{1, 0}}});
  const std::string product = context.builder().add(
      "MatMul", {x, wt}, bias ? context.helper_name(node, "matmul") : context.output_name(node));
  context.define(
      node.outputs[0],
      bias ? context.builder().add("Add", {product, *bias}, context.output_name(node)) : product);
}

}  // namespace

void lower_weighted(const ir::Node& node, Context& context) {
  switch (node.op) {
    case ir::Op::conv:
      return lower_conv(node, context);
    case ir::Op::conv_transpose:
      return lower_conv_transpose(node, context);
    case ir::Op::linear:
      return lower_linear(node, context);
    case ir::Op::embedding: {
      // Rows of the (dequantized) table.
      const std::string table = weight_value(node, context);
      const std::string indices = context.input(node, 0);
      return context.define(node.outputs[0], context.builder().add("Gather", {table, indices},
                                                                   context.output_name(node),
                                                                   {{"axis", int64_t{0}}}));
    }
    default:
      fail(node, "internal error: not a weighted op");
  }
}

void lower_matmul(const ir::Node& node, Context& context) {
  const std::string x = context.input(node, 0);
  const std::string y = context.input(node, 1);
  context.define(node.outputs[0],
                 context.builder().add("MatMul", {x, y}, context.output_name(node)));
}

}  // namespace linquant::onnx::lowering
