#include "element_blocks.h"

#include <algorithm>

namespace linquant {

// Each is compiled for AVX2 and for baseline x86-64, picked at load time; both round every
// operation as IEEE single precision does, with no contraction into FMA possible.
__attribute__((target_clones("avx2", "default"))) void add_span(const float* a, const float* b,
                                                                float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

namespace {

// std::max(v, 0) keeps a NaN v (it returns its first argument unless that is less than the
// second), and so does std::min(NaN, 6): NaN propagates as in ATen's vector path.
inline float hardswish_numerator(float x) { return x * std::min(std::max(x + 3.0f, 0.0f), 6.0f); }

}  // namespace

__attribute__((target_clones("avx2", "default"))) void hardswish_span(const float* x, float* out,
                                                                      int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = hardswish_numerator(x[i]) / 6.0f;
}

__attribute__((target_clones("avx2", "default"))) void hardswish_numerator_span(const float* x,
                                                                                float* out,
                                                                                int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = hardswish_numerator(x[i]);
}

}  // namespace linquant
