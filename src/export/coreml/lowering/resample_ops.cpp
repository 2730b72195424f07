// Resampling along the last axes: the products with per-axis matrices that adaptive average
// pooling and bilinear interpolation share, nearest-neighbour upsampling as gathers, and
// pixel_shuffle. Indices and weights follow ATen's CPU kernels (upsample nearest: floor(i *
// scale); bilinear: half-pixel source positions clamped at 0 unless align_corners), so the
// program reproduces PyTorch for any size, not only integer factors.
#include <cmath>
#include <string>
#include <vector>

#include "lowering.h"

namespace linquant::coreml::lowering {

Var resample_axes(const ir::Node& node, LoweringContext& context, Var x,
                  const std::vector<AxisMatrix>& matrices) {
  const size_t rank = x.type().rank();
  if (matrices.empty() || matrices.size() > 2 || rank < matrices.size()) {
    fail(node, "resampling of " + std::to_string(matrices.size()) +
                   " axes has no Core ML mapping (one or two are mapped)");
  }
  for (size_t d = matrices.size(); d-- > 0;) {
    const AxisMatrix& m = matrices[d];
    const size_t axis = rank - matrices.size() + d;
    TensorType type = x.type();
    type.shape[axis] = m.out;
    const bool final_op = d == 0;
    const std::string name = final_op ? context.output_name(node)
                                      : context.helper_name(node, "axis" + std::to_string(axis));
    const TensorValue matrix = context.float_values({m.out, m.in}, m.values);
    // x @ M^T (transpose_y) for the last axis, M @ x for the one before it; Core ML's matmul
    // broadcasts the rank-2 matrix over the leading dimensions.
    const Args args = axis == rank - 1 ? Args{{"x", x},
                                              {"y", matrix},
                                              {"transpose_x", TensorValue::scalar_bool(false)},
                                              {"transpose_y", TensorValue::scalar_bool(true)}}
                                       : Args{{"x", matrix},
                                              {"y", x},
                                              {"transpose_x", TensorValue::scalar_bool(false)},
                                              {"transpose_y", TensorValue::scalar_bool(false)}};
    x = context.builder().add_op("matmul", name, args, final_op ? context.output_type(node) : type);
  }
  return x;
}

namespace {

// ATen's area_pixel_compute_scale: the source step per output element, from the given scale
// factor when there is one (recompute_scale_factor unset), else from the sizes.
float source_scale(int64_t in, int64_t out, bool align_corners, const c10::IValue& factors,
                   size_t axis_index) {
  if (align_corners) {
    return out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f;
  }
  if (factors.isDoubleList()) {
    const auto list = factors.toDoubleList();
    if (axis_index < list.size() && list.get(axis_index) > 0) {
      return static_cast<float>(1.0 / list.get(axis_index));
    }
  }
  return static_cast<float>(in) / static_cast<float>(out);
}

// The interpolation weights of one axis: row i mixes the two source elements around ATen's
// source position of output i.
AxisMatrix bilinear_matrix(int64_t in, int64_t out, bool align_corners, float scale) {
  AxisMatrix m{out, in, std::vector<float>(static_cast<size_t>(out * in), 0.0f)};
  for (int64_t i = 0; i < out; ++i) {
    float source = align_corners ? scale * static_cast<float>(i)
                                 : scale * (static_cast<float>(i) + 0.5f) - 0.5f;
    if (source < 0.0f) source = 0.0f;
    const auto low = static_cast<int64_t>(source);
    const int64_t high = low < in - 1 ? low + 1 : low;
    const float lambda = source - static_cast<float>(low);
    m.values[static_cast<size_t>(i * in + low)] += 1.0f - lambda;
    m.values[static_cast<size_t>(i * in + high)] += lambda;
  }
  return m;
}

}  // namespace

// upsample_bilinear2d(input, output_size?, align_corners, scale_factors?).
void lower_upsample_bilinear(const ir::Node& node, LoweringContext& c) {
  const Var x = c.input(node, 0);
  const Shape& out = c.shape(node.outputs.at(0));
  const size_t rank = x.type().rank();
  if (rank != 4) fail(node, "bilinear upsampling of a rank-" + std::to_string(rank) + " tensor");
  const bool align_corners = c.constant(node, 2).toBool();
  const c10::IValue& factors = c.constant(node, 3);
  std::vector<AxisMatrix> matrices;
  for (size_t d = 0; d < 2; ++d) {
    const int64_t in = x.type().shape[2 + d];
    const int64_t size = out[2 + d];
    matrices.push_back(
        bilinear_matrix(in, size, align_corners, source_scale(in, size, align_corners, factors, d)));
  }
  c.define(node.outputs.at(0), resample_axes(node, c, x, matrices));
}

// upsample_nearest{1,2,3}d(input, output_size?, scale_factors?): one gather per axis with
// ATen's nearest_idx, min(floor(i * scale), in - 1).
void lower_upsample_nearest(const ir::Node& node, LoweringContext& c) {
  Var x = c.input(node, 0);
  const Shape& out = c.shape(node.outputs.at(0));
  const size_t rank = x.type().rank();
  const c10::IValue& factors = c.constant(node, 2);
  const size_t spatial = rank - 2;
  for (size_t d = 0; d < spatial; ++d) {
    const size_t axis = 2 + d;
    const int64_t in = x.type().shape[axis];
    const int64_t size = out[axis];
    if (in == size) continue;
    const float scale = source_scale(in, size, false, factors, d);
    std::vector<int32_t> indices;
    for (int64_t i = 0; i < size; ++i) {
      const auto source = static_cast<int64_t>(std::floor(static_cast<float>(i) * scale));
      indices.push_back(static_cast<int32_t>(std::min(source, in - 1)));
    }
    TensorType type = x.type();
    type.shape[axis] = size;
    x = c.builder().add_op("gather", c.helper_name(node, "axis" + std::to_string(axis)),
                           {{"x", x},
                            {"indices", TensorValue::int32_list(indices)},
                            {"axis", TensorValue::scalar_int32(static_cast<int32_t>(axis))}},
                           type);
  }
  // The output keeps the graph value's name.
  c.define(node.outputs.at(0), c.builder().add_op("identity", c.output_name(node), {{"x", x}},
                                                  c.output_type(node)));
}

void lower_pixel_shuffle(const ir::Node& node, LoweringContext& c) {
  const Var x = c.input(node, 0);
  if (x.type().rank() != 4) fail(node, "pixel_shuffle of a tensor that is not [N, C, H, W]");
  const auto factor = static_cast<int32_t>(c.constant_int(node, 1));
  c.define(node.outputs.at(0),
           c.builder().add_op("pixel_shuffle", c.output_name(node),
                              {{"x", x}, {"upscale_factor", TensorValue::scalar_int32(factor)}},
                              c.output_type(node)));
}

}  // namespace linquant::coreml::lowering
