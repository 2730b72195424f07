// Element-wise kernels of the learnable (LSQ) fake quantization, scalar reference: the
// arithmetic of learnable_fake_quantize's composite of ATen operators, one element at a time,
// so that a fused pass reproduces every bit of it. No LibTorch types here.
//
// The caller hands over the parameters as the composite uses them (after the gradient-scaling
// and straight-through-rounding identities, which can move their last bit), one pair per span:
//   q = x / scale;  u = q + zero_point (only when the zero point enters)
//   v = (round_half_even(u) - u) + u           the straight-through round's value
//   c = min(max(v, quant_min), quant_max)
//   y = (c - zero_point) * scale               (c * scale without the zero point)
#pragma once

#include <cstdint>

namespace linquant {

struct LearnableGrid {
  float scale = 1.0f;
  float zero_point = 0.0f;
  bool with_zero_point = false;
  float quant_min = 0.0f;
  float quant_max = 0.0f;
};

// Where the backward pass writes, n floats each; a null pointer skips that output. With
// gy the output's gradient and gu = (quant_min <= v <= quant_max ? gy * scale : +0), the
// gradient that reaches u through the clamp and the straight-through round:
struct LearnableGradients {
  float* input = nullptr;                       // gu / scale
  float* scale_from_product = nullptr;          // gy * (c - zero_point)  (y = (c - z) * scale)
  float* scale_from_quotient = nullptr;         // -gu * (q / scale)      (q = x / scale)
  float* zero_point_from_sum = nullptr;         // gu                     (u = q + z)
  float* zero_point_from_difference = nullptr;  // -(gy * scale)      (c - z)

  // The same outputs starting `offset` elements further on.
  LearnableGradients shifted(int64_t offset) const;
};

void learnable_forward_reference(const float* x, float* y, int64_t n, const LearnableGrid& grid);

// Autograd's per-element terms: summed over each parameter's slice (ATen's sum_to) they are
// the composite's parameter gradients before the gradient scale.
void learnable_backward_reference(const float* x, const float* grad_y, int64_t n,
                                  const LearnableGrid& grid, const LearnableGradients& out);

}  // namespace linquant
