// Scale and zero point from an observed range, with PyTorch's float32 arithmetic
// (torch.ao.quantization UniformQuantizationObserverBase) so results agree bit for bit.
#pragma once

#include <cstdint>

#include "linquant/config/enums.h"
#include "linquant/quant/quant_range.h"

namespace linquant {

// float32 machine epsilon: the smallest scale an observer hands out.
constexpr float kQParamsEps = 1.1920928955078125e-07f;

// One channel's (or a whole tensor's) parameters.
struct QParam {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

// The range always includes 0. symmetric: scale = max(|min|, |max|) / ((qmax - qmin) / 2);
// affine: scale = (max - min) / (qmax - qmin), zero point = qmin - round(min / scale) clamped.
// Scales are never below kQParamsEps. min > max is a caller bug and throws QuantError.
QParam compute_qparam(float min_val, float max_val, const QuantRange& range,
                      QuantizationScheme scheme);

}  // namespace linquant
