// Built with -mavx2 (src/CMakeLists.txt). Lane by lane the scalar reference's arithmetic:
// _mm256_max_ps(bound, v) and _mm256_min_ps(bound, v) return v when it is NaN, as
// std::max(v, bound) / std::min(v, bound) do; the rounding mode is half to even like
// nearbyint; sign flips are XORs, as negation is.
#include "learnable_kernel_avx2.h"

#include <immintrin.h>

namespace linquant::avx2 {
namespace {

constexpr int64_t kLanes = 8;

struct Lanes {
  __m256 scale, zero_point, quant_min, quant_max, sign;
  bool with_zero_point;
};

Lanes make_lanes(const LearnableGrid& grid) {
  return {_mm256_set1_ps(grid.scale),     _mm256_set1_ps(grid.zero_point),
          _mm256_set1_ps(grid.quant_min), _mm256_set1_ps(grid.quant_max),
          _mm256_set1_ps(-0.0f),          grid.with_zero_point};
}

struct Rounded {
  __m256 quotient, value, clamped;
};

inline Rounded round_and_clamp(__m256 x, const Lanes& l) {
  const __m256 q = _mm256_div_ps(x, l.scale);
  const __m256 u = l.with_zero_point ? _mm256_add_ps(q, l.zero_point) : q;
  const __m256 r = _mm256_round_ps(u, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 v = _mm256_add_ps(_mm256_sub_ps(r, u), u);
  const __m256 c = _mm256_min_ps(l.quant_max, _mm256_max_ps(l.quant_min, v));
  return {q, v, c};
}

inline __m256 offset_from_zero_point(__m256 c, const Lanes& l) {
  return l.with_zero_point ? _mm256_sub_ps(c, l.zero_point) : c;
}

}  // namespace

void learnable_forward(const float* x, float* y, int64_t n, const LearnableGrid& grid) {
  const Lanes l = make_lanes(grid);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Rounded r = round_and_clamp(_mm256_loadu_ps(x + i), l);
    _mm256_storeu_ps(y + i, _mm256_mul_ps(offset_from_zero_point(r.clamped, l), l.scale));
  }
  if (i < n) learnable_forward_reference(x + i, y + i, n - i, grid);
}

void learnable_backward(const float* x, const float* grad_y, int64_t n, const LearnableGrid& grid,
                        const LearnableGradients& out) {
  const Lanes l = make_lanes(grid);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Rounded r = round_and_clamp(_mm256_loadu_ps(x + i), l);
    const __m256 gy = _mm256_loadu_ps(grad_y + i);
    const __m256 g_product = _mm256_mul_ps(gy, l.scale);
    // Ordered compares: a NaN v is out of range, and masked lanes become +0.
    const __m256 in_range = _mm256_and_ps(_mm256_cmp_ps(r.value, l.quant_min, _CMP_GE_OQ),
                                          _mm256_cmp_ps(r.value, l.quant_max, _CMP_LE_OQ));
    const __m256 gu = _mm256_and_ps(in_range, g_product);
    if (out.input) _mm256_storeu_ps(out.input + i, _mm256_div_ps(gu, l.scale));
    if (out.scale_from_product) {
      _mm256_storeu_ps(out.scale_from_product + i,
                       _mm256_mul_ps(gy, offset_from_zero_point(r.clamped, l)));
    }
    if (out.scale_from_quotient) {
      _mm256_storeu_ps(
          out.scale_from_quotient + i,
          _mm256_mul_ps(_mm256_xor_ps(gu, l.sign), _mm256_div_ps(r.quotient, l.scale)));
    }
    if (out.zero_point_from_sum) _mm256_storeu_ps(out.zero_point_from_sum + i, gu);
    if (out.zero_point_from_difference) {
      _mm256_storeu_ps(out.zero_point_from_difference + i, _mm256_xor_ps(g_product, l.sign));
    }
  }
  if (i < n) learnable_backward_reference(x + i, grad_y + i, n - i, grid, out.shifted(i));
}

}  // namespace linquant::avx2
