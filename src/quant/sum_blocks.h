// a + b a block at a time, for the kernels that fuse a residual add into the activation
// quantizer after it: each block of the sum is consumed while it is in L1, so the sum is never
// written to memory or read back. One IEEE addition per element, the same bits as ATen's
// add(a, b) with alpha 1 (its vector path, fmadd(b, 1, a), rounds once too).
#pragma once

#include <algorithm>
#include <cstdint>

namespace linquant {

// Small enough to stay in L1 beside the kernel's own streams.
constexpr int64_t kSumBlock = 2048;

// sum[i] = a[i] + b[i] for i in [0, n).
void add_span(const float* a, const float* b, float* sum, int64_t n);

// body(sum, offset, count) for consecutive blocks of a + b over [0, n): sum holds
// a[offset + i] + b[offset + i] for i in [0, count).
template <typename Body>
void for_each_sum_block(const float* a, const float* b, int64_t n, const Body& body) {
  alignas(64) float sum[kSumBlock];
  for (int64_t offset = 0; offset < n; offset += kSumBlock) {
    const int64_t count = std::min(kSumBlock, n - offset);
    add_span(a + offset, b + offset, sum, count);
    body(static_cast<const float*>(sum), offset, count);
  }
}

}  // namespace linquant
