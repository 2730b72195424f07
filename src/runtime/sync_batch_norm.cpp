// Training-mode BatchNorm with the statistics of the whole data-parallel batch (torch's
// SyncBatchNorm semantics). Forward: each rank's per-channel sum(x) and sum(x^2), accumulated
// in float64, are summed over the ranks by the reducer, giving the global mean and biased
// variance; the running statistics move with those (the variance unbiased by the global
// count). Backward: the two per-channel sums the input gradient needs, sum(dy) and
// sum(dy * (x - mean)), are summed over the ranks the same way; the weight and bias gradients
// stay local (DataParallel averages them with the others). Float64 sums of float32 values do
// not depend on how the batch is split (to far below float32's resolution), so any split of a
// batch over ranks, one rank included, gives the same statistics.
#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <vector>

#include "run_context.h"

namespace linquant::runtime {
namespace {

std::vector<int64_t> reduced_dims(const at::Tensor& x) {
  std::vector<int64_t> dims = {0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

std::vector<int64_t> channel_shape(const at::Tensor& x) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[1] = x.size(1);
  return shape;
}

class SyncBatchNormFunction : public torch::autograd::Function<SyncBatchNormFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& weight, const at::Tensor& bias,
                            const at::Tensor& running_mean, const at::Tensor& running_var,
                            double eps, double momentum, const BatchStatsReducer* reduce) {
    const at::Tensor x = input.contiguous();
    const int64_t channels = x.size(1);
    const double count = static_cast<double>(x.numel() / channels);
    const at::Tensor x64 = x.to(at::kDouble);
    at::Tensor sums = at::cat({x64.sum(reduced_dims(x)), (x64 * x64).sum(reduced_dims(x)),
                               at::full({1}, count, at::kDouble)});
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
    const at::Tensor g = grads[0].contiguous();
    const std::vector<int64_t> shape = channel_shape(x);
    const int64_t channels = x.size(1);
    const at::Tensor xmu = x - mean.view(shape);
    const at::Tensor g64 = g.to(at::kDouble);
    const at::Tensor xmu64 = xmu.to(at::kDouble);
    // This rank's own sums give the parameters' gradients (DataParallel averages them with the
    // others); the reducer turns the copy into the sums over all ranks.
    const at::Tensor local =
        at::cat({g64.sum(reduced_dims(x)), (g64 * xmu64).sum(reduced_dims(x))});
    at::Tensor sums = local.clone();
    (*reduce)(sums);
    const at::Tensor mean_dy = (sums.slice(0, 0, channels) / total).to(at::kFloat);
    const at::Tensor mean_dy_xmu = (sums.slice(0, channels, 2 * channels) / total).to(at::kFloat);
    const at::Tensor scale = weight.defined() ? invstd * weight : invstd;
    const at::Tensor grad_input =
        (g - mean_dy.view(shape) - xmu * (invstd * invstd * mean_dy_xmu).view(shape)) *
        scale.view(shape);
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
