// Plain fake-quantize and min/max kernels on raw float buffers: the scalar reference
// every faster path is checked against. No LibTorch types here.
//
//   q    = zero_point + round_half_even(x * (1 / scale))      (float32)
//   y    = (clamp(q, quant_min, quant_max) - zero_point) * scale
//   mask = quant_min <= q <= quant_max                         (straight-through gradient)
//
// Non-finite inputs (a documented linquant choice, see docs/numerics.md): NaN stays NaN
// with mask 0; +inf and -inf saturate to the top and bottom of the grid with mask 0.
#pragma once

#include <cstdint>
#include <limits>

#include "linquant/quant/qparams.h"

namespace linquant {

// Elements [0, n) with one (scale, zero point). mask may be null.
void fake_quantize_reference(const float* x, float* y, bool* mask, int64_t n, QParam qparam,
                             int64_t quant_min, int64_t quant_max);

// x viewed as [outer, channels, inner], with one (scale, zero point) per channel.
void fake_quantize_per_channel_reference(const float* x, float* y, bool* mask, int64_t outer,
                                         int64_t channels, int64_t inner, const QParam* qparams,
                                         int64_t quant_min, int64_t quant_max);

// out = grad * float(mask): the straight-through gradient, as ATen's `grad * mask`.
void masked_gradient_reference(const float* grad, const bool* mask, float* out, int64_t n);

// The ReLU a fused kernel applies: `cap` is kReluUncapped (NaN) for ReLU, or the top of
// hardtanh(x, 0, cap) for capped ones (ReLU6: cap = 6).
constexpr float kReluUncapped = std::numeric_limits<float>::quiet_NaN();

// ReLU followed by fake quantize in one pass (an activation quantizer right after a ReLU).
// y = fake_quantize(relu(x)) with relu(NaN) = NaN as in ATen. state[i] carries both
// gradients: 0 where the ReLU passes no gradient (x <= 0; capped: not 0 < x < cap, NaN
// included, as ATen's hardtanh backward), 1 where relu(x) is on the grid, 2 where it is not
// (saturated or NaN).
void relu_fake_quantize_reference(const float* x, float* y, uint8_t* state, int64_t n,
                                  float cap, QParam qparam, int64_t quant_min,
                                  int64_t quant_max);

// out = state == 0 ? +0 : grad * float(state == 1): the fake-quant gradient, then ReLU's
// (ATen's threshold_backward writes +0 where the ReLU output is <= 0).
void relu_masked_gradient_reference(const float* grad, const uint8_t* state, float* out,
                                    int64_t n);

// The observer's view of relu(x): minimum and maximum of relu(v) over the values where it is
// finite (NaN left out; -inf counts as 0; +inf is left out, or counts as the cap); false when
// there is none.
bool relu_finite_min_max(const float* x, int64_t n, float cap, float* min_val, float* max_val);

// Minimum and maximum of the finite values; false when there is none (then min/max untouched).
bool finite_min_max(const float* x, int64_t n, float* min_val, float* max_val);

}  // namespace linquant
