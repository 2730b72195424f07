// The QAT Conv-BN's division by the BatchNorm factor and the BatchNorm after it
// (src/runtime/channel_divide.cpp, divided_batch_norm.cpp). The division's backward alone:
// linquant's divide_channels, whose factor gradient is summed in registers in ATen's order,
// against the same operations written with ATen (y / f with DivBackward0, whose factor gradient
// goes through a stored product and sum_to). Then division and BatchNorm forward and backward:
// in training (ATen's ops, linquant's fused node, and BatchNorm alone as the float model pays
// it), and frozen with the activation quantizer after it (the ops one by one, the fused node).
// Shapes: the conv outputs of resnet18's stem, a 56x56 stage and its last stage at batch 32,
// and the tutorial CNN's first Conv-BN at batch 128.
//
//   build/bench/linquant_bench_conv_bn_divide [Google Benchmark flags]
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

#include <vector>

#include "../src/runtime/channel_divide.h"
#include "../src/runtime/divided_batch_norm.h"
#include "kernel_benchmark_main.h"
#include "linquant/quant/fake_quantize.h"

namespace linquant {
namespace {

const std::vector<std::vector<int64_t>>& shapes() {
  static const std::vector<std::vector<int64_t>> all = {
      {32, 64, 112, 112}, {32, 64, 56, 56}, {32, 512, 7, 7}, {128, 32, 28, 28}};
  return all;
}

void backward(benchmark::State& state, bool fused) {
  const std::vector<int64_t>& shape = shapes().at(static_cast<size_t>(state.range(0)));
  at::manual_seed(0);
  const at::Tensor x = at::randn(shape).requires_grad_(true);
  const at::Tensor g = at::randn(shape);
  const at::Tensor f = (at::rand({shape[1]}) + 0.5).requires_grad_(true);
  for (auto _ : state) {
    state.PauseTiming();
    const at::Tensor y =
        fused ? runtime::divide_channels(x, f) : x / f.reshape({1, shape[1], 1, 1});
    x.mutable_grad() = at::Tensor();
    f.mutable_grad() = at::Tensor();
    state.ResumeTiming();
    y.backward(g);
  }
  state.SetLabel(c10::str(at::IntArrayRef(shape)));
  state.SetBytesProcessed(state.iterations() * x.numel() * 3 * static_cast<int64_t>(sizeof(float)));
}

void BM_fused(benchmark::State& state) { backward(state, true); }
void BM_aten(benchmark::State& state) { backward(state, false); }

BENCHMARK(BM_fused)->DenseRange(0, 3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_aten)->DenseRange(0, 3)->Unit(benchmark::kMillisecond)->UseRealTime();

// The division and the training-mode BatchNorm after it, forward and backward, as QAT Conv-BN
// runs them without a conv bias: ATen's two ops, linquant's one node (divided_batch_norm.cpp),
// and for scale the BatchNorm alone, which is what the float model pays.
enum class Tail { batch_norm_only, aten, fused };

// A conv output, its gradient, the factor and a BatchNorm for one of shapes().
struct TailInputs {
  at::Tensor x, g, f;
  runtime::BatchNormState bn;
  int64_t channels;
  std::vector<int64_t> shape;

  explicit TailInputs(const benchmark::State& state)
      : shape(shapes().at(static_cast<size_t>(state.range(0)))) {
    channels = shape[1];
    at::manual_seed(0);
    x = at::randn(shape).requires_grad_(true);
    g = at::randn(shape);
    f = (at::rand({channels}) + 0.5).requires_grad_(true);
    bn.weight = at::rand({channels}).requires_grad_(true);
    bn.bias = at::randn({channels}).requires_grad_(true);
    bn.running_mean = at::randn({channels});
    bn.running_var = at::rand({channels}) + 0.5;
  }
};

void batch_norm_tail(benchmark::State& state, Tail tail) {
  const TailInputs in(state);
  const at::Tensor &x = in.x, &g = in.g, &f = in.f;
  const runtime::BatchNormState& bn = in.bn;
  const int64_t channels = in.channels;
  for (auto _ : state) {
    at::Tensor out;
    if (tail == Tail::fused) {
      out = runtime::divide_and_batch_norm(x, f, bn, 0.1);
    } else {
      const at::Tensor y = tail == Tail::aten ? x / f.reshape({1, channels, 1, 1}) : x;
      out = at::batch_norm(y, bn.weight, bn.bias, bn.running_mean, bn.running_var, true, 0.1,
                           bn.eps, true);
    }
    out.backward(g);
  }
  state.SetLabel(c10::str(at::IntArrayRef(in.shape)));
}

void BM_batch_norm_only(benchmark::State& state) { batch_norm_tail(state, Tail::batch_norm_only); }
void BM_divide_batch_norm_aten(benchmark::State& state) { batch_norm_tail(state, Tail::aten); }
void BM_divide_batch_norm_fused(benchmark::State& state) { batch_norm_tail(state, Tail::fused); }

// After milestone 3: the division, BatchNorm on its running statistics and the activation
// quantizer after it (observer on), forward and backward: the three ops one by one (linquant's
// division, ATen's BatchNorm, linquant's quantizer) against the fused node.
void frozen_tail(benchmark::State& state, bool fused) {
  const TailInputs in(state);
  const at::Tensor &x = in.x, &g = in.g, &f = in.f;
  const runtime::BatchNormState& bn = in.bn;
  FakeQuantize quantizer(FakeQuantizeOptions{});
  quantizer->train();
  for (auto _ : state) {
    const at::Tensor out =
        fused
            ? runtime::divide_frozen_batch_norm_and_quantize(x, f, bn, quantizer)
            : quantizer(at::batch_norm(runtime::divide_channels(x, f), bn.weight, bn.bias,
                                       bn.running_mean, bn.running_var, false, 0.1, bn.eps, true));
    out.backward(g);
  }
  state.SetLabel(c10::str(at::IntArrayRef(in.shape)));
}

void BM_frozen_batch_norm_quantize_unfused(benchmark::State& state) { frozen_tail(state, false); }
void BM_frozen_batch_norm_quantize_fused(benchmark::State& state) { frozen_tail(state, true); }

BENCHMARK(BM_frozen_batch_norm_quantize_unfused)
    ->DenseRange(0, 3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_frozen_batch_norm_quantize_fused)
    ->DenseRange(0, 3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK(BM_batch_norm_only)->DenseRange(0, 3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_divide_batch_norm_aten)
    ->DenseRange(0, 3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_divide_batch_norm_fused)
    ->DenseRange(0, 3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace linquant

int main(int argc, char** argv) { return linquant::bench::run_kernel_benchmarks(argc, argv); }
