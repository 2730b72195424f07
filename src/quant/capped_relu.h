// The ReLU a fused kernel's `cap` stands for (fake_quantize_kernel.h), computed with ATen as the
// unfused graph computes it: relu(x) for kReluUncapped, hardtanh(x, 0, cap) otherwise (ReLU6).
// The composite paths of the fused quantizers use it.
#pragma once

#include <ATen/ATen.h>

#include <cmath>

namespace linquant {

inline at::Tensor capped_relu(const at::Tensor& x, float cap) {
  return std::isnan(cap) ? at::relu(x) : at::hardtanh(x, 0.0, cap);
}

}  // namespace linquant
