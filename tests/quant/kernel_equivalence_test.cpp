// The AVX2 kernels against the scalar reference, bit for bit: every length up to a few
// vectors (so every tail length), random values mixed with ties, saturation, signed zeros,
// denormals, NaN and infinities, over many grids. The reference itself is checked against
// PyTorch by the golden sweep, which CTest also replays with LINQUANT_KERNELS=scalar.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "float_bits.h"
#include "linquant/quant/fake_quantize_kernel.h"
#include "linquant/quant/kernel_dispatch.h"
#include "linquant/quant/learnable_kernel.h"

namespace linquant {
namespace {

// Restores the process-wide choice when a test ends.
class Avx2Kernels : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kernel_isa_available(KernelIsa::avx2)) GTEST_SKIP() << "this CPU has no AVX2";
    saved_ = kernel_isa();
    set_kernel_isa(KernelIsa::avx2);
  }
  void TearDown() override { set_kernel_isa(saved_); }
  KernelIsa saved_ = KernelIsa::scalar;
};

std::vector<float> tricky_values(int64_t n, float scale, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 40.0f * scale);
  std::uniform_int_distribution<int> pick(0, 15);
  std::uniform_int_distribution<int> level(-300, 300);
  const float specials[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-40f, -1e-40f, 3e38f,
                            -3e38f};
  std::vector<float> x(n);
  for (auto& v : x) {
    const int kind = pick(rng);
    if (kind == 0) {
      v = specials[level(rng) & 7];
    } else if (kind <= 3) {
      v = (static_cast<float>(level(rng)) + 0.5f) * scale;  // ties after dividing by scale
    } else {
      v = normal(rng);
    }
  }
  return x;
}

struct Grid {
  QParam qparam;
  int64_t quant_min, quant_max;
};

TEST_F(Avx2Kernels, FakeQuantizeMatchesReferenceBitForBit) {
  std::mt19937 rng(7);
  const Grid grids[] = {{{0.1f, 0}, -128, 127},      {{0.0371f, 131}, 0, 255},
                        {{1.0f, 0}, -8, 7},          {{2.5e-3f, 3}, 0, 15},
                        {{kQParamsEps, 0}, -128, 127}, {{1e6f, -5}, -128, 127}};
  for (const Grid& grid : grids) {
    for (int64_t n = 0; n <= 80; ++n) {
      const std::vector<float> x = tricky_values(n + 1000 * (n == 80), grid.qparam.scale, rng);
      const auto size = static_cast<int64_t>(x.size());
      std::vector<float> want(size), got(size);
      std::vector<char> want_mask(size, 2), got_mask(size, 2);
      fake_quantize_reference(x.data(), want.data(), reinterpret_cast<bool*>(want_mask.data()),
                              size, grid.qparam, grid.quant_min, grid.quant_max);
      fake_quantize_span(x.data(), got.data(), reinterpret_cast<bool*>(got_mask.data()), size,
                         grid.qparam, grid.quant_min, grid.quant_max);
      for (int64_t i = 0; i < size; ++i) {
        ASSERT_EQ(float_bits(got[i]), float_bits(want[i]))
            << "x=" << x[i] << " n=" << size << " i=" << i << " scale=" << grid.qparam.scale;
        ASSERT_EQ(got_mask[i], want_mask[i]) << "x=" << x[i] << " i=" << i;
      }
    }
  }
}

TEST_F(Avx2Kernels, NullMaskWritesOnlyOutputs) {
  std::mt19937 rng(3);
  const std::vector<float> x = tricky_values(37, 0.05f, rng);
  std::vector<float> want(x.size()), got(x.size());
  fake_quantize_reference(x.data(), want.data(), nullptr, 37, {0.05f, 0}, -128, 127);
  fake_quantize_span(x.data(), got.data(), nullptr, 37, {0.05f, 0}, -128, 127);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(float_bits(got[i]), float_bits(want[i])) << i;
}

TEST_F(Avx2Kernels, FiniteMinMaxMatchesReference) {
  std::mt19937 rng(11);
  for (int64_t n = 0; n <= 100; ++n) {
    for (float scale : {1e-3f, 1.0f, 1e30f}) {
      const std::vector<float> x = tricky_values(n, scale, rng);
      float want_lo = 42.0f, want_hi = 42.0f, got_lo = 42.0f, got_hi = 42.0f;
      const bool want = finite_min_max(x.data(), n, &want_lo, &want_hi);
      const bool got = finite_min_max_span(x.data(), n, &got_lo, &got_hi);
      ASSERT_EQ(got, want) << "n=" << n;
      // Compared by value: with both +0 and -0 in the data, which zero is reported depends
      // on visiting order, and every qparam computed from either is the same.
      EXPECT_EQ(got_lo, want_lo) << "n=" << n;
      EXPECT_EQ(got_hi, want_hi) << "n=" << n;
    }
  }
  const float only_special[] = {NAN, INFINITY, -INFINITY, NAN, NAN, INFINITY, NAN, NAN, NAN};
  float lo = 5.0f, hi = 6.0f;
  EXPECT_FALSE(finite_min_max_span(only_special, 9, &lo, &hi));
  EXPECT_EQ(lo, 5.0f);
  EXPECT_EQ(hi, 6.0f);
}

TEST_F(Avx2Kernels, MaskedGradientMatchesReference) {
  std::mt19937 rng(5);
  for (int64_t n = 0; n <= 40; ++n) {
    const std::vector<float> grad = tricky_values(n, 1.0f, rng);
    std::vector<char> mask(n);
    for (auto& m : mask) m = static_cast<char>(rng() & 1);
    std::vector<float> want(n), got(n);
    const auto* m = reinterpret_cast<const bool*>(mask.data());
    masked_gradient_reference(grad.data(), m, want.data(), n);
    masked_gradient_span(grad.data(), m, got.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(float_bits(got[i]), float_bits(want[i])) << grad[i];
  }
}

TEST_F(Avx2Kernels, ReluKernelsMatchReference) {
  std::mt19937 rng(13);
  for (int64_t n = 0; n <= 160; ++n) {
    // ReLU for the first half, ReLU6 (hardtanh to [0, 6]) for the second.
    const float cap = n <= 80 ? kReluUncapped : 6.0f;
    const std::vector<float> x = tricky_values(n % 81 + 1000 * (n % 81 == 80), 0.05f, rng);
    const auto size = static_cast<int64_t>(x.size());
    std::vector<float> want(size), got(size);
    std::vector<uint8_t> want_state(size, 9), got_state(size, 9);
    relu_fake_quantize_reference(x.data(), want.data(), want_state.data(), size, cap,
                                 {0.02f, 3}, 0, 255);
    relu_fake_quantize_span(x.data(), got.data(), got_state.data(), size, cap, {0.02f, 3}, 0,
                            255);
    for (int64_t i = 0; i < size; ++i) {
      ASSERT_EQ(float_bits(got[i]), float_bits(want[i])) << "x=" << x[i] << " i=" << i;
      ASSERT_EQ(got_state[i], want_state[i]) << "x=" << x[i] << " i=" << i;
    }
    float want_lo = 7.0f, want_hi = 7.0f, got_lo = 7.0f, got_hi = 7.0f;
    ASSERT_EQ(relu_finite_min_max_span(x.data(), size, cap, &got_lo, &got_hi),
              relu_finite_min_max(x.data(), size, cap, &want_lo, &want_hi)) << n;
    EXPECT_EQ(got_lo, want_lo) << n;
    EXPECT_EQ(got_hi, want_hi) << n;
    std::vector<float> grad = tricky_values(size, 1.0f, rng);
    std::vector<float> want_grad(size), got_grad(size);
    relu_masked_gradient_reference(grad.data(), want_state.data(), want_grad.data(), size);
    relu_masked_gradient_span(grad.data(), want_state.data(), got_grad.data(), size);
    for (int64_t i = 0; i < size; ++i) {
      ASSERT_EQ(float_bits(got_grad[i]), float_bits(want_grad[i])) << grad[i] << " state " << int(want_state[i]);
    }
  }
}

// Equal bits, or both NaN: the learnable arithmetic turns infinities into NaN (inf - inf in
// the straight-through round), whose payload follows operand order, as in ATen.
bool same_float(float a, float b) {
  return float_bits(a) == float_bits(b) || (std::isnan(a) && std::isnan(b));
}

TEST_F(Avx2Kernels, LearnableKernelsMatchReference) {
  std::mt19937 rng(17);
  // scale, zero point, whether it enters, range: signed symmetric, unsigned symmetric, affine
  // (the zero point after the gradient identities may be off the integers by an ulp).
  const LearnableGrid grids[] = {{0.1f, 0.0f, false, -128.0f, 127.0f},
                                 {0.0371f, 128.0f, true, 0.0f, 255.0f},
                                 {0.25f, 3.0000002f, true, 0.0f, 15.0f},
                                 {1.0f, 0.0f, false, -8.0f, 7.0f},
                                 {kQParamsEps, -5.0f, true, -128.0f, 127.0f}};
  for (const LearnableGrid& grid : grids) {
    for (int64_t n = 0; n <= 40; ++n) {
      const std::vector<float> x = tricky_values(n, grid.scale, rng);
      const std::vector<float> grad_y = tricky_values(n, 1.0f, rng);
      std::vector<float> want_y(n), got_y(n);
      learnable_forward_reference(x.data(), want_y.data(), n, grid);
      learnable_forward_span(x.data(), got_y.data(), n, grid);
      std::vector<std::vector<float>> want(5, std::vector<float>(n));
      std::vector<std::vector<float>> got(5, std::vector<float>(n));
      const auto outputs = [](std::vector<std::vector<float>>& v) {
        return LearnableGradients{v[0].data(), v[1].data(), v[2].data(), v[3].data(), v[4].data()};
      };
      learnable_backward_reference(x.data(), grad_y.data(), n, grid, outputs(want));
      learnable_backward_span(x.data(), grad_y.data(), n, grid, outputs(got));
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_TRUE(same_float(got_y[i], want_y[i]))
            << "y: x=" << x[i] << " i=" << i << " scale=" << grid.scale;
        for (size_t k = 0; k < 5; ++k) {
          ASSERT_TRUE(same_float(got[k][i], want[k][i]))
              << "gradient output " << k << ": x=" << x[i] << " grad=" << grad_y[i] << " i=" << i
              << " scale=" << grid.scale;
        }
      }
    }
  }
}

TEST(KernelDispatch, StartsWithTheEnvironmentsChoice) {
  const char* forced = std::getenv("LINQUANT_KERNELS");
  const bool scalar = (forced && std::string(forced) == "scalar") ||
                      !kernel_isa_available(KernelIsa::avx2);
  EXPECT_EQ(kernel_isa(), scalar ? KernelIsa::scalar : KernelIsa::avx2);
}

TEST(KernelDispatch, ScalarIsAlwaysAvailableAndSelectable) {
  const KernelIsa saved = kernel_isa();
  set_kernel_isa(KernelIsa::scalar);
  EXPECT_EQ(kernel_isa(), KernelIsa::scalar);
  EXPECT_STREQ(to_string(KernelIsa::scalar), "scalar");
  set_kernel_isa(saved);
}

}  // namespace
}  // namespace linquant
