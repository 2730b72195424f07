// The fused learnable fake quantization. Forward is one pass of the kernels. Backward is one
// pass that writes the per-element terms autograd forms for the composite
// (learnable_fake_quantize.cpp), after which ATen's sum_to reduces each term to its
// parameter's shape exactly as autograd reduces the composite's: ATen's summation order
// follows the CPU's vector width and the thread count, so the sums are left to ATen and only
// the element-wise work is fused.
#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <vector>

#include "learnable_arithmetic.h"
#include "linquant/quant/fake_quantize.h"
#include "linquant/quant/kernel_dispatch.h"
#include "linquant/quant/parallel.h"

namespace linquant {
namespace {

// body(grid, offset, count) over the spans of x that share one parameter pair, in parallel:
// the whole tensor when there is one pair, else rows of `inner` elements along the axis.
template <typename Body>
void for_each_span(const at::Tensor& x, int64_t axis, const at::Tensor& scale,
                   const at::Tensor& zero_point, const LearnableGrid& base, const Body& body) {
  const float* s = scale.data_ptr<float>();
  const float* z = zero_point.data_ptr<float>();
  const auto grid_of = [&](int64_t p) {
    LearnableGrid grid = base;
    grid.scale = s[p];
    grid.zero_point = z[p];
    return grid;
  };
  if (scale.numel() == 1) {
    const LearnableGrid grid = grid_of(0);
    at::parallel_for(0, x.numel(), kParallelGrain,
                     [&](int64_t begin, int64_t end) { body(grid, begin, end - begin); });
    return;
  }
  const int64_t channels = x.size(axis);
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < x.dim(); ++d) inner *= x.size(d);
  parallel_for_rows(x.numel() / inner, inner,
                    [&](int64_t row) { body(grid_of(row % channels), row * inner, inner); });
}

at::Tensor sum_terms(const at::Tensor& a, const at::Tensor& b, at::IntArrayRef shape) {
  return at::sum_to(a, shape) + at::sum_to(b, shape);
}

class LearnableFakeQuantizeFunction
    : public torch::autograd::Function<LearnableFakeQuantizeFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& scale, const at::Tensor& zero_point, int64_t axis,
                            int64_t quant_min, int64_t quant_max, bool symmetric) {
    const at::Tensor x = input.contiguous();
    const double g = learnable::gradient_scale(x, axis, quant_max);
    // The parameters' values as the composite uses them (grad mode is off in here).
    const at::Tensor s = learnable::scale_gradient(scale.reshape({-1}), g).contiguous();
    at::Tensor z = learnable::round_pass(zero_point.reshape({-1}));
    if (!symmetric) z = learnable::scale_gradient(z, g);
    z = z.contiguous();
    LearnableGrid grid;
    grid.with_zero_point = learnable::zero_point_enters(
        symmetric ? QuantizationScheme::symmetric : QuantizationScheme::affine, quant_min);
    grid.quant_min = static_cast<float>(quant_min);
    grid.quant_max = static_cast<float>(quant_max);

    at::Tensor y = at::empty_like(x);
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    for_each_span(x, axis, s, z, grid, [&](const LearnableGrid& span, int64_t at, int64_t n) {
      learnable_forward_span(xp + at, yp + at, n, span);
    });

    ctx->save_for_backward({x, s, z});
    ctx->saved_data["axis"] = axis;
    ctx->saved_data["g"] = g;
    ctx->saved_data["with_zero_point"] = grid.with_zero_point;
    ctx->saved_data["symmetric"] = symmetric;
    ctx->saved_data["quant_min"] = quant_min;
    ctx->saved_data["quant_max"] = quant_max;
    // The shape autograd reduces the composite's terms to: the parameters along the axis.
    ctx->saved_data["slice_shape"] = learnable::along_axis(scale, axis, x.dim()).sizes().vec();
    ctx->saved_data["scale_shape"] = scale.sizes().vec();
    ctx->saved_data["zero_point_shape"] = zero_point.sizes().vec();
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& s = saved[1];
    const at::Tensor& z = saved[2];
    const auto& data = ctx->saved_data;
    LearnableGrid grid;
    grid.with_zero_point = data.at("with_zero_point").toBool();
    grid.quant_min = static_cast<float>(data.at("quant_min").toInt());
    grid.quant_max = static_cast<float>(data.at("quant_max").toInt());
    const double g = data.at("g").toDouble();
    const std::vector<int64_t> slice_shape = data.at("slice_shape").toIntVector();

    const at::Tensor grad_y = grads[0].to(at::kFloat).contiguous();
    const auto output_if = [&](bool needed) { return needed ? at::empty_like(x) : at::Tensor(); };
    const bool zero_point_learns = grid.with_zero_point && ctx->needs_input_grad(2);
    const at::Tensor grad_x = output_if(ctx->needs_input_grad(0));
    const at::Tensor from_product = output_if(ctx->needs_input_grad(1));
    const at::Tensor from_quotient = output_if(ctx->needs_input_grad(1));
    const at::Tensor from_sum = output_if(zero_point_learns);
    const at::Tensor from_difference = output_if(zero_point_learns);
    const auto pointer = [](const at::Tensor& t) {
      return t.defined() ? t.data_ptr<float>() : nullptr;
    };
    const LearnableGradients out{pointer(grad_x), pointer(from_product), pointer(from_quotient),
                                 pointer(from_sum), pointer(from_difference)};
    const float* xp = x.data_ptr<float>();
    const float* gp = grad_y.data_ptr<float>();
    for_each_span(x, data.at("axis").toInt(), s, z, grid,
                  [&](const LearnableGrid& span, int64_t at, int64_t n) {
                    learnable_backward_span(xp + at, gp + at, n, span, out.shifted(at));
                  });

    torch::autograd::variable_list result(7);
    result[0] = grad_x;
    if (from_product.defined()) {
      result[1] = (sum_terms(from_product, from_quotient, slice_shape) * g)
                      .reshape(data.at("scale_shape").toIntVector());
    }
    if (zero_point_learns) {
      at::Tensor grad = sum_terms(from_sum, from_difference, slice_shape);
      if (!data.at("symmetric").toBool()) grad = grad * g;
      result[2] = grad.reshape(data.at("zero_point_shape").toIntVector());
    }
    return result;
  }
};

// What the kernels cover: float32 values with float32 parameters, one pair or one per slice.
bool fusable(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& zero_point,
             int64_t axis) {
  if (x.scalar_type() != at::kFloat || scale.scalar_type() != at::kFloat ||
      zero_point.scalar_type() != at::kFloat || x.dim() == 0 || x.numel() == 0 ||
      scale.numel() != zero_point.numel()) {
    return false;
  }
  if (scale.numel() == 1) return true;
  return axis >= 0 && axis < x.dim() && scale.numel() == x.size(axis);
}

}  // namespace

at::Tensor learnable_fake_quantize(const at::Tensor& x, const at::Tensor& scale,
                                   const at::Tensor& zero_point, int64_t axis, int64_t quant_min,
                                   int64_t quant_max, QuantizationScheme scheme) {
  if (!fusable(x, scale, zero_point, axis)) {
    return learnable_fake_quantize_composite(x, scale, zero_point, axis, quant_min, quant_max,
                                             scheme);
  }
  return LearnableFakeQuantizeFunction::apply(x, scale, zero_point, axis, quant_min, quant_max,
                                              scheme == QuantizationScheme::symmetric);
}

}  // namespace linquant
