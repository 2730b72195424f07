// Which implementation runs the element-wise quantization kernels: the AVX2 one when the CPU
// has AVX2 (checked once, at run time), otherwise the scalar reference. Both give the same
// bits (tests/quant/kernel_equivalence_test.cpp). LINQUANT_KERNELS=scalar in the environment
// forces the reference, which is how the test suite replays the golden sweep on both.
//
// These run on one thread; callers split work across LibTorch's intra-op threads.
#pragma once

#include <cstdint>

#include "linquant/quant/learnable_kernel.h"
#include "linquant/quant/qparams.h"

namespace linquant {

enum class KernelIsa { scalar, avx2 };

const char* to_string(KernelIsa isa);
bool kernel_isa_available(KernelIsa isa);
KernelIsa kernel_isa();
// Throws QuantError when the CPU lacks the instruction set.
void set_kernel_isa(KernelIsa isa);

// As fake_quantize_reference / finite_min_max (fake_quantize_kernel.h), dispatched.
void fake_quantize_span(const float* x, float* y, bool* mask, int64_t n, QParam qparam,
                        int64_t quant_min, int64_t quant_max);
bool finite_min_max_span(const float* x, int64_t n, float* min_val, float* max_val);
// out = grad * float(mask): the straight-through gradient.
void masked_gradient_span(const float* grad, const bool* mask, float* out, int64_t n);

// As relu_fake_quantize_reference / relu_finite_min_max / relu_masked_gradient_reference.
void relu_fake_quantize_span(const float* x, float* y, uint8_t* state, int64_t n, float cap,
                             QParam qparam, int64_t quant_min, int64_t quant_max);
bool relu_finite_min_max_span(const float* x, int64_t n, float cap, float* min_val,
                              float* max_val);
void relu_masked_gradient_span(const float* grad, const uint8_t* state, float* out, int64_t n);

// As learnable_forward_reference / learnable_backward_reference (learnable_kernel.h).
void learnable_forward_span(const float* x, float* y, int64_t n, const LearnableGrid& grid);
void learnable_backward_span(const float* x, const float* grad_y, int64_t n,
                             const LearnableGrid& grid, const LearnableGradients& out);

}  // namespace linquant
