// aten_row_sum against at::sum itself: every row length up to several groups of vectors, and
// rows long enough to reach each level of the cascade, summed both ways on this machine.
#include "../../src/runtime/aten_row_sum.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstring>

namespace linquant {
namespace {

uint32_t bits(float v) {
  uint32_t b = 0;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

TEST(AtenRowSum, ReproducesAtSumForEveryRowLength) {
  // ATen's order has to be one this header knows, or the fused kernels fall back to at::sum.
  const int64_t lanes = runtime::aten_sum_lanes();
  ASSERT_TRUE(lanes == 8 || lanes == 16) << "at::sum adds in an order aten_row_sum.h lacks";
  std::vector<int64_t> lengths;
  for (int64_t n = 0; n <= 700; ++n) lengths.push_back(n);
  for (int64_t n : {4096, 8191, 8192 + 77, 40000, 131072 + 3, 600001}) lengths.push_back(n);
  at::manual_seed(7);
  for (int64_t n : lengths) {
    // Several rows, so the sum is over the inner dimension as in a per-channel reduction; many
    // for short rows, whose few additions agree in most orders.
    const int64_t count = n < 64 ? 256 : 2;
    const at::Tensor rows =
        at::randn({count, n}) * at::pow(2.0, at::randint(-20, 20, {count, n}).to(at::kFloat));
    const at::Tensor sums = at::sum_to(rows.reshape({1, count, n}), at::IntArrayRef{1, count, 1});
    for (int64_t r = 0; r < count; ++r) {
      const float* x = rows.data_ptr<float>() + r * n;
      const float ours =
          lanes == 8 ? runtime::aten_row_sum_of<8>(x, n) : runtime::aten_row_sum_of<16>(x, n);
      ASSERT_EQ(bits(ours), bits(sums.data_ptr<float>()[r])) << "row length " << n;
    }
  }
}

TEST(AtenRowSum, TheOtherWidthAddsInAnotherOrder) {
  // The probe could not tell the widths apart if they agreed: check they do not, here. The
  // two orders agree on about one random row in five, so several rows are summed (the random
  // draws are sequenced: compilers order the operands of * differently).
  at::manual_seed(8);
  const at::Tensor values = at::randn({16, 1000});
  const at::Tensor scales = at::pow(2.0, at::randint(-20, 20, {16, 1000}).to(at::kFloat));
  const at::Tensor rows = (values * scales).contiguous();
  int differ = 0;
  for (int64_t r = 0; r < rows.size(0); ++r) {
    const float* row = rows.data_ptr<float>() + r * 1000;
    differ += bits(runtime::aten_row_sum_of<8>(row, 1000)) !=
              bits(runtime::aten_row_sum_of<16>(row, 1000));
  }
  EXPECT_GE(differ, 8) << "of 16 rows";
}

}  // namespace
}  // namespace linquant
