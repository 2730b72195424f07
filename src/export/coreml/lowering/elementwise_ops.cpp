// add, sub, mul and div (MIL real_div) on two tensors (numpy broadcasting, as in MIL) or on a
// tensor and the node's `scalar`, with torch's `alpha` and reversed-operand forms.
#include "lowering.h"

namespace linquant::coreml::lowering {
namespace {

std::string mil_type(const ir::Node& node) {
  switch (node.op) {
    case ir::Op::add: return "add";
    case ir::Op::sub: return "sub";
    case ir::Op::mul: return "mul";
    case ir::Op::div: return "real_div";
    default: fail(node, "internal error: not an elementwise op");
  }
}

}  // namespace

void lower_elementwise(const ir::Node& node, LoweringContext& context) {
  if (!node.attrs.s("rounding_mode", "").empty()) {
    fail(node, "division with rounding_mode '" + node.attrs.s("rounding_mode") +
                   "' is not supported by the Core ML export (only true division)");
  }
  const bool has_alpha = node.attrs.has("alpha") && number_attr(node, "alpha") != 1.0;
  if (has_alpha && node.op != ir::Op::add && node.op != ir::Op::sub) {
    fail(node, "'alpha' is only defined for add and sub");
  }
  const double alpha = has_alpha ? number_attr(node, "alpha") : 1.0;
  const Var x = context.input(node, 0);
  const TensorType out_type = context.output_type(node);
  const std::string type = mil_type(node);

  if (node.inputs.size() == 2) {
    Var y = context.input(node, 1);
    if (has_alpha) {
      // torch: x + alpha * y, x - alpha * y
      y = context.builder().add_op("mul", context.helper_name(node, "alpha"),
                                   {{"x", y}, {"y", context.float_scalar(alpha)}}, y.type());
    }
    context.define(node.outputs[0], context.builder().add_op(type, context.output_name(node),
                                                             {{"x", x}, {"y", y}}, out_type));
    return;
  }
  if (node.inputs.size() != 1 || !node.attrs.has("scalar")) {
    fail(node, "needs two inputs, or one input and a 'scalar' attribute");
  }
  const double s = number_attr(node, "scalar");
  const bool scalar_first = node.attrs.b("scalar_first", false);
  Var y;
  if (!scalar_first) {
    // x + alpha * s and x - alpha * s: the scalar absorbs alpha.
    y = context.builder().add_op(type, context.output_name(node),
                                 {{"x", x}, {"y", context.float_scalar(s * alpha)}}, out_type);
  } else if (node.op == ir::Op::sub) {
    // torch.rsub: s - alpha * x
    Var scaled = x;
    if (has_alpha) {
      scaled = context.builder().add_op("mul", context.helper_name(node, "alpha"),
                                        {{"x", x}, {"y", context.float_scalar(alpha)}}, x.type());
    }
    y = context.builder().add_op("sub", context.output_name(node),
                                 {{"x", context.float_scalar(s)}, {"y", scaled}}, out_type);
  } else {
    // s + x, s * x, s / x
    y = context.builder().add_op(type, context.output_name(node),
                                 {{"x", context.float_scalar(s)}, {"y", x}}, out_type);
  }
  context.define(node.outputs[0], y);
}

}  // namespace linquant::coreml::lowering
