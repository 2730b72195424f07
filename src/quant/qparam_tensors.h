// Reading a quantizer's scale and zero point tensors as QParams, with the checks every
// fake-quantize kernel needs (same count, finite positive scales).
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "linquant/quant/qparams.h"

namespace linquant {

std::vector<QParam> read_qparams(const at::Tensor& scale, const at::Tensor& zero_point);

// The one (scale, zero point) of a per-tensor quantizer; `what` names the caller in the error.
QParam per_tensor_qparam(const at::Tensor& scale, const at::Tensor& zero_point, const char* what);

}  // namespace linquant
