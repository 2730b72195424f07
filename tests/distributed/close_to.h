// The tolerance of the data-parallel tests: ranks against one process differ only by summation
// order and per-batch kernel blocking.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>

namespace linquant::distributed {

// Within 1e-5 of the tensor's largest magnitude; below 1e-2 that magnitude is rounding noise
// around zero (a conv bias right before BatchNorm has no gradient), compared absolutely.
inline bool close_to(const at::Tensor& got, const at::Tensor& want) {
  const at::Tensor g = got.to(at::kDouble);
  const at::Tensor w = want.to(at::kDouble);
  const double magnitude = std::max(w.abs().max().item<double>(), 1e-2);
  return at::allclose(g, w, 1e-5, 1e-5 * magnitude);
}

}  // namespace linquant::distributed
