// Bit-for-bit comparison of float32 tensors for the fused-kernel tests: every element equal as
// bits (so -0 and +0 differ), or both NaN (a NaN's payload is not part of the contract).
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "float_bits.h"

namespace linquant {

inline void expect_same_bits(const at::Tensor& got, const at::Tensor& want,
                             const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const at::Tensor g = got.contiguous();
  const at::Tensor w = want.contiguous();
  const float* gp = g.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  for (int64_t i = 0; i < g.numel(); ++i) {
    if (std::isnan(gp[i]) && std::isnan(wp[i])) continue;
    ASSERT_EQ(float_bits(gp[i]), float_bits(wp[i]))
        << what << " element " << i << ": " << gp[i] << " vs " << wp[i];
  }
}

}  // namespace linquant
