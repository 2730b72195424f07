// y = x / factor[c] along axis 1, with autograd: the step of QAT Conv-BN that divides the
// BatchNorm factor back out of the conv output. The same IEEE operations as torch's
// `x / factor.reshape(1, C, 1, ...)` and its DivBackward0, so results are bit-identical, but
// one pass over memory each way instead of five (division, negation, two divisions and a
// product in the backward), which made Conv-BN the largest QAT overhead.
#pragma once

#include <ATen/core/Tensor.h>

namespace linquant::runtime {

// x: [N, C, ...] float32; factor: [C] float32.
at::Tensor divide_channels(const at::Tensor& x, const at::Tensor& factor);

}  // namespace linquant::runtime
