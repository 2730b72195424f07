// FakeQuantize: observe, then simulate quantization with a straight-through gradient.
// Mirrors torch.ao.quantization.FakeQuantize: flags, scale, zero point and the observer
// ("activation_post_process") are buffers/submodules with PyTorch's names. With
// options.algorithm = learnable it is coremltools' LearnableFakeQuantize instead (LSQ/LSQ+,
// reference 4.2): scale and zero point (float) are parameters, plus an "eps" buffer.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <optional>

#include "linquant/quant/fake_quantize_kernel.h"
#include "linquant/quant/fake_quantize_options.h"
#include "linquant/quant/observer.h"

namespace linquant {

class FakeQuantizeImpl : public torch::nn::Cloneable<FakeQuantizeImpl> {
 public:
  explicit FakeQuantizeImpl(FakeQuantizeOptions options = {});

  void reset() override;

  // Observer on: update the range and recompute scale/zero point from it.
  // Fake quant on: return the fake-quantized x, else x itself.
  at::Tensor forward(const at::Tensor& x);
  // forward(at::relu(x)) (or, with a cap, forward(at::hardtanh(x, 0, cap)): ReLU6) with the
  // same results bit for bit, without materializing relu(x) or keeping it for the backward
  // pass (per-tensor float32 quantizers with fake quant on; the other cases take that
  // composite path).
  at::Tensor forward_after_relu(const at::Tensor& x, float cap = kReluUncapped);
  // forward(at::add(a, b)), or with relu_cap forward of the ReLU (ReLU6) of the sum, bit for
  // bit, without writing the sum to memory or keeping it for the backward pass (same-shape
  // float32 operands, per-tensor quantizers with fake quant on; other cases take the composite
  // path). A residual add and the quantizer after it.
  at::Tensor forward_after_add(const at::Tensor& a, const at::Tensor& b,
                               std::optional<float> relu_cap = std::nullopt);
  // forward(at::hardswish(x)) bit for bit, gradient included, without writing hardswish(x) to
  // memory (contiguous float32 x, per-tensor quantizers with fake quant on; other cases take
  // the composite path).
  at::Tensor forward_after_hardswish(const at::Tensor& x);
  // For an op that computes this quantizer's input itself and fake-quantizes it a block at a
  // time (the forward_after_* forms above, or fake_quantize_span from kernel_dispatch.h
  // outside this layer), never storing it: whether that gives forward()'s bits (per-tensor,
  // not learnable, fake quant on; otherwise the op materializes its output and calls
  // forward()).
  bool fuses_with_producer() const;
  // forward()'s observer step for such an op (when the observer is on: the range of its n
  // values, which `compute` writes a block at a time), then the (scale, zero point) to
  // fake-quantize with.
  QParam observe_computed(int64_t n, const ObserverImpl::ComputedValues& compute);

  void enable_observer(bool on = true);
  void disable_observer() { enable_observer(false); }
  void enable_fake_quant(bool on = true);
  void disable_fake_quant() { enable_fake_quant(false); }
  bool is_observer_enabled() const;
  bool is_fake_quant_enabled() const;

  // From the observer's current state, without changing the module. Learnable: the learned
  // scale clamped to eps and the zero point forced as the forward pass forces it (int32).
  std::pair<at::Tensor, at::Tensor> calculate_qparams() const;

  bool is_learnable() const { return options_.learnable(); }
  // Learnable per-channel quantizers: the parameters' length, set once before training (an
  // optimizer holds the parameters as they are when it is made).
  void set_channels(int64_t channels);

  // For a quantizer shared by several graph nodes. Between the two calls the observer
  // state moves once, from the union (min of mins, max of maxes) of every input seen so
  // far in the pass, instead of once per call: each call fake-quantizes with the state
  // "before the pass, updated with the union so far" (linquant's correction of PyTorch's
  // per-call updates; coremltools.md Appendix C item 5).
  void begin_shared_pass();
  void end_shared_pass();

  // Data-parallel training: called with every range the observer is about to take in (empty
  // when the input had no finite value), before it does, so that the ranks can combine their
  // ranges into the one a single process would have seen (distributed::DataParallel). Every
  // rank calls it for the same quantizers in the same order. Not called by the weight path
  // that observes rows as it quantizes them: weights are the same on every rank.
  using RangeReducer = std::function<void(ObservedRange& range)>;
  void set_range_reducer(RangeReducer reducer) { range_reducer_ = std::move(reducer); }
  const FakeQuantizeOptions& options() const { return options_; }

  at::Tensor fake_quant_enabled;  // uint8 [1]
  at::Tensor observer_enabled;    // uint8 [1]
  at::Tensor scale;               // float32 [1] or [channels]
  at::Tensor zero_point;          // int32 (learnable: float32), same shape as scale
  at::Tensor eps;                 // learnable only: float32 [1], the smallest scale
  Observer activation_post_process{nullptr};

 private:
  bool observes() const;
  void observe(const at::Tensor& x, std::optional<float> relu_cap);
  // The observer update from one input's range, then scale and zero point from the state.
  void record(ObservedRange range);
  // Observer on, fake quant on, per channel on axis 0, float32, not shared: one pass.
  bool fuses_observer_and_fake_quant(const at::Tensor& x) const;
  at::Tensor observe_and_fake_quantize_rows(const at::Tensor& x);
  void record_in_shared_pass(const ObservedRange& range);
  at::Tensor learnable_forward(const at::Tensor& x);
  // The zero point the learnable forward pass uses (and calculate_qparams reports).
  at::Tensor forced_zero_point(const at::Tensor& zero_point) const;

  FakeQuantizeOptions options_;
  bool in_shared_pass_ = false;
  RangeReducer range_reducer_;
  ObservedRange pass_range_;
  at::Tensor pass_start_min_, pass_start_max_;  // observer state when the pass began
};
TORCH_MODULE(FakeQuantize);

// Functional fake quantize with the straight-through gradient (dx = dy * mask).
// axis -1: scale and zero_point hold one value; otherwise one per slice along axis.
// Any float dtype and shape (including empty); computed in float32.
at::Tensor fake_quantize(const at::Tensor& x, const at::Tensor& scale,
                         const at::Tensor& zero_point, int64_t axis, int64_t quant_min,
                         int64_t quant_max);

// Observer and fake quantize fused for per-channel quantizers on axis 0 (weights): observe
// is called with the contiguous x and a callback it must call once per row with that row's
// new qparams (ObserverImpl::observe_rows does), and each row is fake-quantized right then,
// while it is in cache. Gradient as fake_quantize().
using RowObserver = std::function<void(const at::Tensor& x, const RowCallback& on_row)>;
at::Tensor fake_quantize_observed_rows(const at::Tensor& x, int64_t quant_min, int64_t quant_max,
                                       const RowObserver& observe);

// LSQ/LSQ+ fake quantization (reference 4.2) of x with the parameters scale and zero_point
// (float32, one value or one per slice along axis), gradients by autograd: the scale's (and,
// for affine, the zero point's) gradient scaled by g = 1 / sqrt(elements per scale * qmax),
// straight-through rounding, clamp to [quant_min, quant_max]. The zero point enters only for
// affine and unsigned symmetric ranges.
// Float32 inputs run through fused kernels (one pass each way, AVX2 or scalar) that give the
// composite's bits, parameter gradients included; other inputs run the composite.
at::Tensor learnable_fake_quantize(const at::Tensor& x, const at::Tensor& scale,
                                   const at::Tensor& zero_point, int64_t axis, int64_t quant_min,
                                   int64_t quant_max, QuantizationScheme scheme);

// The same as a composite of ATen operators, exactly as reference 4.2 writes it: what the
// fused kernels are tested and benchmarked against.
at::Tensor learnable_fake_quantize_composite(const at::Tensor& x, const at::Tensor& scale,
                                             const at::Tensor& zero_point, int64_t axis,
                                             int64_t quant_min, int64_t quant_max,
                                             QuantizationScheme scheme);

// The value of learnable_fake_quantize with fixed parameters (no gradient scaling): clamp(
// round(x / scale + zero_point)) - zero_point, times scale. What finalize() freezes a learnable
// quantizer into: the same division as the quantizer's forward pass. zero_point: any numeric
// type, one value or one per slice along axis.
at::Tensor fake_quantize_by_division(const at::Tensor& x, const at::Tensor& scale,
                                     const at::Tensor& zero_point, int64_t axis, int64_t quant_min,
                                     int64_t quant_max);

// fake_quantize(at::relu(x), ...) per tensor in one pass, gradients included, bit for bit
// (with a cap: fake_quantize(at::hardtanh(x, 0, cap), ...)).
at::Tensor relu_fake_quantize(const at::Tensor& x, const at::Tensor& scale,
                              const at::Tensor& zero_point, int64_t quant_min,
                              int64_t quant_max, float cap = kReluUncapped);

// fake_quantize(at::add(a, b), ...) per tensor in one pass, gradients of both operands
// included, bit for bit; with relu_cap, of the ReLU (capped: hardtanh(·, 0, cap)) of the sum.
// a and b: float32 tensors of one shape.
at::Tensor add_fake_quantize(const at::Tensor& a, const at::Tensor& b, const at::Tensor& scale,
                             const at::Tensor& zero_point, int64_t quant_min, int64_t quant_max,
                             std::optional<float> relu_cap = std::nullopt);

// fake_quantize(at::hardswish(x), ...) per tensor in one pass each way, gradient included, bit
// for bit with ATen's hardswish and its backward on this thread's intra-op thread count.
// Contiguous float32 x; other tensors, and an ATen whose element-wise loop the probe does not
// recognize (aten_loop_split.h), take the composite.
at::Tensor hardswish_fake_quantize(const at::Tensor& x, const at::Tensor& scale,
                                   const at::Tensor& zero_point, int64_t quant_min,
                                   int64_t quant_max);
// Whether hardswish_fake_quantize(x, ...) runs its fused kernels rather than the composite.
bool hardswish_fake_quantize_fuses(const at::Tensor& x);

}  // namespace linquant
