// Activations and (log-)softmax: the ONNX operator where the opset has one (HardSwish from 14,
// Gelu from 20), otherwise the same function from elementary operators.
#include <cmath>

#include "lowering.h"

namespace linquant::onnx::lowering {
namespace {

int64_t softmax_axis(const ir::Node& node, Context& context) {
  return normalize_axis(node, node.attrs.i("dim"), context.shape(node.inputs.at(0)).size());
}

// x * f(x) for the gated activations.
std::string times_input(Context& context, const ir::Node& node, const std::string& x,
                        const std::string& gate) {
  return context.builder().add("Mul", {x, gate}, context.output_name(node));
}

std::string gelu(const ir::Node& node, Context& context, const std::string& x) {
  const std::string approximate = node.attrs.s("approximate", "none");
  if (approximate != "none" && approximate != "tanh") {
    fail(node, "gelu approximation '" + approximate + "' is not 'none' or 'tanh'");
  }
  OnnxBuilder& b = context.builder();
  if (context.opset() >= 20) {
    return b.add("Gelu", {x}, context.output_name(node), {{"approximate", approximate}});
  }
  auto h = [&](const std::string& suffix) { return context.helper_name(node, suffix); };
  std::string inner;
  if (approximate == "none") {
    // 0.5 * x * (1 + erf(x / sqrt(2)))
    inner =
        b.add("Erf",
              {b.add("Mul", {x, context.float_scalar(static_cast<float>(M_SQRT1_2))}, h("scaled"))},
              h("erf"));
  } else {
    // 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
    const std::string cube = b.add("Mul", {b.add("Mul", {x, x}, h("square")), x}, h("cube"));
    const std::string sum =
        b.add("Add", {x, b.add("Mul", {cube, context.float_scalar(0.044715f)}, h("cubic_term"))},
              h("sum"));
    inner =
        b.add("Tanh",
              {b.add("Mul", {sum, context.float_scalar(static_cast<float>(std::sqrt(2.0 / M_PI)))},
                     h("scaled"))},
              h("tanh"));
  }
  const std::string one_plus = b.add("Add", {inner, context.float_scalar(1.0f)}, h("one_plus"));
  const std::string half_x = b.add("Mul", {x, context.float_scalar(0.5f)}, h("half_x"));
  return b.add("Mul", {half_x, one_plus}, context.output_name(node));
}

}  // namespace

void lower_activation(const ir::Node& node, Context& context) {
  const std::string x = context.input(node);
  const std::string name = context.output_name(node);
  OnnxBuilder& b = context.builder();
  std::string y;
  switch (node.op) {
    case ir::Op::relu:
      y = b.add("Relu", {x}, name);
      break;
    case ir::Op::relu6:
      y = b.add("Clip", {x, context.float_scalar(0.0f), context.float_scalar(6.0f)}, name);
      break;
    case ir::Op::leaky_relu:
      y = b.add("LeakyRelu", {x}, name,
                {{"alpha", static_cast<float>(number_attr(node, "negative_slope"))}});
      break;
    case ir::Op::sigmoid:
      y = b.add("Sigmoid", {x}, name);
      break;
    case ir::Op::tanh:
      y = b.add("Tanh", {x}, name);
      break;
    case ir::Op::silu:
      y = times_input(context, node, x, b.add("Sigmoid", {x}, context.helper_name(node, "gate")));
      break;
    case ir::Op::elu:
      y = b.add("Elu", {x}, name, {{"alpha", static_cast<float>(number_attr(node, "alpha"))}});
      break;
    case ir::Op::hardsigmoid:
      // relu6(x + 3) / 6 == clip(x / 6 + 0.5, 0, 1)
      y = b.add("HardSigmoid", {x}, name, {{"alpha", 1.0f / 6.0f}, {"beta", 0.5f}});
      break;
    case ir::Op::hardswish:
      if (context.opset() >= 14) {
        y = b.add("HardSwish", {x}, name);
      } else {
        y = times_input(context, node, x,
                        b.add("HardSigmoid", {x}, context.helper_name(node, "gate"),
                              {{"alpha", 1.0f / 6.0f}, {"beta", 0.5f}}));
      }
      break;
    case ir::Op::gelu:
      y = gelu(node, context, x);
      break;
    case ir::Op::softmax:
      y = b.add("Softmax", {x}, name, {{"axis", softmax_axis(node, context)}});
      break;
    case ir::Op::log_softmax:
      y = b.add("LogSoftmax", {x}, name, {{"axis", softmax_axis(node, context)}});
      break;
    default:
      fail(node, "internal error: not an activation");
  }
  context.define(node.outputs[0], y);
}

}  // namespace linquant::onnx::lowering
