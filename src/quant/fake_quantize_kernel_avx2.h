// AVX2 versions of the scalar reference kernels (fake_quantize_kernel.h). Same operations in
// the same order on 8 lanes, so every output bit and mask byte equals the reference; tails
// shorter than a vector go through the reference itself. Only call these after checking that
// the CPU has AVX2 (kernel_dispatch.cpp does).
#pragma once

#include <cstdint>

#include "linquant/quant/qparams.h"

namespace linquant::avx2 {

void fake_quantize(const float* x, float* y, bool* mask, int64_t n, QParam qparam,
                   int64_t quant_min, int64_t quant_max);

bool finite_min_max(const float* x, int64_t n, float* min_val, float* max_val);

// out = grad * float(mask): ATen's `grad * mask` for a bool mask, NaN * 0 included.
void masked_gradient(const float* grad, const bool* mask, float* out, int64_t n);

void relu_fake_quantize(const float* x, float* y, uint8_t* state, int64_t n, float cap,
                        QParam qparam, int64_t quant_min, int64_t quant_max);
bool relu_finite_min_max(const float* x, int64_t n, float cap, float* min_val, float* max_val);
void relu_masked_gradient(const float* grad, const uint8_t* state, float* out, int64_t n);

}  // namespace linquant::avx2
