// Scalar reference kernels. The clamp is done on the rounded float, which equals PyTorch's
// int64 clamp for every finite in-range value and saturates (instead of wrapping) outside.
#include "linquant/quant/fake_quantize_kernel.h"

#include <algorithm>
#include <cmath>

namespace linquant {
namespace {

inline float fake_quantize_one(float x, float inv_scale, QParam qparam, float qmin, float qmax,
                               bool* mask) {
  // zero_point + nearbyint(x * inv_scale) in float32, as ATen's kernel computes it.
  const float q = static_cast<float>(qparam.zero_point) + std::nearbyint(x * inv_scale);
  if (mask) *mask = (qmin <= q) && (q <= qmax);
  // std::max/std::min keep NaN when it is the first argument, so NaN stays NaN.
  const float clamped = std::min(std::max(q, qmin), qmax);
  return (clamped - static_cast<float>(qparam.zero_point)) * qparam.scale;
}

// ReLU, capped unless cap is NaN (std::min(v, NaN) is v); NaN stays NaN as in ATen.
inline float relu_one(float v, float cap) {
  return std::isnan(v) ? v : std::min(std::max(v, 0.0f), cap);
}

// Minimum and maximum of the finite values of f(x[i]); false (outputs untouched) if none.
template <typename F>
bool finite_min_max_of(const float* x, int64_t n, const F& f, float* min_val, float* max_val) {
  float lo = INFINITY;
  float hi = -INFINITY;
  bool any = false;
  for (int64_t i = 0; i < n; ++i) {
    const float v = f(x[i]);
    if (!std::isfinite(v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    any = true;
  }
  if (any) {
    *min_val = lo;
    *max_val = hi;
  }
  return any;
}

}  // namespace

void fake_quantize_reference(const float* x, float* y, bool* mask, int64_t n, QParam qparam,
                             int64_t quant_min, int64_t quant_max) {
  const float inv_scale = 1.0f / qparam.scale;
  const auto qmin = static_cast<float>(quant_min);
  const auto qmax = static_cast<float>(quant_max);
  for (int64_t i = 0; i < n; ++i) {
    y[i] = fake_quantize_one(x[i], inv_scale, qparam, qmin, qmax, mask ? mask + i : nullptr);
  }
}

void fake_quantize_per_channel_reference(const float* x, float* y, bool* mask, int64_t outer,
                                         int64_t channels, int64_t inner, const QParam* qparams,
                                         int64_t quant_min, int64_t quant_max) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t offset = (o * channels + c) * inner;
      fake_quantize_reference(x + offset, y + offset, mask ? mask + offset : nullptr, inner,
                              qparams[c], quant_min, quant_max);
    }
  }
}

void masked_gradient_reference(const float* grad, const bool* mask, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = grad[i] * static_cast<float>(mask[i]);
}

void relu_fake_quantize_reference(const float* x, float* y, uint8_t* state, int64_t n,
                                  float cap, QParam qparam, int64_t quant_min,
                                  int64_t quant_max) {
  const float inv_scale = 1.0f / qparam.scale;
  const auto qmin = static_cast<float>(quant_min);
  const auto qmax = static_cast<float>(quant_max);
  const bool capped = !std::isnan(cap);
  for (int64_t i = 0; i < n; ++i) {
    bool in_range = false;
    y[i] = fake_quantize_one(relu_one(x[i], cap), inv_scale, qparam, qmin, qmax, &in_range);
    // ATen's gradients: ReLU's (threshold_backward) is zero where relu(x) <= 0 and passes NaN;
    // hardtanh's passes only 0 < x < cap, so not NaN.
    const bool passes = capped ? (x[i] > 0.0f && x[i] < cap) : !(x[i] <= 0.0f);
    state[i] = passes ? (in_range ? 1 : 2) : 0;
  }
}

void relu_masked_gradient_reference(const float* grad, const uint8_t* state, float* out,
                                    int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    out[i] = state[i] == 0 ? 0.0f : grad[i] * static_cast<float>(state[i] == 1);
  }
}

bool relu_finite_min_max(const float* x, int64_t n, float cap, float* min_val, float* max_val) {
  return finite_min_max_of(x, n, [cap](float v) { return relu_one(v, cap); }, min_val, max_val);
}

bool finite_min_max(const float* x, int64_t n, float* min_val, float* max_val) {
  return finite_min_max_of(x, n, [](float v) { return v; }, min_val, max_val);
}

}  // namespace linquant
