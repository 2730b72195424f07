// Micro-benchmarks of fake quantization against ReLU on the same tensor, the memory-bandwidth
// reference: ReLU reads and writes every element once, as a fake quantizer must at least.
//
// Tensors: a 4.7M-element activation [32, 64, 48, 48] quantized per tensor, and a 1.2M-element
// conv weight [512, 256, 3, 3] quantized per output channel (axis 0).
// Variants: ATen's own kernels (fake_quantize_per_*_affine and the fused observer + fake
// quant PyTorch's default QAT uses), linquant's fake_quantize() without the observer, and
// linquant's FakeQuantize module with its observer on; forward, and forward + backward.
// Each linquant variant runs with the scalar reference kernels and with AVX2. A residual
// add + ReLU into a quantizer runs unfused and fused (default kernel set). The learnable
// (LSQ) quantizer runs with its observer off, as while it learns; its backward pass also
// computes the scale's (and zero point's) gradient.
// bench/report.py turns the JSON output into ratios to ReLU.
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <torch/autograd.h>

#include <functional>
#include <string>
#include <vector>

#include "kernel_benchmark_main.h"
#include "linquant/quant/fake_quantize.h"
#include "linquant/quant/kernel_dispatch.h"

namespace linquant {
namespace {

enum class Shape { activation, weight };

at::Tensor make_input(Shape shape) {
  at::manual_seed(0);
  return shape == Shape::activation ? at::randn({32, 64, 48, 48}) : at::randn({512, 256, 3, 3}) * 0.05;
}

FakeQuantizeOptions options_for(Shape shape) {
  FakeQuantizeOptions options;
  if (shape == Shape::activation) {
    options.range = QuantRange::quint8();
    options.ch_axis = -1;
  } else {
    options.range = QuantRange::qint8();
    options.ch_axis = 0;
  }
  options.scheme = QuantizationScheme::symmetric;
  options.observer = ObserverType::moving_average_min_max;
  return options;
}

// Runs op on x (forward) or op on x then the gradient of its output (forward + backward).
// `parameters`: other tensors whose gradients the backward pass computes.
void run(benchmark::State& state, const at::Tensor& input, bool backward,
         const std::function<at::Tensor(const at::Tensor&)>& op,
         const std::vector<at::Tensor>& parameters = {}) {
  at::Tensor x = input.clone();
  if (backward) x.requires_grad_(true);
  std::vector<at::Tensor> wrt = {x};
  for (const at::Tensor& p : parameters) {
    if (p.requires_grad()) wrt.push_back(p);
  }
  const at::Tensor grad = at::ones_like(input);
  for (auto _ : state) {
    if (backward) {
      const at::Tensor y = op(x);
      benchmark::DoNotOptimize(torch::autograd::grad({y}, wrt, {grad})[0].data_ptr());
    } else {
      const at::NoGradGuard no_grad;
      benchmark::DoNotOptimize(op(x).data_ptr());
    }
  }
  state.SetItemsProcessed(state.iterations() * input.numel());
  state.SetBytesProcessed(state.iterations() * input.numel() * 8);  // one read, one write
}

void register_all() {
  for (const Shape shape : {Shape::activation, Shape::weight}) {
    const std::string tensor = shape == Shape::activation ? "act4.7M" : "weight1.2M";
    const at::Tensor input = make_input(shape);
    const FakeQuantizeOptions options = options_for(shape);
    for (const bool backward : {false, true}) {
      const std::string pass = backward ? "fwd_bwd" : "fwd";
      auto add = [&](const std::string& name, std::function<at::Tensor(const at::Tensor&)> op,
                     std::function<void()> before = {}, std::vector<at::Tensor> parameters = {}) {
        benchmark::RegisterBenchmark(
            (name + "/" + tensor + "/" + pass).c_str(),
            [input, backward, op, before, parameters](benchmark::State& state) {
              if (before) before();
              run(state, input, backward, op, parameters);
            })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      };
      add("relu", [](const at::Tensor& x) { return at::relu(x); });

      // ATen's kernels with the qparams of this tensor, as PyTorch's FakeQuantize calls them.
      FakeQuantize reference_module(options);
      reference_module->forward(input);
      const at::Tensor scale = reference_module->scale.clone();
      const at::Tensor zero_point = reference_module->zero_point.clone();
      const QuantRange range = options.range;
      if (shape == Shape::activation) {
        add("aten_fake_quant", [=](const at::Tensor& x) {
          return at::fake_quantize_per_tensor_affine(x, scale, zero_point, range.quant_min,
                                                     range.quant_max);
        });
      } else {
        add("aten_fake_quant", [=](const at::Tensor& x) {
          return at::fake_quantize_per_channel_affine(x, scale, zero_point, 0, range.quant_min,
                                                      range.quant_max);
        });
      }
      // PyTorch's default QAT path: moving-average observer + fake quant in one ATen op.
      const bool per_channel = shape == Shape::weight;
      auto observer_on = at::ones({1}, at::kLong);
      auto fake_quant_on = at::ones({1}, at::kLong);
      auto running_min = per_channel ? at::full({512}, -0.1) : at::full({1}, -3.0);
      auto running_max = per_channel ? at::full({512}, 0.1) : at::full({1}, 3.0);
      auto fused_scale = per_channel ? at::ones({512}) : at::ones({1});
      auto fused_zero_point = per_channel ? at::zeros({512}, at::kInt) : at::zeros({1}, at::kInt);
      add("aten_observer_fake_quant", [=](const at::Tensor& x) mutable {
        return at::fused_moving_avg_obs_fake_quant(
            x, observer_on, fake_quant_on, running_min, running_max, fused_scale,
            fused_zero_point, 0.01, range.quant_min, range.quant_max, per_channel ? 0 : -1,
            per_channel, true);
      });

      for (const KernelIsa isa : {KernelIsa::scalar, KernelIsa::avx2}) {
        if (!kernel_isa_available(isa)) continue;
        const std::string suffix = std::string("_") + to_string(isa);
        const auto select = [isa] { set_kernel_isa(isa); };
        const int64_t axis = options.ch_axis;
        add("linquant_fake_quant" + suffix, [=](const at::Tensor& x) {
          return fake_quantize(x, scale, zero_point, axis, range.quant_min, range.quant_max);
        }, select);
        FakeQuantize module(options);
        add("linquant_observer_fake_quant" + suffix,
            [module](const at::Tensor& x) mutable { return module->forward(x); }, select);
      }
      // A residual block's end, relu(x + shortcut) into an activation quantizer: the ops one
      // by one (what the interpreter ran before fusing them), fused, and the float ops alone.
      if (shape == Shape::activation) {
        const at::Tensor shortcut = at::randn(input.sizes());
        add("residual_add_relu",
            [shortcut](const at::Tensor& x) { return at::relu(at::add(x, shortcut)); });
        FakeQuantize unfused(options);
        add("residual_add_relu_observer_fake_quant_unfused",
            [unfused, shortcut](const at::Tensor& x) mutable {
              return unfused->forward(at::relu(at::add(x, shortcut)));
            });
        FakeQuantize fused(options);
        add("residual_add_relu_observer_fake_quant_fused",
            [fused, shortcut](const at::Tensor& x) mutable {
              return fused->forward_after_add(x, shortcut, kReluUncapped);
            });
        // MobileNetV3's hardswish into its activation quantizer, one by one and fused.
        add("hardswish", [](const at::Tensor& x) { return at::hardswish(x); });
        FakeQuantize hardswish_unfused(options);
        add("hardswish_observer_fake_quant_unfused",
            [hardswish_unfused](const at::Tensor& x) mutable {
              return hardswish_unfused->forward(at::hardswish(x));
            });
        FakeQuantize hardswish_fused(options);
        add("hardswish_observer_fake_quant_fused", [hardswish_fused](const at::Tensor& x) mutable {
          return hardswish_fused->forward_after_hardswish(x);
        });
      }
      // LSQ with the qparams this tensor's observer gives, observer off (learning phase); the
      // affine variant also learns the zero point. The fused kernels on both kernel sets, and
      // the composite of ATen operators they reproduce.
      for (const QuantizationScheme scheme :
           {QuantizationScheme::symmetric, QuantizationScheme::affine}) {
        FakeQuantizeOptions learnable_options = options;
        learnable_options.algorithm = Algorithm::learnable;
        learnable_options.scheme = scheme;
        FakeQuantize learnable(learnable_options);
        if (learnable_options.per_channel()) learnable->set_channels(input.size(0));
        learnable->forward(input);
        learnable->disable_observer();
        const std::vector<at::Tensor> parameters = {learnable->scale, learnable->zero_point};
        const std::string name = std::string("linquant_learnable_") + to_string(scheme);
        for (const KernelIsa isa : {KernelIsa::scalar, KernelIsa::avx2}) {
          if (!kernel_isa_available(isa)) continue;
          add(
              name + "_" + to_string(isa),
              [learnable](const at::Tensor& x) mutable { return learnable->forward(x); },
              [isa] { set_kernel_isa(isa); }, parameters);
        }
        const at::Tensor learned_scale = learnable->scale;
        const at::Tensor learned_zero_point = learnable->zero_point;
        const int64_t axis = learnable_options.ch_axis;
        add(
            name + "_composite",
            [=](const at::Tensor& x) {
              return learnable_fake_quantize_composite(x, learned_scale, learned_zero_point, axis,
                                                       range.quant_min, range.quant_max, scheme);
            },
            {}, parameters);
      }
    }
  }
}

}  // namespace
}  // namespace linquant

int main(int argc, char** argv) {
  return linquant::bench::run_kernel_benchmarks(argc, argv, linquant::register_all);
}
