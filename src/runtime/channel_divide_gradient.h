// One plane of the backward of y = x / f (torch's DivBackward0 for a per-channel divisor):
// dx = g / f, and the plane's share of f's gradient, the sum of -g * (y / f), added in at::sum's
// order (aten_row_sum.h) without the terms ever being stored. The incoming gradient g comes
// from a callback, so a kernel that computes it on the fly (BatchNorm's input gradient,
// divided_batch_norm.cpp) saves writing it out and reading it back.
#pragma once

#include <cstdint>

#include "aten_row_sum.h"

namespace linquant::runtime {

// grad_at(i, v) sets v to the Lanes gradients from i on, scalar_grad_at(i) returns gradient i;
// dx may be null when the input's gradient is not wanted.
template <int64_t Lanes, typename GradAt, typename ScalarGradAt>
[[gnu::always_inline]] inline float divide_backward_plane_sum(int64_t n, const float* y,
                                                              float divisor, float* dx,
                                                              const GradAt& grad_at,
                                                              const ScalarGradAt& scalar_grad_at) {
  using Vector = typename SumVector<Lanes>::type;
  Vector f;  // every lane the divisor, -0.0 included (0.0 + divisor would lose its sign)
  for (int64_t lane = 0; lane < Lanes; ++lane) f[lane] = divisor;
  return aten_row_sum<Lanes>(
      n,
      [&](int64_t i, Vector& term) {
        Vector gv, yv;
        grad_at(i, gv);
        load_lanes(y + i, yv);
        if (dx) store_lanes(dx + i, gv / f);
        term = -gv * (yv / f);
      },
      [&](int64_t i) {
        const float g = scalar_grad_at(i);
        if (dx) dx[i] = g / divisor;
        return -g * (y[i] / divisor);
      });
}

}  // namespace linquant::runtime
