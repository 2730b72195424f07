// The fused learnable kernels against the composite of ATen operators that reference 4.2
// describes (learnable_fake_quantize_composite), on tensors larger than the golden sweep's:
// several threads share the work and ATen's sums run over many vectors. Outputs and the
// gradients of the input, scale and zero point must agree bit for bit, on the kernel set the
// suite runs with (ctest runs it again with LINQUANT_KERNELS=scalar).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "linquant/quant/fake_quantize.h"

namespace linquant {
namespace {

bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined()) return true;
  const at::Tensor x = a.contiguous();
  const at::Tensor y = b.contiguous();
  return x.sizes() == y.sizes() &&
         std::memcmp(x.data_ptr(), y.data_ptr(), static_cast<size_t>(x.numel()) * 4) == 0;
}

struct Result {
  at::Tensor y, grad_x, grad_scale, grad_zero_point;
};

using LearnableFn = at::Tensor (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t,
                                   int64_t, int64_t, QuantizationScheme);

Result run(LearnableFn fn, const at::Tensor& x0, const at::Tensor& scale0,
           const at::Tensor& zero_point0, int64_t axis, const QuantRange& range,
           QuantizationScheme scheme, const at::Tensor& grad_y) {
  const at::Tensor x = x0.clone().requires_grad_(true);
  const at::Tensor scale = scale0.clone().requires_grad_(true);
  // As FakeQuantize does: the zero point learns only for affine.
  const at::Tensor zero_point =
      zero_point0.clone().requires_grad_(scheme == QuantizationScheme::affine);
  const at::Tensor y = fn(x, scale, zero_point, axis, range.quant_min, range.quant_max, scheme);
  y.backward(grad_y);
  return {y.detach(), x.grad(), scale.grad(), zero_point.grad()};
}

struct Shape {
  std::vector<int64_t> sizes;
  int64_t axis;
  int64_t parameters;  // 1, or the size along axis
};

TEST(LearnableFused, MatchesTheCompositeBitForBit) {
  at::set_num_threads(2);
  // Per-tensor spans of 64Ki elements and more stream their outputs (aligned after a peeled
  // head: the odd activation splits at an odd offset between the two threads).
  const Shape shapes[] = {{{8, 16, 32, 32}, -1, 1},  // an activation, 131072 elements
                          {{3, 7, 97, 101}, -1, 1},  // 205737 elements
                          {{64, 32, 3, 3}, 0, 64},   // conv weight, per output channel
                          {{32, 48, 3, 3}, 1, 48},   // transposed conv weight, axis 1
                          {{300, 257}, 0, 300},      // linear weight, odd row length
                          {{16, 8, 5, 5}, 1, 1},     // per channel before the first sizing
                          {{1000}, -1, 1}};
  const QuantRange ranges[] = {QuantRange::qint8(), QuantRange::quint8(), QuantRange::qint4()};
  const QuantizationScheme schemes[] = {QuantizationScheme::symmetric, QuantizationScheme::affine};
  const auto gen = at::make_generator<at::CPUGeneratorImpl>(2026);
  int checked = 0;
  for (const Shape& shape : shapes) {
    for (const QuantRange& range : ranges) {
      for (QuantizationScheme scheme : schemes) {
        SCOPED_TRACE(::testing::Message()
                     << "shape " << at::IntArrayRef(shape.sizes) << " axis " << shape.axis
                     << " range " << range.quant_min << ".." << range.quant_max << " affine "
                     << (scheme == QuantizationScheme::affine));
        const at::Tensor x = at::randn(shape.sizes, gen) * 2.0;
        const at::Tensor grad_y = at::randn(shape.sizes, gen);
        // Scales spread so that some slices saturate and others use few levels; zero points
        // off the integers so that the straight-through round matters.
        const at::Tensor scale = at::rand({shape.parameters}, gen) * 0.08 + 0.004;
        const double middle = range.quant_min < 0 ? 0.0 : (range.quant_max + 1) / 2.0;
        const at::Tensor zero_point = scheme == QuantizationScheme::affine
                                          ? at::rand({shape.parameters}, gen) * 6.0 - 3.0 + middle
                                          : at::full({shape.parameters}, middle);
        const Result want = run(learnable_fake_quantize_composite, x, scale, zero_point, shape.axis,
                                range, scheme, grad_y);
        const Result got =
            run(learnable_fake_quantize, x, scale, zero_point, shape.axis, range, scheme, grad_y);
        EXPECT_TRUE(same_bits(got.y, want.y)) << "output";
        EXPECT_TRUE(same_bits(got.grad_x, want.grad_x)) << "input gradient";
        EXPECT_TRUE(same_bits(got.grad_scale, want.grad_scale)) << "scale gradient";
        EXPECT_TRUE(same_bits(got.grad_zero_point, want.grad_zero_point)) << "zero point gradient";
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 42);
}

TEST(LearnableFused, ParametersWithoutInputGradient) {
  // Weights of a frozen layer: only the quantizer's parameters learn.
  const auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const at::Tensor x = at::randn({32, 9}, gen);
  const at::Tensor grad_y = at::randn({32, 9}, gen);
  for (LearnableFn fn : {learnable_fake_quantize_composite, learnable_fake_quantize}) {
    const at::Tensor scale = at::full({32}, 0.02).requires_grad_(true);
    const at::Tensor zero_point = at::full({32}, 3.0).requires_grad_(true);
    fn(x, scale, zero_point, 0, -8, 7, QuantizationScheme::affine).backward(grad_y);
    EXPECT_TRUE(scale.grad().defined());
    EXPECT_TRUE(zero_point.grad().defined());
  }
}

}  // namespace
}  // namespace linquant
