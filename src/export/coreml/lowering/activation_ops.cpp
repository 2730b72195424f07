// Activations and (log-)softmax. Each is the MIL op coremltools' torch frontend emits, except
// log_softmax: x - reduce_log_sum_exp(x) instead of log(softmax(x)), which in fp16 turns
// probabilities below 6e-8 into -inf.
#include "lowering.h"

namespace linquant::coreml::lowering {
namespace {

// One MIL op, x plus constant parameters, named after the node's output.
Var unary(LoweringContext& context, const std::string& type, Args params, const Var& x,
          const std::string& name) {
  Args args = {{"x", x}};
  for (auto& param : params) args.push_back(std::move(param));
  return context.builder().add_op(type, name, args,
                                  TensorType{context.float_dtype(), x.type().shape});
}

int32_t axis_param(const ir::Node& node, const Var& x) {
  return static_cast<int32_t>(normalize_axis(node, node.attrs.i("dim"), x.type().rank()));
}

}  // namespace

void lower_activation(const ir::Node& node, LoweringContext& context) {
  const Var x = context.input(node);
  const std::string name = context.output_name(node);
  auto scalar = [&](double v) { return context.float_scalar(v); };
  Var y;
  switch (node.op) {
    case ir::Op::relu: y = unary(context, "relu", {}, x, name); break;
    case ir::Op::relu6:
      y = unary(context, "clip", {{"alpha", scalar(0.0)}, {"beta", scalar(6.0)}}, x, name);
      break;
    case ir::Op::leaky_relu:
      y = unary(context, "leaky_relu", {{"alpha", scalar(number_attr(node, "negative_slope"))}},
                x, name);
      break;
    case ir::Op::sigmoid: y = unary(context, "sigmoid", {}, x, name); break;
    case ir::Op::tanh: y = unary(context, "tanh", {}, x, name); break;
    case ir::Op::silu: y = unary(context, "silu", {}, x, name); break;
    case ir::Op::elu:
      y = unary(context, "elu", {{"alpha", scalar(number_attr(node, "alpha"))}}, x, name);
      break;
    case ir::Op::hardsigmoid:
      // relu6(x + 3) / 6 == clip(x / 6 + 0.5, 0, 1)
      y = unary(context, "sigmoid_hard", {{"alpha", scalar(1.0 / 6.0)}, {"beta", scalar(0.5)}},
                x, name);
      break;
    case ir::Op::hardswish: {
      // coremltools' form: w = x where x >= -3 else 0; hardswish = w * sigmoid_hard(w).
      const Var w = unary(context, "thresholded_relu", {{"alpha", scalar(-3.0)}}, x,
                          context.helper_name(node, "thresholded"));
      const Var gate = unary(context, "sigmoid_hard",
                             {{"alpha", scalar(1.0 / 6.0)}, {"beta", scalar(0.5)}}, w,
                             context.helper_name(node, "gate"));
      y = context.builder().add_op("mul", name, {{"x", w}, {"y", gate}}, context.output_type(node));
      break;
    }
    case ir::Op::gelu: {
      const std::string approximate = node.attrs.s("approximate", "none");
      if (approximate != "none" && approximate != "tanh") {
        fail(node, "gelu approximation '" + approximate + "' is not 'none' or 'tanh'");
      }
      y = unary(context, "gelu",
                {{"mode", TensorValue::scalar_string(approximate == "tanh" ? "TANH_APPROXIMATION"
                                                                           : "EXACT")}},
                x, name);
      break;
    }
    case ir::Op::softmax:
      y = unary(context, "softmax", {{"axis", TensorValue::scalar_int32(axis_param(node, x))}},
                x, name);
      break;
    case ir::Op::log_softmax: {
      const Var lse = context.builder().add_op(
          "reduce_log_sum_exp", context.helper_name(node, "logsumexp"),
          {{"x", x}, {"axes", TensorValue::int32_list({axis_param(node, x)})},
           {"keep_dims", TensorValue::scalar_bool(true)}},
          [&] {
            TensorType t{context.float_dtype(), x.type().shape};
            t.shape[static_cast<size_t>(axis_param(node, x))] = 1;
            return t;
          }());
      y = context.builder().add_op("sub", name, {{"x", x}, {"y", lse}}, context.output_type(node));
      break;
    }
    default: fail(node, "internal error: not an activation");
  }
  context.define(node.outputs[0], y);
}

}  // namespace linquant::coreml::lowering
