// The gradient of fake_quantize(hardswish(x)) with respect to x, as ATen 1.13 computes it:
// the straight-through mask first (g = grad * float(mask)), then hardswish_backward(g, x).
// ATen's hardswish_backward has two rules that differ at x == 3 and at NaN:
//   vector lambda: x < -3 -> +0, else x >= 3 -> g, else g * (x / 3 + 0.5)   (NaN -> NaN)
//   scalar lambda: x < -3 -> +0, else x <= 3 -> g * (x / 3 + 0.5), else g   (NaN -> g)
// and which one an element gets depends on where it falls in ATen's loop (aten_loop_split.h).
#pragma once

#include <cstdint>

#include "aten_loop_split.h"

namespace linquant {

// Elements [offset, offset + n) of the whole tensor: out[i] from grad[i], mask[i] and x[i],
// each by the rule `split` gives its index in the whole tensor.
void hardswish_masked_gradient(const float* grad, const bool* mask, const float* x, float* out,
                               int64_t n, int64_t offset, const AtenLoopSplit& split);

}  // namespace linquant
