#include "hardswish_gradient.h"

#include <algorithm>
#include <cmath>

#include "element_blocks.h"

namespace linquant {
namespace {

// ATen's vector rule for a block; true when the block has an element where the scalar rule
// could differ (x == 3 or NaN), so that a block without any needs no second look. Written to
// vectorize: the mask read as bytes (GCC has no vector type for bool), the selects and the
// flag branch-free (src/CMakeLists.txt builds this file with -fno-trapping-math, without
// which GCC keeps the division behind a branch).
__attribute__((target_clones("avx2", "default"))) bool vector_rule_block(const float* grad,
                                                                         const uint8_t* mask,
                                                                         const float* x, float* out,
                                                                         int64_t n) {
  int32_t special = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i] * static_cast<float>(mask[i]);
    const float v = x[i];
    const float inside = g * (v / 3.0f + 0.5f);
    const float passed = v >= 3.0f ? g : inside;
    out[i] = v < -3.0f ? 0.0f : passed;
    special |= static_cast<int32_t>(v == 3.0f) | static_cast<int32_t>(std::isunordered(v, v));
  }
  return special != 0;
}

float scalar_rule(float g, float v) {
  if (v < -3.0f) return 0.0f;
  if (v <= 3.0f) return g * (v / 3.0f + 0.5f);
  return g;
}

}  // namespace

void hardswish_masked_gradient(const float* grad, const bool* mask, const float* x, float* out,
                               int64_t n, int64_t offset, const AtenLoopSplit& split) {
  // A bool tensor's bytes are 0 or 1.
  const auto* mask_bytes = reinterpret_cast<const uint8_t*>(mask);
  for (int64_t begin = 0; begin < n; begin += kElementBlock) {
    const int64_t count = std::min(kElementBlock, n - begin);
    if (!vector_rule_block(grad + begin, mask_bytes + begin, x + begin, out + begin, count)) {
      continue;
    }
    for (int64_t i = begin; i < begin + count; ++i) {
      const bool special = x[i] == 3.0f || std::isnan(x[i]);
      if (special && split.scalar_at(offset + i)) {
        out[i] = scalar_rule(grad[i] * static_cast<float>(mask_bytes[i]), x[i]);
      }
    }
  }
}

}  // namespace linquant
