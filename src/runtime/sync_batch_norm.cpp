// Training-mode BatchNorm with the statistics of the whole data-parallel batch (torch's
// SyncBatchNorm semantics). Forward: each rank's per-channel sum(x) and sum(x^2), accumulated
// in float64, are summed over the ranks by the reducer, giving the global mean and biased
// variance; the running statistics move with those (the variance unbiased by the global
// count). Backward: the two per-channel sums the input gradient needs, sum(dy) and
// sum(dy * (x - mean)), are summed over the ranks the same way; the weight and bias gradients
// stay local (DataParallel averages them with the others). Float64 sums of float32 values do
// not depend on how the batch is split (to far below float32's resolution), so any split of a
// batch over ranks, one rank included, gives the same statistics. The sums are made in one
// pass over the float32 data each way, without float64 copies of the activations.
#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <string>
#include <vector>

#include "channel_planes.h"
#include "linquant/common/error.h"
#include "run_context.h"

namespace linquant::runtime {
namespace {

// Per channel: sum of x into sums[c], sum of x^2 into sums[C + c], in float64, one pass over x
// (the float64 copies of x a composite would make are never written). Channels are
// independent, so any thread split gives the same sums.
void channel_moments(const at::Tensor& x, double* sums) {
  const ChannelPlanes p(x);
  const float* data = x.data_ptr<float>();
  for_each_channel(p, [&](int64_t c) {
    double sum = 0, squares = 0;
    for (int64_t n = 0; n < p.outer; ++n) {
      const float* v = data + p.offset(n, c);
#pragma omp simd reduction(+ : sum, squares)
      for (int64_t i = 0; i < p.inner; ++i) {
        const double d = v[i];
        sum += d;
        squares += d * d;
      }
    }
    sums[c] = sum;
    sums[p.channels + c] = squares;
  });
}

// Per channel: sum(dy) into sums[c] and sum(dy * (x - mean)) into sums[C + c], float64, one
// pass (x - mean rounded to float first, as the float composite computes it).
void gradient_moments(const at::Tensor& x, const at::Tensor& dy, const float* mean, double* sums) {
  const ChannelPlanes p(x);
  const float* xs = x.data_ptr<float>();
  const float* gs = dy.data_ptr<float>();
  for_each_channel(p, [&](int64_t c) {
    double sum = 0, product = 0;
    const float m = mean[c];
    for (int64_t n = 0; n < p.outer; ++n) {
      const float* xv = xs + p.offset(n, c);
      const float* gv = gs + p.offset(n, c);
#pragma omp simd reduction(+ : sum, product)
      for (int64_t i = 0; i < p.inner; ++i) {
        const double g = gv[i];
        sum += g;
        product += g * static_cast<double>(xv[i] - m);
      }
    }
    sums[c] = sum;
    sums[p.channels + c] = product;
  });
}

// dx = ((dy - mean_dy) - (x - mean) * k) * scale per channel, in float, in one pass: the same
// operations in the same order as the tensor expression it replaces.
at::Tensor input_gradient(const at::Tensor& x, const at::Tensor& dy, const float* mean,
                          const float* mean_dy, const float* k, const float* scale) {
  const ChannelPlanes p(x);
  at::Tensor dx = at::empty_like(x);
  const float* xs = x.data_ptr<float>();
  const float* gs = dy.data_ptr<float>();
  float* out = dx.data_ptr<float>();
  for_each_plane(p, [&](int64_t c, int64_t o) {
    const float m = mean[c], md = mean_dy[c], kc = k[c], sc = scale[c];
    for (int64_t i = 0; i < p.inner; ++i) {
      out[o + i] = ((gs[o + i] - md) - (xs[o + i] - m) * kc) * sc;
    }
  });
  return dx;
}

class SyncBatchNormFunction : public torch::autograd::Function<SyncBatchNormFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& weight, const at::Tensor& bias,
                            const at::Tensor& running_mean, const at::Tensor& running_var,
                            double eps, double momentum, const BatchStatsReducer* reduce) {
    if (input.scalar_type() != at::kFloat) {
      throw Error("synchronized BatchNorm takes float32 inputs, not " +
                  std::string(c10::toString(input.scalar_type())));
    }
    const at::Tensor x = input.contiguous();
    const int64_t channels = x.size(1);
    const double count = static_cast<double>(x.numel() / channels);
    at::Tensor sums = at::empty({2 * channels + 1}, at::kDouble);
    channel_moments(x, sums.data_ptr<double>());
    sums.data_ptr<double>()[2 * channels] = count;
    (*reduce)(sums);
    const double total = sums[2 * channels].item<double>();
    const at::Tensor mean = sums.slice(0, 0, channels) / total;
    const at::Tensor var =
        (sums.slice(0, channels, 2 * channels) / total - mean * mean).clamp_min(0);
    if (running_mean.defined()) {
      const at::NoGradGuard no_grad;
      const double unbias = total > 1.0 ? total / (total - 1.0) : 1.0;
      running_mean.mul_(1.0 - momentum).add_(mean.to(at::kFloat), momentum);
      running_var.mul_(1.0 - momentum).add_((var * unbias).to(at::kFloat), momentum);
    }
    const at::Tensor mean32 = mean.to(at::kFloat);
    const at::Tensor var32 = var.to(at::kFloat);
    const at::Tensor invstd = at::rsqrt(var32 + eps);
    ctx->save_for_backward({x, weight, mean32, invstd});
    ctx->saved_data["total"] = total;
    ctx->saved_data["reduce"] = reinterpret_cast<int64_t>(reduce);
    ctx->saved_data["has_bias"] = bias.defined();
    return at::batch_norm(x, weight, bias, mean32, var32, /*training=*/false, 0.0, eps, true);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& mean = saved[2];
    const at::Tensor& invstd = saved[3];
    const double total = ctx->saved_data["total"].toDouble();
    const auto* reduce =
        reinterpret_cast<const BatchStatsReducer*>(ctx->saved_data["reduce"].toInt());
    const at::Tensor g = grads[0].to(at::kFloat).contiguous();
    const int64_t channels = x.size(1);
    // This rank's own sums give the parameters' gradients (DataParallel averages them with the
    // others); the reducer turns the copy into the sums over all ranks.
    const at::Tensor local = at::empty({2 * channels}, at::kDouble);
    gradient_moments(x, g, mean.data_ptr<float>(), local.data_ptr<double>());
    at::Tensor sums = local.clone();
    (*reduce)(sums);
    const at::Tensor mean_dy = (sums.slice(0, 0, channels) / total).to(at::kFloat);
    const at::Tensor mean_dy_xmu = (sums.slice(0, channels, 2 * channels) / total).to(at::kFloat);
    const at::Tensor scale = (weight.defined() ? invstd * weight : invstd).contiguous();
    const at::Tensor k = (invstd * invstd * mean_dy_xmu).contiguous();
    const at::Tensor grad_input =
        input_gradient(x, g, mean.data_ptr<float>(), mean_dy.data_ptr<float>(), k.data_ptr<float>(),
                       scale.data_ptr<float>());
    const at::Tensor grad_weight =
        weight.defined() ? local.slice(0, channels, 2 * channels).to(at::kFloat) * invstd
                         : at::Tensor();
    const at::Tensor grad_bias = ctx->saved_data["has_bias"].toBool()
                                     ? local.slice(0, 0, channels).to(at::kFloat)
                                     : at::Tensor();
    return {grad_input, grad_weight, grad_bias, {}, {}, {}, {}, {}};
  }
};

}  // namespace

at::Tensor sync_batch_norm(const at::Tensor& x, const BatchNormState& state, double momentum,
                           const BatchStatsReducer& reduce) {
  return SyncBatchNormFunction::apply(x, state.weight, state.bias, state.running_mean,
                                      state.running_var, state.eps, momentum, &reduce);
}

}  // namespace linquant::runtime
