// Observers: running min/max per tensor or per channel, updated with float32 arithmetic in
// PyTorch's operation order. Non-finite values are left out of the range on purpose.
#include "linquant/quant/observer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "element_blocks.h"
#include "linquant/common/error.h"
#include "linquant/common/warning.h"
#include "linquant/quant/kernel_dispatch.h"
#include "linquant/quant/parallel.h"

namespace linquant {
namespace {

// Folds one part's range (has: the part had a finite value) into a running one (*any: so far).
void merge_min_max(bool has, float lo, float hi, bool* any, float* min_val, float* max_val) {
  if (!has) return;
  *min_val = *any ? std::min(*min_val, lo) : lo;
  *max_val = *any ? std::max(*max_val, hi) : hi;
  *any = true;
}

// Min/max of n values by span(first, count, lo, hi) over index ranges (finite values of x, or
// of relu(x)): equal chunks per thread, combined in chunk order.
template <typename MinMaxSpan>
bool parallel_min_max(const MinMaxSpan& span, int64_t n, float* min_val, float* max_val) {
  const int64_t chunks = std::clamp<int64_t>(n / kParallelGrain, 1, at::get_num_threads());
  std::vector<float> lo(chunks, 0.0f);
  std::vector<float> hi(chunks, 0.0f);
  std::vector<char> has(chunks, 0);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t first = n * c / chunks;
      const int64_t last = n * (c + 1) / chunks;
      has[c] = span(first, last - first, &lo[c], &hi[c]);
    }
  });
  bool any = false;
  for (int64_t c = 0; c < chunks; ++c) merge_min_max(has[c], lo[c], hi[c], &any, min_val, max_val);
  return any;
}

// The finite range of x[0, n), or of relu(x) capped at *relu_cap.
bool span_min_max(const float* x, int64_t n, std::optional<float> relu_cap, float* min_val,
                  float* max_val) {
  return relu_cap ? relu_finite_min_max_span(x, n, *relu_cap, min_val, max_val)
                  : finite_min_max_span(x, n, min_val, max_val);
}

// The per-tensor range of an element-wise op's n outputs (of their ReLU with relu_cap), where
// for_each(first, count, body) feeds body the op's output for elements [first, first + count)
// a block at a time (element_blocks.h); threads split [0, n).
template <typename ForEachBlock>
ObservedRange blockwise_range(int64_t n, std::optional<float> relu_cap,
                              const ForEachBlock& for_each) {
  ObservedRange range;
  if (n == 0) return range;
  const auto span = [&](int64_t first, int64_t count, float* span_lo, float* span_hi) {
    bool any = false;
    for_each(first, count, [&](const float* values, int64_t, int64_t block) {
      float lo = 0.0f;
      float hi = 0.0f;
      const bool has = span_min_max(values, block, relu_cap, &lo, &hi);
      merge_min_max(has, lo, hi, &any, span_lo, span_hi);
    });
    return any;
  };
  float lo = 0.0f;
  float hi = 0.0f;
  if (parallel_min_max(span, n, &lo, &hi)) range = {{lo}, {hi}, {1}};
  return range;
}

// Finite min/max of each slice along axis; a slice without finite values gets has[c] = 0.
// Threads take whole channels, so no two write the same entry.
void per_channel_min_max(const at::Tensor& x, int64_t axis, std::vector<float>& lo,
                         std::vector<float>& hi, std::vector<char>& has) {
  const int64_t channels = x.size(axis);
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.size(d);
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < x.dim(); ++d) inner *= x.size(d);
  lo.assign(channels, INFINITY);
  hi.assign(channels, -INFINITY);
  has.assign(channels, 0);
  const float* data = x.data_ptr<float>();
  parallel_for_rows(channels, outer * inner, [&](int64_t c) {
    for (int64_t o = 0; o < outer; ++o) {
      float slice_lo = 0.0f;
      float slice_hi = 0.0f;
      if (finite_min_max_span(data + (o * channels + c) * inner, inner, &slice_lo, &slice_hi)) {
        lo[c] = std::min(lo[c], slice_lo);
        hi[c] = std::max(hi[c], slice_hi);
        has[c] = 1;
      }
    }
  });
}

// One observer step on one value, as torch and coremltools write it in float32.
float update(ObserverType type, const FakeQuantizeOptions& options, float old_value,
             float current, bool is_min) {
  switch (type) {
    case ObserverType::min_max:
      return is_min ? std::min(current, old_value) : std::max(current, old_value);
    case ObserverType::moving_average_min_max: {
      const auto c = static_cast<float>(options.averaging_constant);
      return old_value + c * (current - old_value);
    }
    case ObserverType::ema_min_max: {
      const auto keep = static_cast<float>(options.ema_ratio);
      const auto take = static_cast<float>(1.0 - options.ema_ratio);
      return old_value * keep + current * take;
    }
  }
  return current;
}

}  // namespace

ObserverImpl::ObserverImpl(FakeQuantizeOptions options) : options_(options) { reset(); }

void ObserverImpl::reset() {
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  if (options_.per_channel()) {
    min_val = register_buffer("min_val", at::empty({0}, f32));
    max_val = register_buffer("max_val", at::empty({0}, f32));
  } else {
    min_val = register_buffer("min_val", at::full({}, INFINITY, f32));
    max_val = register_buffer("max_val", at::full({}, -INFINITY, f32));
  }
  eps = register_buffer("eps", at::full({1}, kQParamsEps, f32));
}

bool ObserverImpl::has_observed() const {
  if (options_.per_channel()) return min_val.numel() > 0;
  // torch's "never observed" marker: min = +inf and max = -inf.
  return !(min_val.item<float>() == INFINITY && max_val.item<float>() == -INFINITY);
}

ObservedRange ObserverImpl::observe_range(const at::Tensor& input,
                                          std::optional<float> relu_cap) const {
  ObservedRange range;
  if (input.numel() == 0) return range;
  const at::NoGradGuard no_grad;
  const at::Tensor x = input.detach().to(at::kFloat).contiguous();
  if (!options_.per_channel()) {
    float lo = 0.0f;
    float hi = 0.0f;
    const float* data = x.data_ptr<float>();
    const auto span = [&](int64_t first, int64_t n, float* span_lo, float* span_hi) {
      return span_min_max(data + first, n, relu_cap, span_lo, span_hi);
    };
    if (parallel_min_max(span, x.numel(), &lo, &hi)) range = {{lo}, {hi}, {1}};
    return range;
  }
  if (relu_cap) throw QuantError("per-channel observers take the ReLU output itself");
  const int64_t axis = options_.ch_axis;
  if (axis >= x.dim()) {
    std::ostringstream message;
    message << "per-channel observer on axis " << axis << " got a tensor of rank " << x.dim();
    throw QuantError(message.str());
  }
  per_channel_min_max(x, axis, range.min, range.max, range.has);
  return range;
}

ObservedRange ObserverImpl::observe_sum_range(const at::Tensor& a, const at::Tensor& b,
                                              std::optional<float> relu_cap) const {
  if (options_.per_channel()) throw QuantError("per-channel observers take the sum itself");
  if (a.scalar_type() != at::kFloat || b.scalar_type() != at::kFloat || !a.is_contiguous() ||
      !b.is_contiguous() || a.numel() != b.numel()) {
    throw QuantError("observe_sum_range needs contiguous float32 operands of one size");
  }
  const float* a_data = a.data_ptr<float>();
  const float* b_data = b.data_ptr<float>();
  return blockwise_range(a.numel(), relu_cap, [&](int64_t first, int64_t n, const auto& body) {
    for_each_sum_block(a_data + first, b_data + first, n, body);
  });
}

ObservedRange ObserverImpl::observe_hardswish_range(const at::Tensor& x) const {
  if (options_.per_channel()) throw QuantError("per-channel observers take hardswish(x) itself");
  if (x.scalar_type() != at::kFloat || !x.is_contiguous()) {
    throw QuantError("observe_hardswish_range needs a contiguous float32 tensor");
  }
  // The range of hardswish's numerator, divided by 6 (element_blocks.h): one division per
  // tensor instead of one per element.
  const float* data = x.data_ptr<float>();
  ObservedRange range =
      blockwise_range(x.numel(), std::nullopt, [&](int64_t first, int64_t n, const auto& body) {
        for_each_hardswish_numerator_block(data + first, n, body);
      });
  if (!range.empty()) {
    range.min[0] /= 6.0f;
    range.max[0] /= 6.0f;
  }
  return range;
}

ObservedRange ObserverImpl::observe_computed_range(int64_t n, const ComputedValues& compute) const {
  if (options_.per_channel()) throw QuantError("per-channel observers take the values themselves");
  return blockwise_range(n, std::nullopt, [&](int64_t first, int64_t count, const auto& body) {
    for_each_block(
        count,
        [&](int64_t offset, int64_t block, float* values) {
          compute(first + offset, block, values);
        },
        body);
  });
}

void ObserverImpl::apply_range(const ObservedRange& range) {
  if (range.empty()) return;
  const auto channels = static_cast<int64_t>(range.min.size());
  const bool first = options_.per_channel() ? start_channels(channels) : !has_observed();
  float* state_min = min_val.data_ptr<float>();
  float* state_max = max_val.data_ptr<float>();
  for (int64_t c = 0; c < channels; ++c) {
    update_channel(state_min + c, state_max + c, range.min[c], range.max[c], range.has[c], first);
  }
}

bool ObserverImpl::start_channels(int64_t channels) {
  if (!has_observed()) {
    min_val.resize_({channels});
    max_val.resize_({channels});
    return true;
  }
  if (min_val.numel() != channels) {
    std::ostringstream message;
    message << "per-channel observer saw " << min_val.numel() << " channels before and "
            << channels << " now (axis " << options_.ch_axis << ")";
    throw QuantError(message.str());
  }
  return false;
}

void ObserverImpl::update_channel(float* state_min, float* state_max, float lo, float hi,
                                  bool has, bool first) const {
  if (!has) {
    // No finite value in this channel: keep its range, or start it at [0, 0].
    if (first) *state_min = *state_max = 0.0f;
    return;
  }
  *state_min = first ? lo : update(options_.observer, options_, *state_min, lo, true);
  *state_max = first ? hi : update(options_.observer, options_, *state_max, hi, false);
}

void ObserverImpl::observe_rows(const at::Tensor& x, const RowCallback& on_row) {
  if (!options_.per_channel() || options_.ch_axis != 0 || x.scalar_type() != at::kFloat ||
      !x.is_contiguous() || x.dim() == 0 || x.numel() == 0) {
    throw QuantError("observe_rows needs a per-channel observer on axis 0 and a non-empty "
                     "contiguous float32 tensor");
  }
  const int64_t channels = x.size(0);
  const int64_t inner = x.numel() / channels;
  const bool first = start_channels(channels);
  const float* data = x.data_ptr<float>();
  float* state_min = min_val.data_ptr<float>();
  float* state_max = max_val.data_ptr<float>();
  parallel_for_rows(channels, inner, [&](int64_t c) {
    float lo = 0.0f;
    float hi = 0.0f;
    const bool has = finite_min_max_span(data + c * inner, inner, &lo, &hi);
    update_channel(state_min + c, state_max + c, lo, hi, has, first);
    on_row(c, compute_qparam(state_min[c], state_max[c], options_.range, options_.scheme));
  });
}

at::Tensor ObserverImpl::forward(const at::Tensor& input) {
  apply_range(observe_range(input));
  return input;
}

void ObservedRange::merge(const ObservedRange& other) {
  if (other.empty()) return;
  if (empty()) {
    *this = other;
    return;
  }
  if (other.min.size() != min.size()) {
    throw QuantError("cannot merge the ranges of " + std::to_string(min.size()) + " and " +
                     std::to_string(other.min.size()) + " channels");
  }
  for (size_t c = 0; c < min.size(); ++c) {
    if (!other.has[c]) continue;
    min[c] = has[c] ? std::min(min[c], other.min[c]) : other.min[c];
    max[c] = has[c] ? std::max(max[c], other.max[c]) : other.max[c];
    has[c] = 1;
  }
}

std::pair<at::Tensor, at::Tensor> ObserverImpl::calculate_qparams() const {
  if (!has_observed()) {
    warn("observer has not seen any data yet: using scale 1 and zero point 0 (" +
         options_.describe() + ")");
    return {at::ones({1}, at::kFloat), at::zeros({1}, at::kInt)};
  }
  const at::Tensor lo = min_val.reshape({-1}).contiguous();
  const at::Tensor hi = max_val.reshape({-1}).contiguous();
  const int64_t n = lo.numel();
  at::Tensor scale = at::empty({n}, at::kFloat);
  at::Tensor zero_point = at::empty({n}, at::kInt);
  for (int64_t i = 0; i < n; ++i) {
    const QParam q = compute_qparam(lo.data_ptr<float>()[i], hi.data_ptr<float>()[i],
                                    options_.range, options_.scheme);
    scale.data_ptr<float>()[i] = q.scale;
    zero_point.data_ptr<int32_t>()[i] = q.zero_point;
  }
  return {scale, zero_point};
}

}  // namespace linquant
