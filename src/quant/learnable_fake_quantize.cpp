// LSQ / LSQ+ fake quantization as coremltools' LearnableFakeQuantize computes it (reference
// 4.2), op for op with ATen's own operators so that autograd produces the same gradients, sums
// included, as the reference written with torch's Python operators
// (tests/quant/learnable/make_learnable_golden.py). The fused kernels
// (learnable_fake_quantize_function.cpp) reproduce this composite bit for bit.
#include <ATen/ATen.h>

#include <cmath>

#include "learnable_arithmetic.h"
#include "linquant/quant/fake_quantize.h"

namespace linquant {
namespace learnable {

at::Tensor along_axis(const at::Tensor& values, int64_t axis, int64_t rank) {
  if (axis < 0) return values;
  std::vector<int64_t> view(static_cast<size_t>(rank), 1);
  view.at(static_cast<size_t>(axis)) = -1;
  return values.reshape(view);
}

at::Tensor passthrough(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point,
                       int64_t axis) {
  return x + 0 * along_axis(scale, axis, x.dim()) + 0 * along_axis(zero_point, axis, x.dim());
}

double gradient_scale(const at::Tensor& x, int64_t axis, int64_t quant_max) {
  const double per_scale =
      static_cast<double>(x.numel()) / static_cast<double>(axis >= 0 ? x.size(axis) : 1);
  return 1.0 / std::sqrt(per_scale * static_cast<double>(quant_max));
}

at::Tensor scale_gradient(const at::Tensor& v, double g) {
  const at::Tensor scaled = v * g;
  return (v - scaled).detach() + scaled;
}

at::Tensor round_pass(const at::Tensor& v) { return (at::round(v) - v).detach() + v; }

}  // namespace learnable

at::Tensor fake_quantize_by_division(const at::Tensor& x, const at::Tensor& scale,
                                     const at::Tensor& zero_point, int64_t axis, int64_t quant_min,
                                     int64_t quant_max) {
  const at::Tensor s = learnable::along_axis(scale, axis, x.dim());
  const at::Tensor z = learnable::along_axis(zero_point, axis, x.dim()).to(at::kFloat);
  // A zero point of 0 changes nothing here: x / s + 0 and t - 0 are x / s and t.
  const at::Tensor t = at::clamp(at::round(x / s + z), quant_min, quant_max);
  // + 0 turns the -0 of values that round to 0 from below into +0, the value the grid's
  // integers give back ((0 - zero point) * scale), and changes nothing else.
  return (t - z) * s + 0.0;
}

at::Tensor learnable_fake_quantize_composite(const at::Tensor& x, const at::Tensor& scale,
                                             const at::Tensor& zero_point, int64_t axis,
                                             int64_t quant_min, int64_t quant_max,
                                             QuantizationScheme scheme) {
  if (x.numel() == 0) return learnable::passthrough(x, scale, zero_point, axis);
  const double g = learnable::gradient_scale(x, axis, quant_max);
  const bool symmetric = scheme == QuantizationScheme::symmetric;
  const at::Tensor s = learnable::scale_gradient(learnable::along_axis(scale, axis, x.dim()), g);
  at::Tensor z = learnable::round_pass(learnable::along_axis(zero_point, axis, x.dim()));
  if (!symmetric) z = learnable::scale_gradient(z, g);
  const bool with_zero_point = learnable::zero_point_enters(scheme, quant_min);
  at::Tensor t = with_zero_point ? x / s + z : x / s;
  t = at::clamp(learnable::round_pass(t), quant_min, quant_max);
  return with_zero_point ? (t - z) * s : t * s;
}

}  // namespace linquant
