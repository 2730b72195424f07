// Range observers (min_max, moving_average_min_max, ema_min_max), per tensor or per channel.
// Their state is held in registered buffers named as in PyTorch (min_val, max_val, eps), so
// state dicts save and restore it.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <optional>
#include <vector>

#include "linquant/quant/fake_quantize_options.h"
#include "linquant/quant/qparams.h"

namespace linquant {

// The finite min/max of one tensor: one entry per channel (or one for the whole tensor);
// has[c] is 0 for a channel without finite values. Empty for an empty tensor or one
// without any finite value (per tensor).
struct ObservedRange {
  std::vector<float> min;
  std::vector<float> max;
  std::vector<char> has;

  bool empty() const { return min.empty(); }
  // Channel-wise union (min of mins, max of maxes).
  void merge(const ObservedRange& other);
};

// Called with a channel and the qparams its observer state gives right after the update.
using RowCallback = std::function<void(int64_t channel, QParam qparam)>;

class ObserverImpl : public torch::nn::Cloneable<ObserverImpl> {
 public:
  explicit ObserverImpl(FakeQuantizeOptions options = {});

  void reset() override;

  // Updates the running range with the finite values of x (NaN and +/-inf are ignored;
  // a tensor without any finite value leaves the state unchanged). Returns x.
  at::Tensor forward(const at::Tensor& x);

  // forward() in two halves, so a caller can update the state once from several tensors.
  // With relu_cap: the range of relu(x) (capped at *relu_cap unless it is kReluUncapped),
  // without computing relu(x) (per-tensor observers only).
  ObservedRange observe_range(const at::Tensor& x,
                              std::optional<float> relu_cap = std::nullopt) const;
  void apply_range(const ObservedRange& range);
  // observe_range(a + b, relu_cap) without writing a + b (per-tensor observers; contiguous
  // float32 a and b of one size).
  ObservedRange observe_sum_range(const at::Tensor& a, const at::Tensor& b,
                                  std::optional<float> relu_cap = std::nullopt) const;
  // observe_range(at::hardswish(x)) without writing hardswish(x) (per-tensor observers;
  // contiguous float32 x).
  ObservedRange observe_hardswish_range(const at::Tensor& x) const;
  // Writes the values [begin, begin + count) of an op's output into out; count is at most
  // kElementBlock (element_blocks.h), 2048.
  using ComputedValues = std::function<void(int64_t begin, int64_t count, float* out)>;
  // observe_range of the n values an op computes on the fly, a block at a time, never stored
  // (per-tensor observers): for ops outside this layer that fuse the quantizer after them.
  // Threads split [0, n); compute is called once for each value.
  ObservedRange observe_computed_range(int64_t n, const ComputedValues& compute) const;

  // forward() for a per-channel observer on axis 0 and a contiguous float32 x, one channel
  // (row) at a time: each row is observed, and on_row gets the channel's new qparams on the
  // thread that just read the row, so the caller can fake-quantize it while it is in cache.
  // Same state as forward(x); rows are handled in parallel.
  void observe_rows(const at::Tensor& x, const RowCallback& on_row);

  // Scale (float32) and zero point (int32) tensors: shape [1] per tensor, [channels] per
  // channel. Never observed: scale 1 and zero point 0, with a warning.
  std::pair<at::Tensor, at::Tensor> calculate_qparams() const;

  bool has_observed() const;
  const FakeQuantizeOptions& options() const { return options_; }

  at::Tensor min_val;
  at::Tensor max_val;
  at::Tensor eps;

 private:
  // Per channel: sizes the state for the first observation (returns true) or checks that the
  // channel count did not change.
  bool start_channels(int64_t channels);
  // One channel's state update from its finite range (has = false: no finite value).
  void update_channel(float* state_min, float* state_max, float lo, float hi, bool has,
                      bool first) const;

  FakeQuantizeOptions options_;
};
TORCH_MODULE(Observer);

}  // namespace linquant
