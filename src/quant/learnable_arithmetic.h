// Library-internal pieces of the learnable (LSQ) arithmetic that the FakeQuantize module, the
// composite (learnable_fake_quantize.cpp) and the fused function all use.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "linquant/config/enums.h"

namespace linquant::learnable {

// Per-slice values (one per index along `axis`) shaped to broadcast against a tensor of
// `rank` dimensions; unchanged for axis -1 (one value for the whole tensor).
at::Tensor along_axis(const at::Tensor& values, int64_t axis, int64_t rank);

// x + 0 * scale + 0 * zero_point: x's value, with both parameters kept in the autograd graph
// (data-parallel training then sees no unused parameters), as coremltools does when fake
// quantization is off.
at::Tensor passthrough(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point,
                       int64_t axis);

// LSQ's gradient scale g = 1 / sqrt(elements per scale * quant_max).
double gradient_scale(const at::Tensor& x, int64_t axis, int64_t quant_max);

// Value v, gradient times g: (v - v * g).detach() + v * g. The value may differ from v in
// the last bit, as it does in the reference.
at::Tensor scale_gradient(const at::Tensor& v, double g);

// Value round(v) (as (round(v) - v) + v), gradient straight through.
at::Tensor round_pass(const at::Tensor& v);

// Signed symmetric ranges have zero point 0: it does not enter the arithmetic at all.
inline bool zero_point_enters(QuantizationScheme scheme, int64_t quant_min) {
  return !(scheme == QuantizationScheme::symmetric && quant_min < 0);
}

}  // namespace linquant::learnable
