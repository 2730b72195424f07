// Library-internal pieces of the learnable (LSQ) arithmetic that the FakeQuantize module and
// learnable_fake_quantize.cpp both use.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace linquant::learnable {

// Per-slice values (one per index along `axis`) shaped to broadcast against a tensor of
// `rank` dimensions; unchanged for axis -1 (one value for the whole tensor).
at::Tensor along_axis(const at::Tensor& values, int64_t axis, int64_t rank);

// x + 0 * scale + 0 * zero_point: x's value, with both parameters kept in the autograd graph
// (data-parallel training then sees no unused parameters), as coremltools does when fake
// quantization is off.
at::Tensor passthrough(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point,
                       int64_t axis);

}  // namespace linquant::learnable
