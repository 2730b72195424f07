// Forward: y = x / f. Backward, as DivBackward0 computes it in torch 1.13:
//   dx = g / f
//   df = sum_to(-g * ((x / f) / f), f's shape)  where x / f is exactly the saved output y
// One pass per channel computes dx and reduces df's terms in registers in ATen's order of
// additions (aten_row_sum.h), so the result is torch's without the terms ever being stored.
// Shapes ATen reduces another way (no spatial plane of a vector's length, a single channel)
// and an ATen whose order differs keep the terms in a tensor for ATen's own sum_to.
#include "channel_divide.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <vector>

#include "aten_row_sum.h"
#include "channel_divide_gradient.h"
#include "channel_planes.h"
#include "linquant/common/error.h"

namespace linquant::runtime {
namespace {

// The loops over one plane, compiled twice (AVX2 and baseline x86-64) with the version
// picked at load time: division throughput, not memory, bounds them.
__attribute__((target_clones("avx2", "default"))) void divide_plane(const float* x,
                                                                   float divisor, float* y,
                                                                   int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / divisor;
}

__attribute__((target_clones("avx2", "default"))) void divide_backward_plane(
    const float* g, const float* y, float divisor, float* dx, float* df, int64_t n) {
  if (dx) {
    for (int64_t i = 0; i < n; ++i) dx[i] = g[i] / divisor;
  }
  if (df) {
    for (int64_t i = 0; i < n; ++i) df[i] = -g[i] * (y[i] / divisor);
  }
}

// Both of ATen's widths, compiled for AVX2 and for baseline x86-64.
__attribute__((target_clones("avx2", "default"))) float divide_backward_plane_sum8(
    const float* g, const float* y, float divisor, float* dx, int64_t n) {
  return divide_backward_plane_sum<8>(
      n, y, divisor, dx, [&](int64_t i, auto& v) { load_lanes(g + i, v); },
      [&](int64_t i) { return g[i]; });
}

__attribute__((target_clones("avx2", "default"))) float divide_backward_plane_sum16(
    const float* g, const float* y, float divisor, float* dx, int64_t n) {
  return divide_backward_plane_sum<16>(
      n, y, divisor, dx, [&](int64_t i, auto& v) { load_lanes(g + i, v); },
      [&](int64_t i) { return g[i]; });
}

using PlaneSum = float (*)(const float*, const float*, float, float*, int64_t);

// The plane kernel that reduces the factor's gradient in registers in ATen's order, or null
// where it cannot (see the top of the file): only shapes ATen sums plane by plane with its
// vector loop, and only with an order found to be ATen's.
PlaneSum plane_sum_in_atens_order(const at::Tensor& g, const ChannelPlanes& p) {
  const int64_t lanes = aten_sum_lanes();
  if (lanes == 0 || g.dim() < 3 || p.inner < lanes || p.channels < 2) return nullptr;
  return lanes == 8 ? divide_backward_plane_sum8 : divide_backward_plane_sum16;
}

class ChannelDivide : public torch::autograd::Function<ChannelDivide> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& factor) {
    const at::Tensor x = input.contiguous();
    const at::Tensor f = factor.contiguous();
    at::Tensor y = at::empty_like(x);
    const ChannelPlanes p(x);
    const float* xp = x.data_ptr<float>();
    const float* fp = f.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    for_each_plane(p, [&](int64_t c, int64_t offset) {
      divide_plane(xp + offset, fp[c], yp + offset, p.inner);
    });
    ctx->save_for_backward({y, f});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& y = saved[0];
    const at::Tensor& f = saved[1];
    const at::Tensor g = grads[0].contiguous();
    const bool want_x = ctx->needs_input_grad(0);
    const bool want_f = ctx->needs_input_grad(1);
    at::Tensor grad_x = want_x ? at::empty_like(g) : at::Tensor();
    const ChannelPlanes p(g);
    const float* gp = g.data_ptr<float>();
    const float* yp = y.data_ptr<float>();
    const float* fp = f.data_ptr<float>();
    float* dxp = want_x ? grad_x.data_ptr<float>() : nullptr;
    const PlaneSum plane_sum = want_f ? plane_sum_in_atens_order(g, p) : nullptr;
    if (plane_sum) {
      at::Tensor grad_f = at::empty_like(f);
      float* dfp = grad_f.data_ptr<float>();
      // ATen adds the planes' sums to a zero in batch order.
      for_each_channel(p, [&](int64_t c) {
        float sum = 0.0f;
        for (int64_t n = 0; n < p.outer; ++n) {
          const int64_t offset = p.offset(n, c);
          sum += plane_sum(gp + offset, yp + offset, fp[c], dxp ? dxp + offset : nullptr, p.inner);
        }
        dfp[c] = sum;
      });
      return {grad_x, grad_f};
    }
    at::Tensor grad_f_elements = want_f ? at::empty_like(g) : at::Tensor();
    float* dfp = want_f ? grad_f_elements.data_ptr<float>() : nullptr;
    for_each_plane(p, [&](int64_t c, int64_t offset) {
      divide_backward_plane(gp + offset, yp + offset, fp[c], dxp ? dxp + offset : nullptr,
                            dfp ? dfp + offset : nullptr, p.inner);
    });
    at::Tensor grad_f;
    if (want_f) {
      std::vector<int64_t> broadcast_shape(static_cast<size_t>(g.dim()), 1);
      broadcast_shape[1] = p.channels;
      grad_f = at::sum_to(grad_f_elements, broadcast_shape).reshape(f.sizes());
    }
    return {grad_x, grad_f};
  }
};

}  // namespace

at::Tensor divide_channels(const at::Tensor& x, const at::Tensor& factor) {
  if (x.scalar_type() != at::kFloat || factor.scalar_type() != at::kFloat || x.dim() < 2 ||
      factor.dim() != 1 || factor.size(0) != x.size(1)) {
    throw Error("divide_channels needs a float32 [N, C, ...] tensor and C float32 factors");
  }
  return ChannelDivide::apply(x, factor);
}

}  // namespace linquant::runtime
