// Pooling and mean: max_pool, avg_pool, adaptive_avg_pool (global -> reduce_mean, exact
// divisions -> avg_pool, other sizes -> products with averaging matrices) and mean
// (reduce_mean).
#include "../../graph/adaptive_windows.h"
#include "lowering.h"

namespace linquant::coreml::lowering {
namespace {

size_t pool_dims(const ir::Node& node, const Var& x) {
  const size_t dims = node.attrs.ints("kernel_size").size();
  if (dims < 1 || dims > 3 || x.type().rank() != dims + 2) {
    fail(node, "pooling over " + std::to_string(dims) + " dimensions of a rank-" +
                   std::to_string(x.type().rank()) + " tensor needs a batch dimension "
                   "(Core ML pools [N, C, *D] inputs)");
  }
  return dims;
}

// kernel_sizes, strides, pad_type, pad: what max_pool and avg_pool share.
Args window_params(const ir::Node& node, const Var& x, size_t dims) {
  auto list = [&](const std::string& key) {
    return TensorValue::int32_list(to_int32(node, spatial_ints(node, key, dims)));
  };
  std::vector<int64_t> pad;
  for (int64_t p : spatial_ints(node, "padding", dims)) {
    pad.push_back(p);
    pad.push_back(p);
  }
  return {{"x", x},
          {"kernel_sizes", list("kernel_size")},
          {"strides", list("stride")},
          {"pad_type", TensorValue::scalar_string("custom")},
          {"pad", TensorValue::int32_list(to_int32(node, pad))}};
}

Var max_pool(const ir::Node& node, LoweringContext& context) {
  const Var x = context.input(node);
  const size_t dims = pool_dims(node, x);
  if (node.attrs.has("dilation")) {
    for (int64_t d : spatial_ints(node, "dilation", dims)) {
      if (d != 1) fail(node, "dilated max pooling has no Core ML equivalent");
    }
  }
  Args args = window_params(node, x, dims);
  args.push_back({"ceil_mode", TensorValue::scalar_bool(node.attrs.b("ceil_mode", false))});
  return context.builder().add_op("max_pool", context.output_name(node), args,
                                  context.output_type(node));
}

Var avg_pool(const ir::Node& node, LoweringContext& context) {
  const Var x = context.input(node);
  const size_t dims = pool_dims(node, x);
  if (node.attrs.has("divisor_override")) {
    fail(node, "avg_pool with divisor_override has no Core ML equivalent");
  }
  Args args = window_params(node, x, dims);
  // count_include_pad=True averages over the padded window, as Core ML's default does.
  args.push_back({"exclude_padding_from_average",
                  TensorValue::scalar_bool(!node.attrs.b("count_include_pad", true))});
  args.push_back({"ceil_mode", TensorValue::scalar_bool(node.attrs.b("ceil_mode", false))});
  return context.builder().add_op("avg_pool", context.output_name(node), args,
                                  context.output_type(node));
}

Var reduce_mean(LoweringContext& context, const std::string& name, const Var& x,
                const std::vector<int32_t>& axes, bool keep_dims, const TensorType& type) {
  return context.builder().add_op("reduce_mean", name,
                                  {{"x", x}, {"axes", TensorValue::int32_list(axes)},
                                   {"keep_dims", TensorValue::scalar_bool(keep_dims)}},
                                  type);
}

Var adaptive_avg_pool(const ir::Node& node, LoweringContext& context) {
  const Var x = context.input(node);
  const graph_export::AdaptivePooling p = graph_export::adaptive_pooling(node, x.type().shape);
  if (p.global) {
    std::vector<int32_t> axes(p.axes.begin(), p.axes.end());
    return reduce_mean(context, context.output_name(node), x, axes, true,
                       context.output_type(node));
  }
  if (!p.divides || !p.batched) {
    // Windows that overlap or differ in size (AlexNet's 1 -> 6): averaging matrices.
    std::vector<AxisMatrix> matrices;
    for (size_t d = 0; d < p.in.size(); ++d) {
      matrices.push_back(
          AxisMatrix{p.out[d], p.in[d], graph_export::adaptive_average_matrix(p.in[d], p.out[d])});
    }
    return resample_axes(node, context, x, matrices);
  }
  const std::vector<int64_t>& kernel = p.kernel;
  const size_t dims = kernel.size();
  std::vector<int64_t> pad(2 * dims, 0);
  return context.builder().add_op(
      "avg_pool", context.output_name(node),
      {{"x", x},
       {"kernel_sizes", TensorValue::int32_list(to_int32(node, kernel))},
       {"strides", TensorValue::int32_list(to_int32(node, kernel))},
       {"pad_type", TensorValue::scalar_string("custom")},
       {"pad", TensorValue::int32_list(to_int32(node, pad))},
       {"exclude_padding_from_average", TensorValue::scalar_bool(false)},
       {"ceil_mode", TensorValue::scalar_bool(false)}},
      context.output_type(node));
}

Var mean(const ir::Node& node, LoweringContext& context) {
  const Var x = context.input(node);
  const size_t rank = x.type().rank();
  std::vector<int32_t> axes;
  const std::vector<int64_t> dims =
      node.attrs.has("dims") ? node.attrs.ints("dims") : std::vector<int64_t>{};
  if (dims.empty()) {
    for (size_t d = 0; d < rank; ++d) axes.push_back(static_cast<int32_t>(d));
  } else {
    for (int64_t d : dims) axes.push_back(static_cast<int32_t>(normalize_axis(node, d, rank)));
  }
  return reduce_mean(context, context.output_name(node), x, axes, node.attrs.b("keepdim", false),
                     context.output_type(node));
}

}  // namespace

void lower_pool(const ir::Node& node, LoweringContext& context) {
  Var y;
  switch (node.op) {
    case ir::Op::max_pool: y = max_pool(node, context); break;
    case ir::Op::avg_pool: y = avg_pool(node, context); break;
    case ir::Op::adaptive_avg_pool: y = adaptive_avg_pool(node, context); break;
    case ir::Op::mean: y = mean(node, context); break;
    default: fail(node, "internal error: not a pooling op");
  }
  context.define(node.outputs[0], y);
}

}  // namespace linquant::coreml::lowering
