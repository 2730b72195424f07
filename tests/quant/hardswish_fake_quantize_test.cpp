// FakeQuantize::forward_after_hardswish against the composite it replaces,
// forward(at::hardswish(x)) with ATen's own hardswish and HardswishBackward: outputs,
// gradients, observer state and qparams must agree bit for bit, for every observer, scheme and
// activation dtype, on 1, 2 and 3 intra-op threads. ATen's hardswish_backward gives x == 3 and
// NaN different gradients on its vector and scalar paths, so the inputs put them everywhere,
// the ends of ATen's per-thread chunks included. CTest runs this suite with the AVX2 and with
// the scalar fake-quant kernels, and once more with ATen on its baseline kernels (another
// vector width, so other tails).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <cmath>
#include <string>

#include "../../src/quant/aten_loop_split.h"
#include "fused_quantizer_cases.h"
#include "linquant/quant/fake_quantize.h"
#include "tensor_bits.h"

namespace linquant {
namespace {

// Random values around hardswish's bends, with x == 3 at every fifth element and NaN at every
// eleventh (from 3), and -3, zeros of both signs, infinities and huge values up front.
at::Tensor tricky_input(int64_t seed, int64_t n) {
  at::manual_seed(seed);
  at::Tensor x = at::randn({n}) * 4.0;
  x.index_put_({at::arange(0, n, 5)}, 3.0);
  x.index_put_({at::arange(3, n, 11)}, NAN);
  const float special[] = {-3.0f, -0.0f, 0.0f, NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 3.0f};
  for (int64_t i = 0; i < 9 && i < n; ++i) x[i] = special[i];
  return x;
}

class ThreadCount {
 public:
  explicit ThreadCount(int threads) : saved_(at::get_num_threads()) {
    at::set_num_threads(threads);
  }
  ~ThreadCount() { at::set_num_threads(saved_); }

 private:
  int saved_;
};

TEST(HardswishFakeQuantize, ProbeFindsAtensVectorLoop) {
  // 16: AVX2 or baseline ATen kernels; 32: AVX-512. 0 would leave every call unfused.
  const int64_t step = aten_vector_loop_step();
  EXPECT_TRUE(step == 16 || step == 32) << step;
}

TEST(HardswishFakeQuantize, SplitMatchesAtensChunksAndTails) {
  // Hand-computed: 100003 elements on 2 threads are chunks of 50002; with a step of 16 the
  // last 2 of the first chunk and the last 1 of the second are scalar.
  const AtenLoopSplit split(100003, 16, 2);
  EXPECT_FALSE(split.scalar_at(49999));
  EXPECT_TRUE(split.scalar_at(50000));
  EXPECT_TRUE(split.scalar_at(50001));
  EXPECT_FALSE(split.scalar_at(50002));
  EXPECT_FALSE(split.scalar_at(100001));
  EXPECT_TRUE(split.scalar_at(100002));
  // At most 32768 elements stay one chunk; 32783 on 2 threads make chunks of 16392 and 16391
  // (tails of 8 and 7); 3 threads on 70000 make 3 chunks of 23334.
  EXPECT_FALSE(AtenLoopSplit(32768, 16, 2).scalar_at(16384));
  const AtenLoopSplit just_over(32783, 16, 2);
  EXPECT_FALSE(just_over.scalar_at(16383));
  EXPECT_TRUE(just_over.scalar_at(16384));
  EXPECT_FALSE(just_over.scalar_at(32775));
  EXPECT_TRUE(just_over.scalar_at(32776));
  EXPECT_TRUE(AtenLoopSplit(70000, 32, 3).scalar_at(23333));
  EXPECT_FALSE(AtenLoopSplit(70000, 32, 3).scalar_at(23334));
}

TEST(HardswishFakeQuantize, MatchesHardswishThenFakeQuantizeBitForBit) {
  ASSERT_GT(aten_vector_loop_step(), 0);
  for (const FakeQuantizeOptions& options : fused_quantizer_variants()) {
    FakeQuantize fused(options);
    FakeQuantize composite(options);
    for (int threads = 1; threads <= 3; ++threads) {
      const ThreadCount thread_count(threads);
      // One vector short of a step, a chunk boundary on 2 and 3 threads, odd tails everywhere.
      for (const int64_t n : {int64_t{37}, int64_t{100003}, int64_t{70001}, int64_t{4096}}) {
        const at::Tensor x = tricky_input(n + threads, n).reshape({1, -1, 1});
        const std::string what = std::to_string(threads) + " threads, " + std::to_string(n) +
                                 " elements, " + fused->options().describe();
        const at::Tensor a = x.clone().requires_grad_(true);
        const at::Tensor b = x.clone().requires_grad_(true);
        const at::Tensor ya = fused->forward_after_hardswish(a);
        const at::Tensor yb = composite->forward(at::hardswish(b));
        ASSERT_NE(ya.grad_fn()->name().find("HardswishFakeQuantize"), std::string::npos)
            << ya.grad_fn()->name();
        expect_same_bits(ya, yb, what + " output");
        at::Tensor grad = at::randn(ya.sizes());
        grad.view({-1})[9] = NAN;
        const at::Tensor ga = torch::autograd::grad({ya}, {a}, {grad})[0];
        const at::Tensor gb = torch::autograd::grad({yb}, {b}, {grad})[0];
        expect_same_bits(ga, gb, what + " gradient");
        expect_same_state(fused, composite, what);
      }
    }
  }
}

TEST(HardswishFakeQuantize, TheTwoGradientRulesReallyDifferHere) {
  // The test above can tell a wrong split only if ATen's two rules disagree on its inputs:
  // x == 3 in a tail must scale the gradient, in a vector group pass it.
  const int64_t step = aten_vector_loop_step();
  ASSERT_GT(step, 0);
  const int64_t n = 2 * step + 1;
  const at::Tensor dx = at::hardswish_backward(at::ones({n}), at::full({n}, 3.0));
  EXPECT_EQ(dx[0].item<float>(), 1.0f);
  EXPECT_EQ(dx[n - 1].item<float>(), 1.5f);
}

TEST(HardswishFakeQuantize, UnfusableCallsTakeTheComposite) {
  FakeQuantize fused(FakeQuantizeOptions{});
  FakeQuantize composite(FakeQuantizeOptions{});
  // Not contiguous: the composite's own path.
  const at::Tensor x = tricky_input(5, 600).reshape({20, 30}).t();
  expect_same_bits(fused->forward_after_hardswish(x), composite->forward(at::hardswish(x)),
                   "transposed input");
  // Fake quant off: hardswish(x) itself, observed.
  fused->disable_fake_quant();
  expect_same_bits(fused->forward_after_hardswish(x), at::hardswish(x), "fake quant off");
  EXPECT_TRUE(fused->activation_post_process->has_observed());
}

}  // namespace
}  // namespace linquant
