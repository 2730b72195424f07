// Built with -mavx2 (src/CMakeLists.txt); nothing here runs unless the dispatcher saw AVX2 on
// this CPU. Lane by lane the arithmetic is the scalar reference's:
//   q = zp + round_half_even(x * inv_scale); y = (min(max(q, qmin), qmax) - zp) * scale
// _mm256_max_ps(a, b) is (a > b ? a : b) and _mm256_min_ps(a, b) is (a < b ? a : b), which
// with the bound as a and q as b is what std::max(q, qmin)/std::min(q, qmax) return, NaN
// included (a NaN q falls through to q).
#include "fake_quantize_kernel_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "linquant/quant/fake_quantize_kernel.h"

namespace linquant::avx2 {
namespace {

constexpr int64_t kLanes = 8;
constexpr int64_t kBlock = 4 * kLanes;  // four vectors per iteration, one 32-byte mask store

struct Grid {
  __m256 inv_scale, scale, zero_point, qmin, qmax;
};

// Returns y; *in_range gets all-ones lanes where q is on the grid. For a number q,
// clamp(q) == q exactly when qmin <= q <= qmax; a NaN q compares unequal (mask 0), as the
// reference's ordered compares give.
inline __m256 fake_quantize_lanes(__m256 x, const Grid& g, __m256i* in_range) {
  const __m256 rounded =
      _mm256_round_ps(_mm256_mul_ps(x, g.inv_scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 q = _mm256_add_ps(g.zero_point, rounded);
  const __m256 clamped = _mm256_min_ps(g.qmax, _mm256_max_ps(g.qmin, q));
  *in_range = _mm256_castps_si256(_mm256_cmp_ps(clamped, q, _CMP_EQ_OQ));
  return _mm256_mul_ps(_mm256_sub_ps(clamped, g.zero_point), g.scale);
}

// Four all-ones/zero int32 masks (8 lanes each) -> 32 bytes of 0/1 in element order. The
// packs work within 128-bit halves, so the result comes out as 4-byte groups
// a0-3 b0-3 c0-3 d0-3 a4-7 b4-7 c4-7 d4-7 and one permute puts them back in order.
inline __m256i pack_mask_bytes(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  const __m256i ordered =
      _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  return _mm256_and_si256(ordered, _mm256_set1_epi8(1));
}

// Min and max over finite and infinite values alike; NaN lanes drop out because
// _mm256_min_ps(v, acc) returns acc when v is NaN.
inline void min_max_skipping_nan(const float* x, int64_t n, float* lo_out, float* hi_out,
                                 int64_t* done) {
  __m256 lo[4], hi[4];
  for (int k = 0; k < 4; ++k) {
    lo[k] = _mm256_set1_ps(INFINITY);
    hi[k] = _mm256_set1_ps(-INFINITY);
  }
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    for (int k = 0; k < 4; ++k) {
      const __m256 v = _mm256_loadu_ps(x + i + k * kLanes);
      lo[k] = _mm256_min_ps(v, lo[k]);
      hi[k] = _mm256_max_ps(v, hi[k]);
    }
  }
  alignas(32) float lo_lanes[kLanes];
  alignas(32) float hi_lanes[kLanes];
  _mm256_store_ps(lo_lanes, _mm256_min_ps(_mm256_min_ps(lo[0], lo[1]), _mm256_min_ps(lo[2], lo[3])));
  _mm256_store_ps(hi_lanes, _mm256_max_ps(_mm256_max_ps(hi[0], hi[1]), _mm256_max_ps(hi[2], hi[3])));
  float lo_all = INFINITY;
  float hi_all = -INFINITY;
  for (int lane = 0; lane < kLanes; ++lane) {
    lo_all = std::min(lo_all, lo_lanes[lane]);
    hi_all = std::max(hi_all, hi_lanes[lane]);
  }
  *lo_out = lo_all;
  *hi_out = hi_all;
  *done = i;
}

}  // namespace

void fake_quantize(const float* x, float* y, bool* mask, int64_t n, QParam qparam,
                   int64_t quant_min, int64_t quant_max) {
  const float inv_scale = 1.0f / qparam.scale;
  const Grid grid{_mm256_set1_ps(inv_scale), _mm256_set1_ps(qparam.scale),
                  _mm256_set1_ps(static_cast<float>(qparam.zero_point)),
                  _mm256_set1_ps(static_cast<float>(quant_min)),
                  _mm256_set1_ps(static_cast<float>(quant_max))};
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    __m256i in_range[4];
    for (int k = 0; k < 4; ++k) {
      const int64_t at = i + k * kLanes;
      _mm256_storeu_ps(y + at, fake_quantize_lanes(_mm256_loadu_ps(x + at), grid, &in_range[k]));
    }
    if (mask) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(mask + i),
                          pack_mask_bytes(in_range[0], in_range[1], in_range[2], in_range[3]));
    }
  }
  if (i < n) {
    fake_quantize_reference(x + i, y + i, mask ? mask + i : nullptr, n - i, qparam, quant_min,
                            quant_max);
  }
}

bool finite_min_max(const float* x, int64_t n, float* min_val, float* max_val) {
  float lo = INFINITY;
  float hi = -INFINITY;
  int64_t done = 0;
  min_max_skipping_nan(x, n, &lo, &hi, &done);
  // An infinity among the values shows up as an infinite result (finite values cannot make
  // one): then this needs the scan that leaves infinities out, which the reference does.
  if (std::isinf(lo) && lo < 0.0f) return linquant::finite_min_max(x, n, min_val, max_val);
  if (std::isinf(hi) && hi > 0.0f) return linquant::finite_min_max(x, n, min_val, max_val);
  float tail_lo = 0.0f;
  float tail_hi = 0.0f;
  if (done < n && linquant::finite_min_max(x + done, n - done, &tail_lo, &tail_hi)) {
    lo = std::min(lo, tail_lo);
    hi = std::max(hi, tail_hi);
  }
  // Finite values are below +inf, so lo stays +inf only when there was none.
  if (!(lo < INFINITY)) return false;
  *min_val = lo;
  *max_val = hi;
  return true;
}

void masked_gradient(const float* grad, const bool* mask, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    uint64_t bytes = 0;
    std::memcpy(&bytes, mask + i, sizeof bytes);
    const __m256 m = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bytes))));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(grad + i), m));
  }
  for (; i < n; ++i) out[i] = grad[i] * static_cast<float>(mask[i]);
}

}  // namespace linquant::avx2
