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

Grid make_grid(QParam qparam, int64_t quant_min, int64_t quant_max) {
  return {_mm256_set1_ps(1.0f / qparam.scale), _mm256_set1_ps(qparam.scale),
          _mm256_set1_ps(static_cast<float>(qparam.zero_point)),
          _mm256_set1_ps(static_cast<float>(quant_min)),
          _mm256_set1_ps(static_cast<float>(quant_max))};
}

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

// Four vectors of small int32 lanes (0..2, or -1 for a true compare) -> 32 bytes in element
// order. The packs work within 128-bit halves, so the bytes come out as 4-byte groups
// a0-3 b0-3 c0-3 d0-3 a4-7 b4-7 c4-7 d4-7 and one permute puts them back in order.
inline __m256i pack_bytes(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline void store_bytes(void* out, __m256i bytes) {
  _mm256_storeu_si256(static_cast<__m256i*>(out), bytes);
}

// _mm256_max_ps(0, x) is x for NaN, as ATen's relu keeps NaN; _mm256_min_ps(cap, r) is r
// for a NaN r, and also when cap is NaN (uncapped).
inline __m256 relu_lanes(__m256 x, __m256 cap) {
  return _mm256_min_ps(cap, _mm256_max_ps(_mm256_setzero_ps(), x));
}

// Min and max over finite and infinite values alike; NaN lanes drop out because
// _mm256_min_ps(v, acc) returns acc when v is NaN.
// With kRelu the values are relu(x) (NaN stays NaN and drops out the same way).
template <bool kRelu>
inline void min_max_skipping_nan(const float* x, int64_t n, float cap, float* lo_out,
                                 float* hi_out, int64_t* done) {
  const __m256 cap_lanes = _mm256_set1_ps(cap);
  __m256 lo[4], hi[4];
  for (int k = 0; k < 4; ++k) {
    lo[k] = _mm256_set1_ps(INFINITY);
    hi[k] = _mm256_set1_ps(-INFINITY);
  }
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    for (int k = 0; k < 4; ++k) {
      __m256 v = _mm256_loadu_ps(x + i + k * kLanes);
      if (kRelu) v = relu_lanes(v, cap_lanes);
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

// finite_min_max or relu_finite_min_max: the vector pass, and the reference for the tail and
// for data with infinities, which show up as an infinite result (finite values cannot make
// one; after a ReLU only +inf can).
template <bool kRelu>
bool min_max_of_finite(const float* x, int64_t n, float cap, float* min_val, float* max_val) {
  const auto reference = [cap](const float* v, int64_t count, float* lo, float* hi) {
    return kRelu ? linquant::relu_finite_min_max(v, count, cap, lo, hi)
                 : linquant::finite_min_max(v, count, lo, hi);
  };
  float lo = INFINITY;
  float hi = -INFINITY;
  int64_t done = 0;
  min_max_skipping_nan<kRelu>(x, n, cap, &lo, &hi, &done);
  if (lo == -INFINITY || hi == INFINITY) return reference(x, n, min_val, max_val);
  float tail_lo = 0.0f;
  float tail_hi = 0.0f;
  if (done < n && reference(x + done, n - done, &tail_lo, &tail_hi)) {
    lo = std::min(lo, tail_lo);
    hi = std::max(hi, tail_hi);
  }
  // Finite values are below +inf, so lo stays +inf only when there was none.
  if (!(lo < INFINITY)) return false;
  *min_val = lo;
  *max_val = hi;
  return true;
}

}  // namespace

void fake_quantize(const float* x, float* y, bool* mask, int64_t n, QParam qparam,
                   int64_t quant_min, int64_t quant_max) {
  const Grid grid = make_grid(qparam, quant_min, quant_max);
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    __m256i in_range[4];
    for (int k = 0; k < 4; ++k) {
      const int64_t at = i + k * kLanes;
      _mm256_storeu_ps(y + at, fake_quantize_lanes(_mm256_loadu_ps(x + at), grid, &in_range[k]));
    }
    if (mask) {
      const __m256i bytes = pack_bytes(in_range[0], in_range[1], in_range[2], in_range[3]);
      store_bytes(mask + i, _mm256_and_si256(bytes, _mm256_set1_epi8(1)));
    }
  }
  if (i < n) {
    fake_quantize_reference(x + i, y + i, mask ? mask + i : nullptr, n - i, qparam, quant_min,
                            quant_max);
  }
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

void relu_fake_quantize(const float* x, float* y, uint8_t* state, int64_t n, float cap,
                        QParam qparam, int64_t quant_min, int64_t quant_max) {
  const Grid grid = make_grid(qparam, quant_min, quant_max);
  const __m256i two = _mm256_set1_epi32(2);
  const __m256 cap_lanes = _mm256_set1_ps(cap);
  const bool capped = !std::isnan(cap);
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    __m256i lane_state[4];
    for (int k = 0; k < 4; ++k) {
      const int64_t at = i + k * kLanes;
      const __m256 v = _mm256_loadu_ps(x + at);
      __m256i in_range;
      _mm256_storeu_ps(y + at, fake_quantize_lanes(relu_lanes(v, cap_lanes), grid, &in_range));
      // 2 + (-1 or 0) = 1 on the grid, 2 off it; 0 where the ReLU passes no gradient: x <= 0
      // (ordered, so NaN passes), or capped, not 0 < x < cap (NaN does not pass).
      const __m256 zero = _mm256_setzero_ps();
      const __m256 all_ones = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
      const __m256 blocked =
          capped ? _mm256_xor_ps(all_ones, _mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_GT_OQ),
                                                         _mm256_cmp_ps(v, cap_lanes, _CMP_LT_OQ)))
                 : _mm256_cmp_ps(v, zero, _CMP_LE_OQ);
      const __m256i zero_gradient = _mm256_castps_si256(blocked);
      lane_state[k] = _mm256_andnot_si256(zero_gradient, _mm256_add_epi32(two, in_range));
    }
    store_bytes(state + i, pack_bytes(lane_state[0], lane_state[1], lane_state[2], lane_state[3]));
  }
  if (i < n) {
    relu_fake_quantize_reference(x + i, y + i, state + i, n - i, cap, qparam, quant_min,
                                 quant_max);
  }
}

bool finite_min_max(const float* x, int64_t n, float* min_val, float* max_val) {
  return min_max_of_finite<false>(x, n, kReluUncapped, min_val, max_val);
}

bool relu_finite_min_max(const float* x, int64_t n, float cap, float* min_val, float* max_val) {
  return min_max_of_finite<true>(x, n, cap, min_val, max_val);
}

void relu_masked_gradient(const float* grad, const uint8_t* state, float* out, int64_t n) {
  const __m256i one = _mm256_set1_epi32(1);
  const __m256 one_f = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    uint64_t bytes = 0;
    std::memcpy(&bytes, state + i, sizeof bytes);
    const __m256i s = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bytes)));
    // 1.0f where the state is 1, else 0.0f; then all bits cleared (+0) where it is 0.
    const __m256 on_grid = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(s, one)), one_f);
    const __m256 product = _mm256_mul_ps(_mm256_loadu_ps(grad + i), on_grid);
    const __m256i passes = _mm256_cmpgt_epi32(s, _mm256_setzero_si256());
    _mm256_storeu_ps(out + i, _mm256_and_ps(_mm256_castsi256_ps(passes), product));
  }
  if (i < n) relu_masked_gradient_reference(grad + i, state + i, out + i, n - i);
}

}  // namespace linquant::avx2
