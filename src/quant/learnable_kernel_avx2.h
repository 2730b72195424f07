// AVX2 versions of the learnable kernels (linquant/quant/learnable_kernel.h): the scalar
// reference's operations on 8 lanes, so every bit agrees; tails go through the reference.
// Only call these after checking that the CPU has AVX2 (kernel_dispatch.cpp does).
#pragma once

#include <cstdint>

#include "linquant/quant/learnable_kernel.h"

namespace linquant::avx2 {

void learnable_forward(const float* x, float* y, int64_t n, const LearnableGrid& grid);
void learnable_backward(const float* x, const float* grad_y, int64_t n, const LearnableGrid& grid,
                        const LearnableGradients& out);

}  // namespace linquant::avx2
