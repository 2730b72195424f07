// Pooling and mean: MaxPool (on the input's quantization grid), AveragePool,
// adaptive_avg_pool as GlobalAveragePool or an AveragePool of exact windows, mean as ReduceMean.
#include "../graph/adaptive_windows.h"
#include "lowering.h"

namespace linquant::onnx::lowering {
namespace {

size_t pool_dims(const ir::Node& node, Context& context) {
  const size_t dims = node.attrs.ints("kernel_size").size();
  const size_t rank = context.shape(node.inputs.at(0)).size();
  if (dims < 1 || dims > 3 || rank != dims + 2) {
    fail(node, "pooling over " + std::to_string(dims) + " dimensions of a rank-" +
                   std::to_string(rank) +
                   " tensor needs a batch dimension "
                   "(ONNX pools [N, C, *D] inputs)");
  }
  return dims;
}

std::vector<Attribute> window_attributes(const ir::Node& node, size_t dims) {
  std::vector<int64_t> pads = spatial_ints(node, "padding", dims, 0);
  const std::vector<int64_t> begin = pads;
  pads.insert(pads.end(), begin.begin(), begin.end());
  const std::vector<int64_t> kernel = spatial_ints(node, "kernel_size", dims, 1);
  // torch's stride defaults to the kernel size.
  std::vector<int64_t> stride = spatial_ints(node, "stride", dims, 0);
  if (stride.empty() || stride[0] == 0) stride = kernel;
  return {{"kernel_shape", kernel},
          {"strides", stride},
          {"pads", pads},
          {"ceil_mode", int64_t{node.attrs.b("ceil_mode", false) ? 1 : 0}}};
}

void max_pool(const ir::Node& node, Context& context) {
  const size_t dims = pool_dims(node, context);
  std::vector<Attribute> attributes = window_attributes(node, dims);
  attributes.push_back({"dilations", spatial_ints(node, "dilation", dims, 1)});
  const std::string y = context.builder().add("MaxPool", {context.input(node)},
                                              context.output_name(node), attributes);
  define_on_input_grid(node, y, context);
}

void avg_pool(const ir::Node& node, Context& context) {
  const size_t dims = pool_dims(node, context);
  if (node.attrs.has("divisor_override")) {
    fail(node, "avg_pool with divisor_override has no ONNX equivalent");
  }
  std::vector<Attribute> attributes = window_attributes(node, dims);
  attributes.push_back(
      {"count_include_pad", int64_t{node.attrs.b("count_include_pad", true) ? 1 : 0}});
  context.define(node.outputs[0], context.builder().add("AveragePool", {context.input(node)},
                                                        context.output_name(node), attributes));
}

void adaptive_avg_pool(const ir::Node& node, Context& context) {
  const graph_export::AdaptivePooling p =
      graph_export::adaptive_pooling(node, context.shape(node.inputs.at(0)));
  const size_t dims = p.out.size();
  const std::string x = context.input(node);
  std::string y;
  if (p.global && p.batched) {
    y = context.builder().add("GlobalAveragePool", {x}, context.output_name(node));
  } else if (p.global) {
    y = reduce_mean(context, x, p.axes, true, context.output_name(node));
  } else if (p.divides && p.batched) {
    y = context.builder().add("AveragePool", {x}, context.output_name(node),
                              {{"kernel_shape", p.kernel}, {"strides", p.kernel}});
  } else {
    // Windows that overlap or differ in size (AlexNet's 1 -> 6): one averaging matrix per
    // pooled axis, applied with MatMul (the last axis: x @ A^T; the one before: A @ x).
    y = x;
    for (size_t d = dims; d-- > 0;) {
      const int64_t in = p.in[d];
      const int64_t out = p.out[d];
      const std::vector<float> a = graph_export::adaptive_average_matrix(in, out);
      const bool last = d == dims - 1;
      std::vector<float> values = a;
      std::vector<int64_t> matrix_dims = {out, in};
      if (last) {  // A^T: [in, out]
        for (int64_t i = 0; i < out; ++i) {
          for (int64_t j = 0; j < in; ++j)
            values[static_cast<size_t>(j * out + i)] = a[static_cast<size_t>(i * in + j)];
        }
        matrix_dims = {in, out};
      } else if (d != dims - 2) {
        fail(node,
             "adaptive average pooling of more than two axes to uneven windows has no "
             "ONNX export yet");
      }
      const std::string matrix = context.builder().add_floats(
          context.helper_name(node, "window_matrix"), matrix_dims, values);
      const std::string name =
          d == 0 ? context.output_name(node) : context.helper_name(node, "pooled_last_axis");
      y = context.builder().add(
          "MatMul",
          last ? std::vector<std::string>{y, matrix} : std::vector<std::string>{matrix, y}, name);
    }
  }
  context.define(node.outputs[0], y);
}

void mean(const ir::Node& node, Context& context) {
  const size_t rank = context.shape(node.inputs.at(0)).size();
  std::vector<int64_t> axes;
  const std::vector<int64_t> dims =
      node.attrs.has("dims") ? node.attrs.ints("dims") : std::vector<int64_t>{};
  if (dims.empty()) {
    for (size_t d = 0; d < rank; ++d) axes.push_back(static_cast<int64_t>(d));
  } else {
    for (int64_t d : dims) axes.push_back(normalize_axis(node, d, rank));
  }
  context.define(node.outputs[0],
                 reduce_mean(context, context.input(node), axes, node.attrs.b("keepdim", false),
                             context.output_name(node)));
}

}  // namespace

std::string reduce_mean(Context& context, const std::string& x, const std::vector<int64_t>& axes,
                        bool keep_dims, const std::string& name) {
  const Attribute keep{"keepdims", int64_t{keep_dims ? 1 : 0}};
  if (context.opset() >= 18) {
    return context.builder().add("ReduceMean", {x, context.int64s(axes)}, name, {keep});
  }
  return context.builder().add("ReduceMean", {x}, name, {{"axes", axes}, keep});
}

void lower_pool(const ir::Node& node, Context& context) {
  switch (node.op) {
    case ir::Op::max_pool:
      return max_pool(node, context);
    case ir::Op::avg_pool:
      return avg_pool(node, context);
    case ir::Op::adaptive_avg_pool:
      return adaptive_avg_pool(node, context);
    case ir::Op::mean:
      return mean(node, context);
    default:
      fail(node, "internal error: not a pooling op");
  }
}

}  // namespace linquant::onnx::lowering
