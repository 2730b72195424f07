// The sum that LibTorch 1.13's CPU kernel (at::sum over a contiguous inner dimension) computes
// for one row of float32 values, addition for addition, so that a fused kernel can reduce
// values it computes on the fly instead of writing them out for at::sum, and still return
// at::sum's bits.
//
// ATen reads the row as vectors of Lanes floats (its Vectorized<float>: 8 lanes for the DEFAULT
// and AVX2 kernels, 16 for AVX-512), adds them four at a time into four side-by-side accumulators,
// and carries those up a cascade of four levels every 2^p groups so that only sums of similar size
// meet. The vectors left over after the groups go into the first accumulator, the four accumulators
// are added in order, and the row's total is the scalar tail followed by the lanes. A row shorter
// than one vector is summed by ATen's scalar loop instead (four scalar accumulators).
// Which lane count the running ATen uses is found once by asking at::sum itself
// (aten_sum_lanes, aten_row_sum.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace linquant::runtime {

// GCC vector types: element-wise IEEE arithmetic, one instruction per operation where the
// target has registers that wide.
template <int64_t Lanes>
struct SumVector;
template <>
struct SumVector<8> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct SumVector<16> {
  typedef float type __attribute__((vector_size(64)));
};

// Vectors travel by reference: passed by value, their registers would depend on the target
// (GCC's -Wpsabi).
template <typename Vector>
[[gnu::always_inline]] inline void load_lanes(const float* p, Vector& v) {
  std::memcpy(&v, p, sizeof v);
}

template <typename Vector>
[[gnu::always_inline]] inline void store_lanes(float* p, const Vector& v) {
  std::memcpy(p, &v, sizeof v);
}

// ceil(log2(x)), and 1 for x <= 2, as ATen's reductions define it.
inline int64_t sum_ceil_log2(int64_t x) {
  if (x <= 2) return 1;
  return 64 - __builtin_clzll(static_cast<uint64_t>(x - 1));
}

// The sum of the n values of a row: vector_at(i, v) sets v to the Lanes values starting at i,
// scalar_at(i) returns the single value i. Each is called once per value, in row order.
template <int64_t Lanes, typename VectorAt, typename ScalarAt>
[[gnu::always_inline]] inline float aten_row_sum(int64_t n, const VectorAt& vector_at,
                                                 const ScalarAt& scalar_at) {
  constexpr int64_t kGroup = 4;
  constexpr int64_t kLevels = 4;
  if (n < Lanes) {
    // Rows shorter than a vector take ATen's scalar loop: four accumulators side by side
    // (element i into k = i % 4), the leftovers into the first, then the four in order.
    float acc[kGroup] = {};
    const int64_t whole = n / kGroup * kGroup;
    for (int64_t i = 0; i < whole; ++i) acc[i % kGroup] += scalar_at(i);
    for (int64_t i = whole; i < n; ++i) acc[0] += scalar_at(i);
    for (int64_t k = 1; k < kGroup; ++k) acc[0] += acc[k];
    return acc[0];
  }
  using Vector = typename SumVector<Lanes>::type;
  const int64_t vectors = n / Lanes;
  const int64_t groups = vectors / kGroup;
  const int64_t power = std::max<int64_t>(4, sum_ceil_log2(groups) / kLevels);
  const int64_t step = int64_t{1} << power;
  const int64_t mask = step - 1;

  Vector acc[kLevels][kGroup] = {};
  Vector value;
  const auto add_group = [&](int64_t group) {
    for (int64_t k = 0; k < kGroup; ++k) {
      vector_at((group * kGroup + k) * Lanes, value);
      acc[0][k] += value;
    }
  };
  int64_t group = 0;
  while (group + step <= groups) {
    for (int64_t j = 0; j < step; ++j, ++group) add_group(group);
    for (int64_t level = 1; level < kLevels; ++level) {
      for (int64_t k = 0; k < kGroup; ++k) {
        acc[level][k] += acc[level - 1][k];
        acc[level - 1][k] = Vector{};
      }
      if ((group & (mask << (level * power))) != 0) break;
    }
  }
  for (; group < groups; ++group) add_group(group);
  for (int64_t level = 1; level < kLevels; ++level) {
    for (int64_t k = 0; k < kGroup; ++k) acc[0][k] += acc[level][k];
  }

  Vector lanes = acc[0][0];
  for (int64_t v = groups * kGroup; v < vectors; ++v) {
    vector_at(v * Lanes, value);
    lanes += value;
  }
  for (int64_t k = 1; k < kGroup; ++k) lanes += acc[0][k];

  float total = 0.0f;
  for (int64_t i = vectors * Lanes; i < n; ++i) total += scalar_at(i);
  for (int64_t lane = 0; lane < Lanes; ++lane) total += lanes[lane];
  return total;
}

// aten_row_sum of n stored values.
template <int64_t Lanes>
float aten_row_sum_of(const float* x, int64_t n) {
  return aten_row_sum<Lanes>(
      n, [&](int64_t i, auto& v) { load_lanes(x + i, v); }, [&](int64_t i) { return x[i]; });
}

// The Lanes for which aten_row_sum reproduces at::sum in this process (ATen's vector width
// follows the CPU capability it picked), or 0 when neither does: found once, by comparing a
// few rows summed both ways.
int64_t aten_sum_lanes();

}  // namespace linquant::runtime
