// FakeQuantize::forward_after_add against the composite it replaces, forward(at::add(a, b))
// (or of at::relu / at::hardtanh(·, 0, 6) of the sum), whose parts the golden sweep checks
// against PyTorch: outputs, the gradients of both operands, observer state and qparams must
// agree bit for bit, with NaN, infinities (inf + -inf too) and saturation in the data, over
// several steps and for every observer, scheme and activation dtype. CTest runs this suite
// with the AVX2 and with the scalar kernels; resnet18's residual add -> ReLU -> quantizer is
// also checked against prepare_qat_fx (tests/quantizer/torch_cross_check_test.cpp).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <cmath>
#include <optional>
#include <string>

#include "fused_quantizer_cases.h"
#include "linquant/quant/fake_quantize.h"
#include "tensor_bits.h"

namespace linquant {
namespace {

// Random operands whose sums land on grid ties, cancel to zeros of both signs, overflow, and
// meet NaN and infinities of both signs (inf + -inf is NaN).
std::pair<at::Tensor, at::Tensor> tricky_operands(int64_t seed, int64_t n) {
  at::manual_seed(seed);
  at::Tensor a = at::randn({n}) * 3.0;
  at::Tensor b = at::randn({n}) * 2.0;
  const at::Tensor every7 = at::arange(0, n, 7);
  b.index_put_({every7}, at::round(a.index({every7}) * 20) / 20 + 0.025 - a.index({every7}));
  const float special_a[] = {-0.0f, 0.0f, 1.5f, NAN, INFINITY, INFINITY, 3e38f, -0.0f};
  const float special_b[] = {-0.0f, -0.0f, -1.5f, 1.0f, -INFINITY, 2.0f, 3e38f, 0.0f};
  for (int64_t i = 0; i < 8 && i < n; ++i) {
    a[i] = special_a[i];
    b[i] = special_b[i];
  }
  return {a.reshape({-1, 1, 1}), b.reshape({-1, 1, 1})};
}

// What the interpreter runs without fusion: add, then ReLU / ReLU6 when there is one.
at::Tensor add_composite(const at::Tensor& a, const at::Tensor& b, std::optional<float> cap) {
  const at::Tensor sum = at::add(a, b);
  if (!cap) return sum;
  return std::isnan(*cap) ? at::relu(sum) : at::hardtanh(sum, 0.0, *cap);
}

struct AfterAdd {
  const char* name;
  std::optional<float> relu_cap;
};

class AddFakeQuantize : public ::testing::TestWithParam<AfterAdd> {};

TEST_P(AddFakeQuantize, MatchesAddThenFakeQuantizeBitForBit) {
  const std::optional<float> cap = GetParam().relu_cap;
  for (const FakeQuantizeOptions& options : fused_quantizer_variants()) {
    FakeQuantize fused(options);
    FakeQuantize composite(options);
    for (int64_t step = 0; step < 4; ++step) {
      // Sizes around the vector width, the sum blocks and the thread chunks; one step whose
      // sums are all negative.
      const int64_t n = step == 0 ? 37 : (step == 1 ? 100003 : 2048 * 3 + 5);
      auto [x, z] = tricky_operands(step + 20, n);
      if (step == 3) {
        x = -x.abs();
        z = -z.abs();
      }
      if (step == 2) x = x * 3.0;  // many sums above the ReLU6 cap
      const std::string what =
          std::string("step ") + std::to_string(step) + " " + fused->options().describe();
      const at::Tensor a1 = x.clone().requires_grad_(true);
      const at::Tensor b1 = z.clone().requires_grad_(true);
      const at::Tensor a2 = x.clone().requires_grad_(true);
      const at::Tensor b2 = z.clone().requires_grad_(true);
      const at::Tensor y1 = fused->forward_after_add(a1, b1, cap);
      const at::Tensor y2 = composite->forward(add_composite(a2, b2, cap));
      expect_same_bits(y1, y2, what + " output");
      const at::Tensor grad = at::randn(y1.sizes());
      grad[0][0][0] = NAN;
      const auto g1 = torch::autograd::grad({y1}, {a1, b1}, {grad});
      const auto g2 = torch::autograd::grad({y2}, {a2, b2}, {grad});
      expect_same_bits(g1[0], g2[0], what + " gradient of a");
      expect_same_bits(g1[1], g2[1], what + " gradient of b");
      expect_same_state(fused, composite, what);
    }
  }
}

TEST_P(AddFakeQuantize, OperandAddedToItselfGetsBothGradients) {
  const std::optional<float> cap = GetParam().relu_cap;
  FakeQuantize fused(FakeQuantizeOptions{});
  FakeQuantize composite(FakeQuantizeOptions{});
  const at::Tensor x = tricky_operands(5, 5000).first;
  const at::Tensor x1 = x.clone().requires_grad_(true);
  const at::Tensor x2 = x.clone().requires_grad_(true);
  const at::Tensor y1 = fused->forward_after_add(x1, x1, cap);
  const at::Tensor y2 = composite->forward(add_composite(x2, x2, cap));
  expect_same_bits(y1, y2, "output");
  const at::Tensor grad = at::randn(y1.sizes());
  expect_same_bits(torch::autograd::grad({y1}, {x1}, {grad})[0],
                   torch::autograd::grad({y2}, {x2}, {grad})[0], "gradient");
}

TEST_P(AddFakeQuantize, OtherCasesTakeTheCompositePath) {
  const std::optional<float> cap = GetParam().relu_cap;
  const auto [x, z] = tricky_operands(7, 999);
  // Fake quant off: the sum itself comes back, observed.
  {
    FakeQuantize fused(FakeQuantizeOptions{});
    FakeQuantize composite(FakeQuantizeOptions{});
    fused->disable_fake_quant();
    composite->disable_fake_quant();
    expect_same_bits(fused->forward_after_add(x, z, cap), add_composite(x, z, cap), "off");
    composite->forward(add_composite(x, z, cap));
    expect_same_state(fused, composite, "fake quant off");
  }
  // Broadcast operands, another dtype, a learnable quantizer.
  {
    FakeQuantize fused(FakeQuantizeOptions{});
    FakeQuantize composite(FakeQuantizeOptions{});
    const at::Tensor row = z.reshape({-1})[0].reshape({1, 1, 1});
    expect_same_bits(fused->forward_after_add(x, row, cap),
                     composite->forward(add_composite(x, row, cap)), "broadcast");
    const at::Tensor y = fused->forward_after_add(x.to(at::kDouble), z.to(at::kDouble), cap);
    EXPECT_EQ(y.scalar_type(), at::kDouble);
  }
  {
    FakeQuantizeOptions options;
    options.algorithm = Algorithm::learnable;
    FakeQuantize fused(options);
    FakeQuantize composite(options);
    expect_same_bits(fused->forward_after_add(x, z, cap),
                     composite->forward(add_composite(x, z, cap)), "learnable");
  }
}

TEST_P(AddFakeQuantize, SharedQuantizerSeesTheUnionOfItsInputs) {
  const std::optional<float> cap = GetParam().relu_cap;
  FakeQuantize fused(FakeQuantizeOptions{});
  FakeQuantize composite(FakeQuantizeOptions{});
  const auto [x, z] = tricky_operands(9, 3000);
  const at::Tensor other = at::randn({3000, 1, 1}) * 10.0;
  fused->begin_shared_pass();
  composite->begin_shared_pass();
  const at::Tensor y1 = fused->forward_after_add(x, z, cap);
  const at::Tensor y2 = composite->forward(add_composite(x, z, cap));
  const at::Tensor w1 = fused->forward(other);
  const at::Tensor w2 = composite->forward(other);
  fused->end_shared_pass();
  composite->end_shared_pass();
  expect_same_bits(y1, y2, "first input");
  expect_same_bits(w1, w2, "second input");
  expect_same_state(fused, composite, "after the pass");
}

INSTANTIATE_TEST_SUITE_P(AddReluAndRelu6, AddFakeQuantize,
                         ::testing::Values(AfterAdd{"add", std::nullopt},
                                           AfterAdd{"add_relu", kReluUncapped},
                                           AfterAdd{"add_relu6", 6.0f}),
                         [](const ::testing::TestParamInfo<AfterAdd>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace linquant
