// Scalar reference of the learnable kernels: each line is one ATen operator of the composite
// (learnable_fake_quantize.cpp), evaluated in float32 in the same order.
#include "linquant/quant/learnable_kernel.h"

#include <algorithm>
#include <cmath>

namespace linquant {
namespace {

// q, v and c of the header's formulas.
struct Rounded {
  float quotient, value, clamped;
};

inline Rounded round_and_clamp(float x, const LearnableGrid& grid) {
  const float q = x / grid.scale;
  const float u = grid.with_zero_point ? q + grid.zero_point : q;
  // ATen's round is nearbyint (half to even); (r - u) + u is the straight-through round's
  // value, which is r except where the subtraction rounds (infinite u gives NaN, as in ATen).
  const float v = (std::nearbyint(u) - u) + u;
  // std::max(v, bound) and std::min keep a NaN v, as ATen's clamp does.
  const float c = std::min(std::max(v, grid.quant_min), grid.quant_max);
  return {q, v, c};
}

}  // namespace

LearnableGradients LearnableGradients::shifted(int64_t offset) const {
  const auto at = [offset](float* p) { return p ? p + offset : nullptr; };
  return {at(input), at(scale_from_product), at(scale_from_quotient), at(zero_point_from_sum),
          at(zero_point_from_difference)};
}

void learnable_forward_reference(const float* x, float* y, int64_t n, const LearnableGrid& grid) {
  for (int64_t i = 0; i < n; ++i) {
    const float c = round_and_clamp(x[i], grid).clamped;
    y[i] = grid.with_zero_point ? (c - grid.zero_point) * grid.scale : c * grid.scale;
  }
}

void learnable_backward_reference(const float* x, const float* grad_y, int64_t n,
                                  const LearnableGrid& grid, const LearnableGradients& out) {
  for (int64_t i = 0; i < n; ++i) {
    const Rounded r = round_and_clamp(x[i], grid);
    const float gy = grad_y[i];
    const float g_product = gy * grid.scale;
    // The clamp's backward is where(quant_min <= v <= quant_max, grad, +0).
    const bool in_range = r.value >= grid.quant_min && r.value <= grid.quant_max;
    const float gu = in_range ? g_product : 0.0f;
    if (out.input) out.input[i] = gu / grid.scale;
    if (out.scale_from_product) {
      out.scale_from_product[i] =
          gy * (grid.with_zero_point ? r.clamped - grid.zero_point : r.clamped);
    }
    if (out.scale_from_quotient) out.scale_from_quotient[i] = -gu * (r.quotient / grid.scale);
    if (out.zero_point_from_sum) out.zero_point_from_sum[i] = gu;
    if (out.zero_point_from_difference) out.zero_point_from_difference[i] = -g_product;
  }
}

}  // namespace linquant
