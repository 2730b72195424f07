// Element-wise ops computed a block at a time, for the kernels that fuse the op into the
// activation quantizer after it: each block of the op's output is consumed while it is in L1,
// so the output is never written to memory or read back. Each op here gives the same bits as
// ATen's kernel for it.
#pragma once

#include <algorithm>
#include <cstdint>

namespace linquant {

// Small enough to stay in L1 beside the kernel's own streams.
constexpr int64_t kElementBlock = 2048;

// out[i] = a[i] + b[i] for i in [0, n): one IEEE addition, as ATen's add(a, b) with alpha 1
// (its vector path, fmadd(b, 1, a), rounds once too).
void add_span(const float* a, const float* b, float* out, int64_t n);

// out[i] = x * min(max(x + 3, 0), 6) / 6 for x = x[i], as ATen's hardswish computes it (its
// vector and scalar paths agree; NaN stays NaN, -inf gives NaN).
void hardswish_span(const float* x, float* out, int64_t n);

// out[i] = x * min(max(x + 3, 0), 6): hardswish before its division by 6, rounded as in
// hardswish_span. Division by 6 is monotonic and keeps finiteness, so the finite minimum and
// maximum of hardswish are those of this divided by 6, and an observer needs no division.
void hardswish_numerator_span(const float* x, float* out, int64_t n);

// body(values, offset, count) for consecutive blocks over [0, n), where fill(offset, count,
// values) has written the op's output for elements [offset, offset + count) into values.
template <typename Fill, typename Body>
void for_each_block(int64_t n, const Fill& fill, const Body& body) {
  alignas(64) float values[kElementBlock];
  for (int64_t offset = 0; offset < n; offset += kElementBlock) {
    const int64_t count = std::min(kElementBlock, n - offset);
    fill(offset, count, values);
    body(static_cast<const float*>(values), offset, count);
  }
}

// for_each_block over a + b.
template <typename Body>
void for_each_sum_block(const float* a, const float* b, int64_t n, const Body& body) {
  for_each_block(
      n,
      [&](int64_t offset, int64_t count, float* out) {
        add_span(a + offset, b + offset, out, count);
      },
      body);
}

// for_each_block over hardswish(x).
template <typename Body>
void for_each_hardswish_block(const float* x, int64_t n, const Body& body) {
  for_each_block(
      n, [&](int64_t offset, int64_t count, float* out) { hardswish_span(x + offset, out, count); },
      body);
}

// for_each_block over hardswish_numerator_span(x).
template <typename Body>
void for_each_hardswish_numerator_block(const float* x, int64_t n, const Body& body) {
  for_each_block(
      n,
      [&](int64_t offset, int64_t count, float* out) {
        hardswish_numerator_span(x + offset, out, count);
      },
      body);
}

}  // namespace linquant
