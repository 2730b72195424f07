// Built with -mavx2 (src/CMakeLists.txt). Lane by lane the scalar reference's arithmetic:
// _mm256_max_ps(bound, v) and _mm256_min_ps(bound, v) return v when it is NaN, as
// std::max(v, bound) / std::min(v, bound) do; the rounding mode is half to even like
// nearbyint; sign flips are XORs, as negation is.
#include "learnable_kernel_avx2.h"

#include <immintrin.h>

#include <cstdint>
#include <initializer_list>

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

namespace {

// The backward lanes from element i on; kStream writes with non-temporal stores (the outputs
// must then be 32-byte aligned at i).
template <bool kStream>
int64_t backward_lanes(const float* x, const float* grad_y, int64_t i, int64_t n, const Lanes& l,
                       const LearnableGradients& out) {
  const auto store = [](float* p, __m256 v) {
    if (kStream) {
      _mm256_stream_ps(p, v);
    } else {
      _mm256_storeu_ps(p, v);
    }
  };
  for (; i + kLanes <= n; i += kLanes) {
    const Rounded r = round_and_clamp(_mm256_loadu_ps(x + i), l);
    const __m256 gy = _mm256_loadu_ps(grad_y + i);
    const __m256 g_product = _mm256_mul_ps(gy, l.scale);
    // Ordered compares: a NaN v is out of range, and masked lanes become +0.
    const __m256 in_range = _mm256_and_ps(_mm256_cmp_ps(r.value, l.quant_min, _CMP_GE_OQ),
                                          _mm256_cmp_ps(r.value, l.quant_max, _CMP_LE_OQ));
    const __m256 gu = _mm256_and_ps(in_range, g_product);
    if (out.input) store(out.input + i, _mm256_div_ps(gu, l.scale));
    if (out.scale_from_product) {
      store(out.scale_from_product + i, _mm256_mul_ps(gy, offset_from_zero_point(r.clamped, l)));
    }
    if (out.scale_from_quotient) {
      store(out.scale_from_quotient + i,
            _mm256_mul_ps(_mm256_xor_ps(gu, l.sign), _mm256_div_ps(r.quotient, l.scale)));
    }
    if (out.zero_point_from_sum) store(out.zero_point_from_sum + i, gu);
    if (out.zero_point_from_difference) {
      store(out.zero_point_from_difference + i, _mm256_xor_ps(g_product, l.sign));
    }
  }
  if (kStream) _mm_sfence();
  return i;
}

// Elements before the outputs reach a 32-byte boundary, or -1 when they do not all reach it
// at the same element.
int64_t elements_to_alignment(const LearnableGradients& out) {
  int64_t head = -1;
  for (const float* p : {out.input, out.scale_from_product, out.scale_from_quotient,
                         out.zero_point_from_sum, out.zero_point_from_difference}) {
    if (!p) continue;
    const auto address = reinterpret_cast<uintptr_t>(p);
    if (address % sizeof(float) != 0) return -1;
    const auto h = static_cast<int64_t>((32 - address % 32) % 32 / sizeof(float));
    if (head >= 0 && h != head) return -1;
    head = h;
  }
  return head < 0 ? 0 : head;
}

// Spans longer than this stream their outputs past the caches: they are read back only by
// the sums that follow, and streaming saves reading every output line before writing it.
constexpr int64_t kStreamFrom = 1 << 16;

}  // namespace

void learnable_backward(const float* x, const float* grad_y, int64_t n, const LearnableGrid& grid,
                        const LearnableGradients& out) {
  const Lanes l = make_lanes(grid);
  int64_t i = 0;
  const int64_t head = n >= kStreamFrom ? elements_to_alignment(out) : -1;
  if (head >= 0) {
    learnable_backward_reference(x, grad_y, head, grid, out);
    i = backward_lanes<true>(x, grad_y, head, n, l, out);
  } else {
    i = backward_lanes<false>(x, grad_y, 0, n, l, out);
  }
  if (i < n) learnable_backward_reference(x + i, grad_y + i, n - i, grid, out.shifted(i));
}

}  // namespace linquant::avx2
