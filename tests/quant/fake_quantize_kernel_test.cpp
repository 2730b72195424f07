// The scalar kernel on hand-computed cases, and bit-exact against ATen's own fake-quant
// kernels (an independent implementation) on random data.
#include "linquant/quant/fake_quantize_kernel.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "float_bits.h"

namespace linquant {
namespace {

TEST(FakeQuantizeKernel, TiesRoundToEven) {
  const std::vector<float> x = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 0.49999997f};
  std::vector<float> y(x.size());
  std::vector<char> mask(x.size());
  fake_quantize_reference(x.data(), y.data(), reinterpret_cast<bool*>(mask.data()),
                          static_cast<int64_t>(x.size()), QParam{1.0f, 0}, -128, 127);
  EXPECT_EQ(y, (std::vector<float>{0.0f, 2.0f, 2.0f, 0.0f, -2.0f, -2.0f, 0.0f}));
  // -0.5 rounds to -0, but (q - zp) * scale turns it into +0 exactly like ATen.
  EXPECT_EQ(float_bits(y[3]), 0u);
}

TEST(FakeQuantizeKernel, SaturatesAndMasks) {
  const std::vector<float> x = {-130.0f, -128.0f, 127.0f, 127.4f, 127.6f, 1000.0f};
  std::vector<float> y(x.size());
  bool mask[6];
  fake_quantize_reference(x.data(), y.data(), mask, 6, QParam{1.0f, 0}, -128, 127);
  EXPECT_EQ(y, (std::vector<float>{-128.0f, -128.0f, 127.0f, 127.0f, 127.0f, 127.0f}));
  const bool expected_mask[6] = {false, true, true, true, false, false};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(mask[i], expected_mask[i]) << i;
}

TEST(FakeQuantizeKernel, ZeroPointShiftsTheGrid) {
  // quint8 with zero point 128 and scale 0.5: x = 1.25 -> q = 128 + round(2.5) = 130 -> 1.0.
  const float x[3] = {1.25f, -64.0f, -64.5f};
  float y[3];
  bool mask[3];
  fake_quantize_reference(x, y, mask, 3, QParam{0.5f, 128}, 0, 255);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -64.0f);
  EXPECT_TRUE(mask[1]);
  EXPECT_EQ(y[2], -64.0f);
  EXPECT_FALSE(mask[2]);
}

TEST(FakeQuantizeKernel, NonFiniteInputs) {
  const float x[3] = {NAN, INFINITY, -INFINITY};
  float y[3];
  bool mask[3];
  fake_quantize_reference(x, y, mask, 3, QParam{0.1f, 0}, -128, 127);
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], 127 * 0.1f);
  EXPECT_EQ(y[2], -128 * 0.1f);
  EXPECT_FALSE(mask[0]);
  EXPECT_FALSE(mask[1]);
  EXPECT_FALSE(mask[2]);
}

TEST(FakeQuantizeKernel, FiniteMinMaxSkipsNonFinite) {
  const float x[5] = {NAN, 3.0f, -INFINITY, -2.0f, INFINITY};
  float lo = 0, hi = 0;
  ASSERT_TRUE(finite_min_max(x, 5, &lo, &hi));
  EXPECT_EQ(lo, -2.0f);
  EXPECT_EQ(hi, 3.0f);
  const float none[2] = {NAN, INFINITY};
  lo = hi = 7.0f;
  EXPECT_FALSE(finite_min_max(none, 2, &lo, &hi));
  EXPECT_EQ(lo, 7.0f);
}

// ATen's fake_quantize_per_tensor_affine is PyTorch's own kernel: agreement is bit for bit.
TEST(FakeQuantizeKernel, MatchesAtenPerTensorOnRandomData) {
  at::manual_seed(7);
  const at::Tensor x = at::randn({4099}) * 3.0;
  for (const auto& [scale, zp, qmin, qmax] :
       std::vector<std::tuple<float, int32_t, int64_t, int64_t>>{
           {0.0237f, 0, -128, 127}, {0.011f, 128, 0, 255}, {0.3f, 7, 0, 15}, {0.41f, -3, -8, 7}}) {
    const at::Tensor expected = at::fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax);
    at::Tensor y = at::empty_like(x);
    fake_quantize_reference(x.data_ptr<float>(), y.data_ptr<float>(), nullptr, x.numel(),
                            QParam{scale, zp}, qmin, qmax);
    ASSERT_TRUE(at::equal(y, expected)) << "scale " << scale << " zp " << zp;
  }
}

TEST(FakeQuantizeKernel, MatchesAtenPerChannelOnRandomData) {
  at::manual_seed(11);
  const at::Tensor x = at::randn({3, 5, 7}) * 2.0;
  const at::Tensor scale = at::rand({5}) * 0.05 + 0.001;
  const at::Tensor zp = at::randint(-10, 10, {5}, at::kInt);
  const at::Tensor expected = at::fake_quantize_per_channel_affine(x, scale, zp, 1, -128, 127);
  std::vector<QParam> qparams;
  for (int c = 0; c < 5; ++c) qparams.push_back({scale[c].item<float>(), zp[c].item<int32_t>()});
  at::Tensor y = at::empty_like(x);
  fake_quantize_per_channel_reference(x.data_ptr<float>(), y.data_ptr<float>(), nullptr, 3, 5, 7,
                                      qparams.data(), -128, 127);
  EXPECT_TRUE(at::equal(y, expected));
}

}  // namespace
}  // namespace linquant
