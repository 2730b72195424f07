// Range observers (min_max, moving_average_min_max, ema_min_max), per tensor or per channel.
// Their state is held in registered buffers named as in PyTorch (min_val, max_val, eps), so
// state dicts save and restore it.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

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

class ObserverImpl : public torch::nn::Cloneable<ObserverImpl> {
 public:
  explicit ObserverImpl(FakeQuantizeOptions options = {});

  void reset() override;

  // Updates the running range with the finite values of x (NaN and +/-inf are ignored;
  // a tensor without any finite value leaves the state unchanged). Returns x.
  at::Tensor forward(const at::Tensor& x);

  // forward() in two halves, so a caller can update the state once from several tensors.
  // after_relu: the range of relu(x), without computing relu(x) (per-tensor observers only).
  ObservedRange observe_range(const at::Tensor& x, bool after_relu = false) const;
  void apply_range(const ObservedRange& range);

  // Scale (float32) and zero point (int32) tensors: shape [1] per tensor, [channels] per
  // channel. Never observed: scale 1 and zero point 0, with a warning.
  std::pair<at::Tensor, at::Tensor> calculate_qparams() const;

  bool has_observed() const;
  const FakeQuantizeOptions& options() const { return options_; }

  at::Tensor min_val;
  at::Tensor max_val;
  at::Tensor eps;

 private:
  FakeQuantizeOptions options_;
};
TORCH_MODULE(Observer);

}  // namespace linquant
