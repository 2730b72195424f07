// FakeQuantize::forward_after_relu against the composite it replaces, forward(at::relu(x))
// (or at::hardtanh(x, 0, 6) for ReLU6), whose parts are checked against PyTorch by the golden sweep: outputs, gradients, observer
// state and qparams must agree bit for bit, with NaN, infinities and saturation in the data,
// over several steps and for every observer, scheme and activation dtype. CTest runs this
// suite with the AVX2 and with the scalar kernels.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <cmath>
#include <string>

#include "fused_quantizer_cases.h"
#include "linquant/quant/fake_quantize.h"
#include "tensor_bits.h"

namespace linquant {
namespace {

at::Tensor tricky_input(int64_t seed, int64_t n) {
  at::manual_seed(seed);
  at::Tensor x = at::randn({n}) * 3.0;
  // Ties on the grid, exact zeros of both signs, and non-finite values.
  x.index_put_({at::arange(0, n, 7)}, at::round(x.index({at::arange(0, n, 7)}) * 20) / 20 + 0.025);
  x[1] = -0.0f;
  x[2] = 0.0f;
  x[3] = NAN;
  x[4] = INFINITY;
  x[5] = -INFINITY;
  x[6] = 1e30f;
  return x.reshape({-1, 1, 1});
}

// ReLU (cap = kReluUncapped) or ReLU6 (cap = 6, as torch.nn.ReLU6 computes it).
at::Tensor relu_composite(const at::Tensor& x, float cap) {
  return std::isnan(cap) ? at::relu(x) : at::hardtanh(x, 0.0, cap);
}

class ReluFakeQuantize : public ::testing::TestWithParam<float> {};

TEST_P(ReluFakeQuantize, MatchesReluThenFakeQuantizeBitForBit) {
  const float cap = GetParam();
  for (const FakeQuantizeOptions& options : fused_quantizer_variants()) {
    FakeQuantize fused(options);
    FakeQuantize composite(options);
    for (int64_t step = 0; step < 4; ++step) {
      // Sizes around the vector width and thread chunking, and one all-negative input.
      const int64_t n = step == 0 ? 37 : (step == 1 ? 100003 : 4096);
      at::Tensor x = tricky_input(step + 10, n);
      if (step == 3) x = -x.abs();
      if (step == 2) x = x * 3.0;  // many values above the ReLU6 cap
      const std::string what = std::string("step ") + std::to_string(step) + " " +
                               fused->options().describe();
      const at::Tensor a = x.clone().requires_grad_(true);
      const at::Tensor b = x.clone().requires_grad_(true);
      const at::Tensor ya = fused->forward_after_relu(a, cap);
      const at::Tensor yb = composite->forward(relu_composite(b, cap));
      expect_same_bits(ya, yb, what + " output");
      const at::Tensor grad = at::randn(ya.sizes());
      grad[0][0][0] = NAN;
      const at::Tensor ga = torch::autograd::grad({ya}, {a}, {grad})[0];
      const at::Tensor gb = torch::autograd::grad({yb}, {b}, {grad})[0];
      expect_same_bits(ga, gb, what + " gradient");
      expect_same_state(fused, composite, what);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(ReluAndRelu6, ReluFakeQuantize,
                         ::testing::Values(kReluUncapped, 6.0f),
                         [](const ::testing::TestParamInfo<float>& info) {
                           return std::isnan(info.param) ? std::string("relu") : std::string("relu6");
                         });

TEST(ReluFakeQuantizeModule, DisabledFakeQuantStillObservesTheReluOutput) {
  FakeQuantize fused(FakeQuantizeOptions{});
  FakeQuantize composite(FakeQuantizeOptions{});
  fused->disable_fake_quant();
  composite->disable_fake_quant();
  const at::Tensor x = tricky_input(3, 999);
  expect_same_bits(fused->forward_after_relu(x), at::relu(x), "output");
  composite->forward(at::relu(x));
  ASSERT_TRUE(fused->activation_post_process->has_observed());
  ASSERT_TRUE(composite->activation_post_process->has_observed());
  const float max_val = fused->activation_post_process->max_val.item<float>();
  EXPECT_GT(max_val, 0.0f);  // a ReLU output of random data: observed, not the initial value
  EXPECT_EQ(max_val, composite->activation_post_process->max_val.item<float>());
  EXPECT_EQ(fused->activation_post_process->min_val.item<float>(),
            composite->activation_post_process->min_val.item<float>());
  // The parameters the observed range gives are the same on both paths.
  EXPECT_TRUE(at::equal(fused->calculate_qparams().first, composite->calculate_qparams().first));
}

TEST(ReluFakeQuantizeModule, OnlyNonFiniteInputLeavesTheObserverUnset) {
  FakeQuantize fused(FakeQuantizeOptions{});
  const at::Tensor x = at::tensor({NAN, INFINITY, NAN});
  const at::Tensor y = fused->forward_after_relu(x);
  EXPECT_FALSE(fused->activation_post_process->has_observed());
  EXPECT_TRUE(std::isnan(y[0].item<float>()));
}

}  // namespace
}  // namespace linquant
