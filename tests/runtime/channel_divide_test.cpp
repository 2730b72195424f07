// divide_channels against the autograd graph it stands for, torch's
// x / factor.reshape(1, C, 1, ...) with DivBackward0: forward and both gradients bit for bit,
// on the values where two implementations of IEEE division part most easily (zeros of both
// signs, subnormals, infinities, NaN, the extremes of float32), for tensors of rank 2 to 5,
// one channel, plane sizes that leave vector tails, and planes split across threads.
#include "../../src/runtime/channel_divide.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace linquant {
namespace {

using Limits = std::numeric_limits<float>;

const std::vector<float>& special_values() {
  static const std::vector<float> values = {0.0f,
                                            -0.0f,
                                            1.0f,
                                            -1.0f,
                                            Limits::infinity(),
                                            -Limits::infinity(),
                                            Limits::quiet_NaN(),
                                            Limits::max(),
                                            -Limits::max(),
                                            Limits::min(),
                                            -Limits::min(),
                                            Limits::denorm_min(),
                                            -Limits::denorm_min(),
                                            3e-39f,
                                            -7e-40f,
                                            1e30f,
                                            -1e-30f,
                                            0.1f,
                                            65504.0f,
                                            1.0f / 3.0f};
  return values;
}

// Random values of every magnitude with the special values sprinkled in.
at::Tensor edge_tensor(const std::vector<int64_t>& shape, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor t = at::randn(shape) * at::pow(10.0, at::randint(-40, 38, shape).to(at::kFloat));
  float* data = t.data_ptr<float>();
  const auto& special = special_values();
  for (int64_t i = 0; i < t.numel(); i += 3) {
    data[i] = special[static_cast<size_t>(i / 3) % special.size()];
  }
  return t;
}

// Equal bits, or both NaN (a NaN's payload is not part of what either side promises).
::testing::AssertionResult same_floats(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes()) return ::testing::AssertionFailure() << "shapes differ";
  const at::Tensor ca = a.contiguous(), cb = b.contiguous();
  const float* pa = ca.data_ptr<float>();
  const float* pb = cb.data_ptr<float>();
  for (int64_t i = 0; i < ca.numel(); ++i) {
    uint32_t ba = 0, bb = 0;
    std::memcpy(&ba, pa + i, 4);
    std::memcpy(&bb, pb + i, 4);
    if (ba != bb && !(std::isnan(pa[i]) && std::isnan(pb[i]))) {
      return ::testing::AssertionFailure() << "element " << i << ": " << pa[i] << " vs " << pb[i]
                                           << " (bits " << std::hex << ba << " vs " << bb << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

struct Result {
  at::Tensor y, dx, df;
};

Result run(const at::Tensor& x, const at::Tensor& f, const at::Tensor& g, bool ours) {
  at::Tensor xa = x.clone().requires_grad_(true);
  at::Tensor fa = f.clone().requires_grad_(true);
  at::Tensor y;
  if (ours) {
    y = runtime::divide_channels(xa, fa);
  } else {
    std::vector<int64_t> broadcast(static_cast<size_t>(x.dim()), 1);
    broadcast[1] = f.size(0);
    y = xa / fa.reshape(broadcast);
  }
  y.backward(g);
  return {y.detach(), xa.grad(), fa.grad()};
}

TEST(ChannelDivide, MatchesTorchDivisionAndDivBackwardBitForBit) {
  const std::vector<std::vector<int64_t>> shapes = {{3, 4},          {2, 5, 7},  {2, 3, 5, 9},
                                                    {1, 2, 3, 4, 5}, {4, 1, 33}, {2, 3, 64, 67}};
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    uint64_t seed = 0;
    for (const auto& shape : shapes) {
      const at::Tensor x = edge_tensor(shape, ++seed);
      const at::Tensor g = edge_tensor(shape, ++seed);
      at::Tensor f = edge_tensor({shape[1]}, ++seed);
      const Result ours = run(x, f, g, true);
      const Result torch = run(x, f, g, false);
      SCOPED_TRACE("shape " + c10::str(at::IntArrayRef(shape)) + ", threads " +
                   std::to_string(threads));
      EXPECT_TRUE(same_floats(ours.y, torch.y));
      EXPECT_TRUE(same_floats(ours.dx, torch.dx));
      EXPECT_TRUE(same_floats(ours.df, torch.df));
    }
  }
}

// Finite values of many magnitudes, where the factor's gradient depends on the order of
// additions: planes from one vector's length to ones that reach every level of ATen's
// cascade, with and without the input's gradient, alone and on two threads.
TEST(ChannelDivide, FactorGradientSumsInTorchsOrder) {
  const std::vector<std::vector<int64_t>> shapes = {
      {3, 2, 1, 8}, {2, 4, 9},        {4, 2, 7, 7},     {8, 32, 28, 28}, {2, 5, 17, 19},
      {1, 3, 33},   {3, 2, 130, 131}, {2, 2, 400, 401}, {5, 3},          {4, 1, 40}};
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    uint64_t seed = 100;
    for (const auto& shape : shapes) {
      for (bool input_gradient : {true, false}) {
        at::manual_seed(++seed);
        const auto spread = [&](const std::vector<int64_t>& s) {
          return at::randn(s) * at::pow(2.0, at::randint(-12, 12, s).to(at::kFloat));
        };
        const at::Tensor x = spread(shape), g = spread(shape);
        const at::Tensor f = at::rand({shape[1]}) + 0.25;
        at::Tensor df[2];
        at::Tensor dx[2];
        for (int ours : {0, 1}) {
          at::Tensor xa = x.clone().requires_grad_(input_gradient);
          at::Tensor fa = f.clone().requires_grad_(true);
          std::vector<int64_t> broadcast(shape.size(), 1);
          broadcast[1] = shape[1];
          const at::Tensor y = ours ? runtime::divide_channels(xa, fa) : xa / fa.reshape(broadcast);
          y.backward(g);
          df[ours] = fa.grad();
          if (input_gradient) dx[ours] = xa.grad();
        }
        SCOPED_TRACE("shape " + c10::str(at::IntArrayRef(shape)) + ", threads " +
                     std::to_string(threads) + ", input gradient " +
                     std::to_string(input_gradient));
        EXPECT_TRUE(same_floats(df[1], df[0]));
        if (input_gradient) {
          EXPECT_TRUE(same_floats(dx[1], dx[0]));
        }
      }
    }
  }
  at::set_num_threads(2);
}

TEST(ChannelDivide, EveryFactorAgainstEveryValue) {
  // Each special value divided by each special factor, and the gradients through them.
  const auto& special = special_values();
  const int64_t n = static_cast<int64_t>(special.size());
  at::Tensor f = at::tensor(special);
  at::Tensor x = at::tensor(special).repeat({n, 1}).reshape({1, n, n});  // every value per channel
  at::Tensor g = at::ones({1, n, n});
  const Result ours = run(x, f, g, true);
  const Result torch = run(x, f, g, false);
  EXPECT_TRUE(same_floats(ours.y, torch.y));
  EXPECT_TRUE(same_floats(ours.dx, torch.dx));
  EXPECT_TRUE(same_floats(ours.df, torch.df));
}

TEST(ChannelDivide, GradientOnlyWhereAsked) {
  at::Tensor x = at::randn({2, 3, 4}).requires_grad_(true);
  at::Tensor f = at::rand({3}) + 0.5;  // no gradient wanted
  runtime::divide_channels(x, f).sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_TRUE(same_floats(x.grad(), (at::ones({2, 3, 4}) / f.reshape({1, 3, 1}))));
}

TEST(ChannelDivide, RefusesWhatItCannotDivide) {
  EXPECT_ANY_THROW(runtime::divide_channels(at::randn({2, 3}), at::randn({4})));
  EXPECT_ANY_THROW(runtime::divide_channels(at::randn({2, 3}).to(at::kDouble), at::randn({3})));
  EXPECT_ANY_THROW(runtime::divide_channels(at::randn({3}), at::randn({3})));
}

}  // namespace
}  // namespace linquant
