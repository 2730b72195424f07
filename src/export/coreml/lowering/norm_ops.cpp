// batch_norm (standalone, with running statistics: inference form) and layer_norm.
#include "linquant/ir/attribute_keys.h"
#include "lowering.h"

namespace linquant::coreml::lowering {
namespace {

// gamma and beta from the optional `weight` and `bias` tensors.
void add_affine(const ir::Node& node, const LoweringContext& context, Args& args) {
  if (node.attrs.has(ir::attr::weight)) {
    args.push_back({"gamma", context.float_tensor(context.model_tensor(node, ir::attr::weight))});
  }
  if (node.attrs.has(ir::attr::bias)) {
    args.push_back({"beta", context.float_tensor(context.model_tensor(node, ir::attr::bias))});
  }
}

Var batch_norm(const ir::Node& node, LoweringContext& context) {
  const Var x = context.input(node);
  const size_t rank = x.type().rank();
  if (rank < 2 || rank > 5) {
    fail(node, "batch_norm of a rank-" + std::to_string(rank) + " tensor (Core ML: rank 2 to 5)");
  }
  auto args_for = [&](const Var& input) {
    Args args = {
        {"x", input},
        {"mean", context.float_tensor(context.model_tensor(node, ir::attr::running_mean))},
        {"variance", context.float_tensor(context.model_tensor(node, ir::attr::running_var))}};
    add_affine(node, context, args);
    args.push_back({"epsilon", context.float_scalar(number_attr(node, "eps"))});
    return args;
  };
  if (rank >= 3) {
    return context.builder().add_op("batch_norm", context.output_name(node), args_for(x),
                                    context.output_type(node));
  }
  // MIL batch_norm wants [N, C, *D] with at least one spatial dimension: BatchNorm1d on
  // [N, C] runs as [N, C, 1].
  Shape expanded = x.type().shape;
  expanded.push_back(1);
  const TensorType expanded_type{context.float_dtype(), expanded};
  const Var x3 = context.builder().add_op(
      "reshape", context.helper_name(node, "expanded"),
      {{"x", x}, {"shape", TensorValue::int32_list(to_int32(node, expanded))}}, expanded_type);
  const Var y3 = context.builder().add_op("batch_norm", context.helper_name(node, "normalized"),
                                          args_for(x3), expanded_type);
  return context.builder().add_op(
      "reshape", context.output_name(node),
      {{"x", y3}, {"shape", TensorValue::int32_list(to_int32(node, x.type().shape))}},
      context.output_type(node));
}

Var layer_norm(const ir::Node& node, LoweringContext& context) {
  const Var x = context.input(node);
  const size_t rank = x.type().rank();
  const std::vector<int64_t>& normalized = node.attrs.ints("normalized_shape");
  if (normalized.empty() || normalized.size() > rank) {
    fail(node, "normalized_shape does not fit a rank-" + std::to_string(rank) + " input");
  }
  std::vector<int32_t> axes;
  for (size_t d = rank - normalized.size(); d < rank; ++d) {
    if (x.type().shape[d] != normalized[d - (rank - normalized.size())]) {
      fail(node, "normalized_shape does not match the input's trailing dimensions");
    }
    axes.push_back(static_cast<int32_t>(d));
  }
  Args args = {{"x", x}, {"axes", TensorValue::int32_list(axes)}};
  add_affine(node, context, args);
  args.push_back({"epsilon", context.float_scalar(number_attr(node, "eps"))});
  return context.builder().add_op("layer_norm", context.output_name(node), args,
                                  context.output_type(node));
}

}  // namespace

// aten::group_norm(input, num_groups, weight?, bias?, eps, cudnn_enabled): the statistics of
// each group's channels and positions on [N, G, C/G * rest] (reduce_mean, rsqrt with epsilon),
// then the per-channel affine; an identity names the output.
void lower_group_norm(const ir::Node& node, LoweringContext& c) {
  const Var x = c.input(node, 0);
  const Shape& shape = x.type().shape;
  const int64_t groups = c.constant_int(node, 1);
  if (shape.size() < 2 || groups < 1 || shape[1] % groups != 0) {
    fail(node, "group_norm with " + std::to_string(groups) + " groups of a " +
                   x.type().to_string() + " tensor");
  }
  int64_t per_group = shape[1] / groups;
  for (size_t d = 2; d < shape.size(); ++d) per_group *= shape[d];
  auto op = [&](const char* type, const char* suffix, const Args& args, const Shape& out) {
    return c.builder().add_op(type, c.helper_name(node, suffix), args,
                              TensorType{c.float_dtype(), out});
  };
  auto ints = [&](const Shape& s) {
    return TensorValue::int32_list(to_int32(node, std::vector<int64_t>(s.begin(), s.end())));
  };
  const Shape grouped{shape[0], groups, per_group};
  const Shape statistic{shape[0], groups, 1};
  auto mean = [&](const Var& v, const char* suffix) {
    return op("reduce_mean", suffix,
              {{"x", v}, {"axes", TensorValue::int32_list({2})},
               {"keep_dims", TensorValue::scalar_bool(true)}},
              statistic);
  };
  const Var g = op("reshape", "grouped", {{"x", x}, {"shape", ints(grouped)}}, grouped);
  const Var centered = op("sub", "centered", {{"x", g}, {"y", mean(g, "mean")}}, grouped);
  const Var variance =
      mean(op("mul", "squared", {{"x", centered}, {"y", centered}}, grouped), "variance");
  const Var inverse = op("rsqrt", "inverse_std",
                         {{"x", variance}, {"epsilon", c.float_scalar(c.constant_double(node, 4))}},
                         statistic);
  Var y = op("reshape", "normalized",
             {{"x", op("mul", "scaled", {{"x", centered}, {"y", inverse}}, grouped)},
              {"shape", ints(shape)}},
             shape);
  // weight and bias [C] broadcast as [C, 1, ..., 1] against [N, C, *].
  Shape per_channel(shape.size() - 1, 1);
  per_channel[0] = shape[1];
  for (const auto& [k, type] : {std::pair<size_t, const char*>{2, "mul"}, {3, "add"}}) {
    if (!c.is_constant(node.inputs.at(k))) fail(node, "group_norm affine computed from the input");
    const c10::IValue& value = c.constant(node, k);
    if (value.isNone()) continue;
    const TensorValue affine = c.float_tensor(value.toTensor().reshape(per_channel));
    y = op(type, k == 2 ? "weighted" : "biased", {{"x", y}, {"y", affine}}, shape);
  }
  c.define(node.outputs.at(0), c.builder().add_op("identity", c.output_name(node), {{"x", y}},
                                                  c.output_type(node)));
}

void lower_normalization(const ir::Node& node, LoweringContext& context) {
  switch (node.op) {
    case ir::Op::batch_norm: return context.define(node.outputs[0], batch_norm(node, context));
    case ir::Op::layer_norm: return context.define(node.outputs[0], layer_norm(node, context));
    default: fail(node, "internal error: not a normalization op");
  }
}

}  // namespace linquant::coreml::lowering
