// FakeQuantize module: the flags and qparams live in buffers so that state dicts restore a
// quantizer exactly, including where training stopped in the milestone schedule.
#include "linquant/quant/fake_quantize.h"

#include <ATen/ATen.h>

#include <cfloat>
#include <cmath>
#include <vector>

#include "capped_relu.h"
#include "learnable_arithmetic.h"
#include "linquant/common/error.h"
#include "qparam_tensors.h"

namespace linquant {

FakeQuantizeImpl::FakeQuantizeImpl(FakeQuantizeOptions options) : options_(options) { reset(); }

void FakeQuantizeImpl::reset() {
  fake_quant_enabled = register_buffer("fake_quant_enabled", at::ones({1}, at::kByte));
  observer_enabled = register_buffer("observer_enabled", at::ones({1}, at::kByte));
  activation_post_process = register_module("activation_post_process", Observer(options_));
  if (options_.learnable()) {
    // coremltools' initial values; the first observed batch replaces them. The zero point
    // learns only for affine quantizers.
    scale = register_parameter("scale", at::ones({1}, at::kFloat));
    zero_point = register_parameter("zero_point", at::zeros({1}, at::kFloat),
                                    options_.scheme == QuantizationScheme::affine);
    eps = register_buffer("eps", at::full({1}, FLT_EPSILON, at::kFloat));
    return;
  }
  const QParam initial = options_.fixed_qparams.value_or(QParam{});
  scale = register_buffer("scale", at::full({1}, initial.scale, at::kFloat));
  zero_point = register_buffer("zero_point", at::full({1}, initial.zero_point, at::kInt));
}

void FakeQuantizeImpl::set_channels(int64_t channels) {
  if (!is_learnable() || !options_.per_channel() || scale.numel() == channels) return;
  const at::NoGradGuard no_grad;
  scale.set_data(at::ones({channels}, at::kFloat));
  zero_point.set_data(at::zeros({channels}, at::kFloat));
}

void FakeQuantizeImpl::enable_observer(bool on) { observer_enabled.fill_(on ? 1 : 0); }
void FakeQuantizeImpl::enable_fake_quant(bool on) { fake_quant_enabled.fill_(on ? 1 : 0); }
bool FakeQuantizeImpl::is_observer_enabled() const { return observer_enabled.item<uint8_t>() != 0; }
bool FakeQuantizeImpl::is_fake_quant_enabled() const {
  return fake_quant_enabled.item<uint8_t>() != 0;
}

std::pair<at::Tensor, at::Tensor> FakeQuantizeImpl::calculate_qparams() const {
  if (!is_learnable()) return activation_post_process->calculate_qparams();
  const at::NoGradGuard no_grad;
  return {scale.detach().clamp_min(eps.item<float>()),
          forced_zero_point(zero_point.detach()).to(at::kInt)};
}

at::Tensor FakeQuantizeImpl::forced_zero_point(const at::Tensor& zp) const {
  const QuantRange& range = options_.range;
  if (options_.scheme == QuantizationScheme::affine) {
    return at::round(zp).clamp(range.quant_min, range.quant_max);
  }
  if (range.quant_min < 0) return at::zeros_like(zp);
  // Unsigned symmetric: 128 for the full uint8 range, else the middle of the range.
  const int64_t middle = range.quant_min == 0 && range.quant_max == 255
                             ? 128
                             : (range.quant_min + range.quant_max) / 2;
  return at::full_like(zp, static_cast<double>(middle));
}

bool FakeQuantizeImpl::observes() const { return is_observer_enabled() && !options_.fixed_qparams; }

void FakeQuantizeImpl::observe(const at::Tensor& x, std::optional<float> relu_cap) {
  if (observes()) record(activation_post_process->observe_range(x, relu_cap));
}

void FakeQuantizeImpl::record(ObservedRange range) {
  if (range_reducer_) range_reducer_(range);
  if (in_shared_pass_) {
    record_in_shared_pass(range);
  } else {
    activation_post_process->apply_range(range);
  }
  auto [new_scale, new_zero_point] = activation_post_process->calculate_qparams();
  const at::NoGradGuard no_grad;
  if (is_learnable()) {
    // The observer's qparams become the parameters' values (per channel, set_channels gave
    // them their length; a first batch of another width resizes them).
    if (scale.numel() != new_scale.numel()) {
      scale.set_data(at::empty(new_scale.sizes(), at::kFloat));
      zero_point.set_data(at::empty(new_scale.sizes(), at::kFloat));
    }
    scale.detach().copy_(new_scale.reshape(scale.sizes()));
    zero_point.detach().copy_(new_zero_point.to(at::kFloat).reshape(zero_point.sizes()));
    return;
  }
  if (scale.sizes() != new_scale.sizes()) {
    scale.resize_(new_scale.sizes());
    zero_point.resize_(new_zero_point.sizes());
  }
  scale.copy_(new_scale);
  zero_point.copy_(new_zero_point);
}

bool FakeQuantizeImpl::fuses_observer_and_fake_quant(const at::Tensor& x) const {
  return !is_learnable() && options_.per_channel() && options_.ch_axis == 0 &&
         !options_.fixed_qparams && !in_shared_pass_ && x.scalar_type() == at::kFloat &&
         x.dim() > 0 && x.numel() > 0 && is_observer_enabled() && is_fake_quant_enabled();
}

at::Tensor FakeQuantizeImpl::observe_and_fake_quantize_rows(const at::Tensor& x) {
  const int64_t channels = x.size(0);
  std::vector<QParam> qparams(static_cast<size_t>(channels));
  const at::Tensor y = fake_quantize_observed_rows(
      x, options_.range.quant_min, options_.range.quant_max,
      [&](const at::Tensor& rows, const RowCallback& fake_quantize_row) {
        activation_post_process->observe_rows(rows, [&](int64_t c, QParam qparam) {
          qparams[static_cast<size_t>(c)] = qparam;
          fake_quantize_row(c, qparam);
        });
      });
  // The buffers end as observe() would leave them.
  const at::NoGradGuard no_grad;
  if (scale.numel() != channels) {
    scale.resize_({channels});
    zero_point.resize_({channels});
  }
  float* scale_data = scale.data_ptr<float>();
  int32_t* zero_point_data = zero_point.data_ptr<int32_t>();
  for (int64_t c = 0; c < channels; ++c) {
    scale_data[c] = qparams[static_cast<size_t>(c)].scale;
    zero_point_data[c] = qparams[static_cast<size_t>(c)].zero_point;
  }
  return y;
}

at::Tensor FakeQuantizeImpl::forward(const at::Tensor& x) {
  if (is_learnable()) return learnable_forward(x);
  if (fuses_observer_and_fake_quant(x)) return observe_and_fake_quantize_rows(x);
  observe(x, std::nullopt);
  if (!is_fake_quant_enabled()) return x;
  return fake_quantize(x, scale, zero_point, options_.ch_axis, options_.range.quant_min,
                       options_.range.quant_max);
}

at::Tensor FakeQuantizeImpl::learnable_forward(const at::Tensor& x) {
  observe(x, std::nullopt);
  if (!is_fake_quant_enabled()) {
    return learnable::passthrough(x, scale, zero_point, options_.ch_axis);
  }
  {
    const at::NoGradGuard no_grad;
    scale.detach().clamp_min_(eps.item<float>());
    zero_point.detach().copy_(forced_zero_point(zero_point.detach()));
  }
  return learnable_fake_quantize(x, scale, zero_point, options_.ch_axis, options_.range.quant_min,
                                 options_.range.quant_max, options_.scheme);
}

at::Tensor FakeQuantizeImpl::forward_after_relu(const at::Tensor& x, float cap) {
  if (!fuses_with_producer() || x.scalar_type() != at::kFloat) {
    return forward(capped_relu(x, cap));
  }
  observe(x, cap);
  return relu_fake_quantize(x, scale, zero_point, options_.range.quant_min,
                            options_.range.quant_max, cap);
}

at::Tensor FakeQuantizeImpl::forward_after_add(const at::Tensor& a, const at::Tensor& b,
                                               std::optional<float> relu_cap) {
  const bool fusable =
      a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat && a.sizes() == b.sizes();
  if (!fusable || !fuses_with_producer()) {
    const at::Tensor sum = at::add(a, b);
    return forward(relu_cap ? capped_relu(sum, *relu_cap) : sum);
  }
  const at::Tensor left = a.contiguous();
  const at::Tensor right = b.contiguous();
  if (observes()) record(activation_post_process->observe_sum_range(left, right, relu_cap));
  return add_fake_quantize(left, right, scale, zero_point, options_.range.quant_min,
                           options_.range.quant_max, relu_cap);
}

at::Tensor FakeQuantizeImpl::forward_after_hardswish(const at::Tensor& x) {
  if (!fuses_with_producer() || !hardswish_fake_quantize_fuses(x)) {
    return forward(at::hardswish(x));
  }
  if (observes()) record(activation_post_process->observe_hardswish_range(x));
  return hardswish_fake_quantize(x, scale, zero_point, options_.range.quant_min,
                                 options_.range.quant_max);
}

bool FakeQuantizeImpl::fuses_with_producer() const {
  return !is_learnable() && !options_.per_channel() && is_fake_quant_enabled();
}

QParam FakeQuantizeImpl::observe_computed(int64_t n, const ObserverImpl::ComputedValues& compute) {
  if (!fuses_with_producer()) {
    throw QuantError("observe_computed: this quantizer needs its input materialized");
  }
  if (observes()) record(activation_post_process->observe_computed_range(n, compute));
  return per_tensor_qparam(scale, zero_point, "observe_computed");
}

void FakeQuantizeImpl::begin_shared_pass() {
  in_shared_pass_ = true;
  pass_range_ = ObservedRange();
  pass_start_min_ = activation_post_process->min_val.clone();
  pass_start_max_ = activation_post_process->max_val.clone();
}

void FakeQuantizeImpl::end_shared_pass() { in_shared_pass_ = false; }

void FakeQuantizeImpl::record_in_shared_pass(const ObservedRange& range) {
  pass_range_.merge(range);
  const at::NoGradGuard no_grad;
  Observer& observer = activation_post_process;
  observer->min_val.resize_(pass_start_min_.sizes()).copy_(pass_start_min_);
  observer->max_val.resize_(pass_start_max_.sizes()).copy_(pass_start_max_);
  observer->apply_range(pass_range_);
}

}  // namespace linquant
