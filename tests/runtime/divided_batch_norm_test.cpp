// divide_and_batch_norm against the ops it stands for, written with ATen:
// at::batch_norm(x / f.reshape(1, C, 1, ...)) in training mode with DivBackward0 and
// NativeBatchNormBackward0. Output, running statistics and the gradients of x, f, BatchNorm's
// weight and bias, bit for bit, on shapes whose planes leave vector tails or reach the levels of
// at::sum's cascade, on one and two threads; and with f computed from BatchNorm's weight as QAT
// Conv-BN does, so the weight's two gradients meet. And the frozen form with the quantizer
// after it.
#include "../../src/runtime/divided_batch_norm.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <cstring>
#include <string>
#include <vector>

#include "../quant/fused_quantizer_cases.h"

namespace linquant {
namespace {

::testing::AssertionResult same_bits(const at::Tensor& a, const at::Tensor& b) {
  if (!a.defined() || !b.defined()) {
    return a.defined() == b.defined() ? ::testing::AssertionSuccess()
                                      : ::testing::AssertionFailure() << "one side undefined";
  }
  if (a.sizes() != b.sizes()) return ::testing::AssertionFailure() << "shapes differ";
  const at::Tensor ca = a.contiguous(), cb = b.contiguous();
  const float* pa = ca.data_ptr<float>();
  const float* pb = cb.data_ptr<float>();
  for (int64_t i = 0; i < ca.numel(); ++i) {
    if (std::memcmp(pa + i, pb + i, sizeof(float)) != 0) {
      return ::testing::AssertionFailure()
             << "element " << i << " of " << ca.numel() << ": " << pa[i] << " vs " << pb[i];
    }
  }
  return ::testing::AssertionSuccess();
}

at::Tensor spread(at::IntArrayRef shape) {
  return at::randn(shape) * at::pow(2.0, at::randint(-10, 10, shape).to(at::kFloat));
}

struct Inputs {
  at::Tensor x, g, factor, weight, bias;
  bool factor_from_weight = false;  // f = weight / sqrt(running_var + eps), as in Conv-BN
  bool x_gradient = true;
};

struct Outputs {
  at::Tensor out, running_mean, running_var, dx, dfactor, dweight, dbias;
};

Outputs run(const Inputs& in, bool ours) {
  const int64_t channels = in.x.size(1);
  at::Tensor x = in.x.clone().requires_grad_(in.x_gradient);
  at::Tensor weight = in.weight.clone().requires_grad_(true);
  at::Tensor bias = in.bias.clone().requires_grad_(true);
  at::Tensor running_mean = at::zeros({channels}), running_var = at::ones({channels}) * 3;
  const double eps = 1e-5, momentum = 0.1;
  at::Tensor factor_leaf = in.factor.clone().requires_grad_(true);
  at::Tensor factor = in.factor_from_weight ? weight / at::sqrt(running_var + eps) : factor_leaf;
  factor.retain_grad();
  at::Tensor out;
  if (ours) {
    runtime::BatchNormState state;
    state.weight = weight;
    state.bias = bias;
    state.running_mean = running_mean;
    state.running_var = running_var;
    state.eps = eps;
    EXPECT_TRUE(runtime::divide_and_batch_norm_applies(x, state));
    out = runtime::divide_and_batch_norm(x, factor, state, momentum);
  } else {
    std::vector<int64_t> broadcast(static_cast<size_t>(x.dim()), 1);
    broadcast[1] = channels;
    out = at::batch_norm(x / factor.reshape(broadcast), weight, bias, running_mean, running_var,
                         true, momentum, eps, true);
  }
  out.backward(in.g);
  return {out.detach(),  running_mean,  running_var, x.grad(),
          factor.grad(), weight.grad(), bias.grad()};
}

void expect_same(const Outputs& ours, const Outputs& torch) {
  EXPECT_TRUE(same_bits(ours.out, torch.out)) << "output";
  EXPECT_TRUE(same_bits(ours.running_mean, torch.running_mean)) << "running mean";
  EXPECT_TRUE(same_bits(ours.running_var, torch.running_var)) << "running var";
  EXPECT_TRUE(same_bits(ours.dx, torch.dx)) << "input gradient";
  EXPECT_TRUE(same_bits(ours.dfactor, torch.dfactor)) << "factor gradient";
  EXPECT_TRUE(same_bits(ours.dweight, torch.dweight)) << "weight gradient";
  EXPECT_TRUE(same_bits(ours.dbias, torch.dbias)) << "bias gradient";
}

TEST(DividedBatchNorm, MatchesDivisionThenBatchNormBitForBit) {
  const std::vector<std::vector<int64_t>> shapes = {
      {2, 3, 8},      {3, 4, 5, 7},     {4, 2, 9, 9},     {8, 32, 28, 28}, {2, 5, 17, 19},
      {32, 16, 7, 7}, {1, 3, 130, 131}, {2, 2, 400, 401}, {3, 2, 2, 3, 5}, {5, 3, 12}};
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    int64_t seed = 0;
    for (const auto& shape : shapes) {
      for (int variant = 0; variant < 3; ++variant) {
        at::manual_seed(++seed);
        Inputs in{spread(shape), spread(shape), at::rand({shape[1]}) + 0.25,
                  at::rand({shape[1]}) * 2 - 0.5, at::randn({shape[1]})};
        in.factor_from_weight = variant == 1;
        in.x_gradient = variant != 2;
        SCOPED_TRACE("shape " + c10::str(at::IntArrayRef(shape)) + ", threads " +
                     std::to_string(threads) + ", variant " + std::to_string(variant));
        expect_same(run(in, true), run(in, false));
      }
    }
  }
  at::set_num_threads(2);
}

// Frozen BatchNorm and the quantizer after it, against x / f, at::batch_norm in eval mode and a
// separate FakeQuantize: every observer and range of the fused-quantizer tests, observer on
// and off, quantizer state included.
TEST(DividedBatchNorm, FrozenWithQuantizerMatchesTheOpsOneByOne) {
  const std::vector<std::vector<int64_t>> shapes = {
      {3, 4, 5, 7}, {8, 32, 28, 28}, {2, 5, 17, 19}, {32, 16, 7, 7}, {2, 3, 8}};
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    int64_t seed = 500;
    for (const auto& shape : shapes) {
      for (const FakeQuantizeOptions& options : fused_quantizer_variants()) {
        FakeQuantize fused(options), composite(options);
        fused->train();
        composite->train();
        for (int step = 0; step < 3; ++step) {
          if (step == 2) {
            fused->disable_observer();
            composite->disable_observer();
          }
          at::manual_seed(++seed);
          const int64_t channels = shape[1];
          const at::Tensor x0 = spread(shape), g = spread(shape);
          const at::Tensor f0 = at::rand({channels}) + 0.25;
          const at::Tensor w0 = at::rand({channels}) * 2 - 0.5, b0 = at::randn({channels});
          const at::Tensor mean = at::randn({channels}), var = at::rand({channels}) * 4 + 0.1;
          at::Tensor out[2], dx[2], df[2], dw[2], db[2];
          for (int ours : {0, 1}) {
            at::Tensor x = x0.clone().requires_grad_(true), f = f0.clone().requires_grad_(true);
            at::Tensor w = w0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
            runtime::BatchNormState state;
            state.weight = w;
            state.bias = b;
            state.running_mean = mean.clone();
            state.running_var = var.clone();
            if (ours) {
              ASSERT_TRUE(runtime::divide_frozen_batch_norm_and_quantize_applies(x, state, fused));
              out[1] = runtime::divide_frozen_batch_norm_and_quantize(x, f, state, fused);
            } else {
              std::vector<int64_t> broadcast(shape.size(), 1);
              broadcast[1] = channels;
              out[0] = composite(at::batch_norm(x / f.reshape(broadcast), w, b, state.running_mean,
                                                state.running_var, false, 0.1, state.eps, true));
            }
            out[ours].backward(g);
            dx[ours] = x.grad();
            df[ours] = f.grad();
            dw[ours] = w.grad();
            db[ours] = b.grad();
          }
          const std::string what = "shape " + c10::str(at::IntArrayRef(shape)) + ", threads " +
                                   std::to_string(threads) + ", step " + std::to_string(step);
          SCOPED_TRACE(what);
          EXPECT_TRUE(same_bits(out[1], out[0])) << "output";
          EXPECT_TRUE(same_bits(dx[1], dx[0])) << "input gradient";
          EXPECT_TRUE(same_bits(df[1], df[0])) << "factor gradient";
          EXPECT_TRUE(same_bits(dw[1], dw[0])) << "weight gradient";
          EXPECT_TRUE(same_bits(db[1], db[0])) << "bias gradient";
          expect_same_state(fused, composite, what);
        }
      }
    }
  }
  at::set_num_threads(2);
}

TEST(DividedBatchNorm, ExactZerosAndConstantPlanes) {
  // Constant planes centre to exact zeros (signed zeros in the products), zero gradients
  // give zero sums.
  at::Tensor x = at::ones({4, 3, 6, 6});
  x.select(1, 1).zero_();
  at::Tensor g = at::randn({4, 3, 6, 6});
  g.select(1, 2).zero_();
  const Inputs in{x, g, at::rand({3}) + 0.5, at::rand({3}), at::randn({3})};
  expect_same(run(in, true), run(in, false));
}

TEST(DividedBatchNorm, LeavesOtherShapesToTheComposite) {
  runtime::BatchNormState state;
  state.weight = at::ones({3});
  state.bias = at::zeros({3});
  state.running_mean = at::zeros({3});
  state.running_var = at::ones({3});
  EXPECT_FALSE(runtime::divide_and_batch_norm_applies(at::randn({4, 3}), state));
  EXPECT_FALSE(runtime::divide_and_batch_norm_applies(at::randn({4, 3, 2, 3}), state));
  EXPECT_FALSE(runtime::divide_and_batch_norm_applies(at::randn({4, 1, 8, 8}), state));
  EXPECT_FALSE(
      runtime::divide_and_batch_norm_applies(at::randn({4, 3, 8, 8}).to(at::kDouble), state));
  runtime::BatchNormState no_affine = state;
  no_affine.weight = at::Tensor();
  EXPECT_FALSE(runtime::divide_and_batch_norm_applies(at::randn({4, 3, 8, 8}), no_affine));
}

}  // namespace
}  // namespace linquant
