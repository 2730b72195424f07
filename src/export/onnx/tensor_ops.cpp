// Data movement and arithmetic: flatten and reshape (Reshape to the recorded output shape),
// permute and transpose (Transpose), all three on the input's quantization grid; cat (Concat);
// identity and dropout (no node: an exported model runs inference); add, sub, mul and div on
// two tensors or a tensor and the node's `scalar`, with torch's `alpha` and reversed forms.
#include <numeric>

#include "lowering.h"

namespace linquant::onnx::lowering {
namespace {

std::string reshape(const ir::Node& node, Context& context) {
  return context.builder().add(
      "Reshape", {context.input(node), context.int64s(context.shape(node.outputs[0]))},
      context.output_name(node));
}

std::string transpose(const ir::Node& node, Context& context) {
  const size_t rank = context.shape(node.inputs.at(0)).size();
  std::vector<int64_t> perm;
  if (node.op == ir::Op::permute) {
    const std::vector<int64_t>& dims = node.attrs.ints("dims");
    if (dims.size() != rank) fail(node, "permute dims do not match the input rank");
    for (int64_t d : dims) perm.push_back(normalize_axis(node, d, rank));
  } else {
    perm.resize(rank);
    std::iota(perm.begin(), perm.end(), 0);
    std::swap(perm[static_cast<size_t>(normalize_axis(node, node.attrs.i("dim0"), rank))],
              perm[static_cast<size_t>(normalize_axis(node, node.attrs.i("dim1"), rank))]);
  }
  return context.builder().add("Transpose", {context.input(node)}, context.output_name(node),
                               {{"perm", perm}});
}

std::string concat(const ir::Node& node, Context& context) {
  if (node.inputs.empty()) fail(node, "cat of no tensors");
  std::vector<std::string> values;
  for (size_t k = 0; k < node.inputs.size(); ++k) values.push_back(context.input(node, k));
  const size_t rank = context.shape(node.inputs[0]).size();
  return context.builder().add("Concat", values, context.output_name(node),
                               {{"axis", normalize_axis(node, node.attrs.i("dim"), rank)}});
}

const char* onnx_type(const ir::Node& node) {
  switch (node.op) {
    case ir::Op::add:
      return "Add";
    case ir::Op::sub:
      return "Sub";
    case ir::Op::mul:
      return "Mul";
    case ir::Op::div:
      return "Div";
    default:
      fail(node, "internal error: not an elementwise op");
  }
}

}  // namespace

void lower_shape_op(const ir::Node& node, Context& context) {
  switch (node.op) {
    case ir::Op::flatten:
    case ir::Op::reshape:
      return define_on_input_grid(node, reshape(node, context), context);
    case ir::Op::permute:
    case ir::Op::transpose:
      return define_on_input_grid(node, transpose(node, context), context);
    case ir::Op::cat:
      return context.define(node.outputs[0], concat(node, context));
    default:
      fail(node, "internal error: not a shape op");
  }
}

void lower_passthrough(const ir::Node& node, Context& context) {
  const ir::ValueId in = node.inputs.at(0);
  if (const QuantizedValue* q = context.quantized(in)) {
    context.define_quantized(node.outputs.at(0), *q);
  } else {
    context.define(node.outputs.at(0), context.input(node));
  }
}

void lower_elementwise(const ir::Node& node, Context& context) {
  if (!node.attrs.s("rounding_mode", "").empty()) {
    fail(node, "division with rounding_mode '" + node.attrs.s("rounding_mode") +
                   "' has no ONNX export yet (only true division)");
  }
  const bool has_alpha = node.attrs.has("alpha") && number_attr(node, "alpha") != 1.0;
  if (has_alpha && node.op != ir::Op::add && node.op != ir::Op::sub) {
    fail(node, "'alpha' is only defined for add and sub");
  }
  const auto alpha = static_cast<float>(has_alpha ? number_attr(node, "alpha") : 1.0);
  OnnxBuilder& b = context.builder();
  const std::string x = context.input(node, 0);
  const std::string type = onnx_type(node);
  std::string y;
  if (node.inputs.size() == 2) {
    std::string other = context.input(node, 1);
    if (has_alpha) {
      // torch: x + alpha * y, x - alpha * y
      other =
          b.add("Mul", {other, context.float_scalar(alpha)}, context.helper_name(node, "alpha"));
    }
    y = b.add(type, {x, other}, context.output_name(node));
  } else {
    if (node.inputs.size() != 1 || !node.attrs.has("scalar")) {
      fail(node, "needs two inputs, or one input and a 'scalar' attribute");
    }
    const auto s = static_cast<float>(number_attr(node, "scalar"));
    if (!node.attrs.b("scalar_first", false)) {
      // x + alpha * s and x - alpha * s: the scalar absorbs alpha (computed as torch does,
      // in double, then rounded once).
      y = b.add(
          type,
          {x, context.float_scalar(static_cast<float>(
                  number_attr(node, "scalar") * (has_alpha ? number_attr(node, "alpha") : 1.0)))},
          context.output_name(node));
    } else if (node.op == ir::Op::sub) {
      // torch.rsub: s - alpha * x
      const std::string scaled = has_alpha ? b.add("Mul", {x, context.float_scalar(alpha)},
                                                   context.helper_name(node, "alpha"))
                                           : x;
      y = b.add("Sub", {context.float_scalar(s), scaled}, context.output_name(node));
    } else {
      y = b.add(type, {context.float_scalar(s), x}, context.output_name(node));
    }
  }
  context.define(node.outputs[0], y);
}

}  // namespace linquant::onnx::lowering
