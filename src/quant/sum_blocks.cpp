#include "sum_blocks.h"

namespace linquant {

// Compiled for AVX2 and for baseline x86-64, picked at load time; an addition rounds the
// same on both.
__attribute__((target_clones("avx2", "default"))) void add_span(const float* a, const float* b,
                                                                float* sum, int64_t n) {
  for (int64_t i = 0; i < n; ++i) sum[i] = a[i] + b[i];
}

}  // namespace linquant
