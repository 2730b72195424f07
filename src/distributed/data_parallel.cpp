#include "linquant/distributed/data_parallel.h"

#include <ATen/ATen.h>

#include <cmath>
#include <functional>
#include <limits>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <vector>

#include "linquant/common/communication_error.h"

namespace linquant::distributed {
namespace {

// Gloo reports a dead peer ("Connection reset by peer") or a timeout by throwing from wait().
void wait(const std::function<c10::intrusive_ptr<c10d::Work>()>& start) {
  try {
    if (!start()->wait()) throw CommunicationError("a collective operation was aborted");
  } catch (const CommunicationError&) {
    throw;
  } catch (const std::exception& e) {
    throw CommunicationError("lost contact with the other workers: " + one_line(e.what()));
  }
}

}  // namespace

void all_reduce_range(ObservedRange& range, int64_t channels, bool per_channel,
                      c10d::ProcessGroup& group) {
  const auto n = static_cast<int64_t>(range.empty() ? channels : range.min.size());
  // One MAX all-reduce for both ends: row 0 holds -min, row 1 max; a channel without a finite
  // value holds -inf in both, which any finite value replaces. Negation is exact.
  constexpr float kNone = -std::numeric_limits<float>::infinity();
  at::Tensor ends = at::full({2, n}, kNone, at::kFloat);
  float* e = ends.data_ptr<float>();
  for (int64_t c = 0; c < static_cast<int64_t>(range.min.size()); ++c) {
    if (!range.has[static_cast<size_t>(c)]) continue;
    e[c] = -range.min[static_cast<size_t>(c)];
    e[n + c] = range.max[static_cast<size_t>(c)];
  }
  std::vector<at::Tensor> tensors = {ends};
  wait([&] { return group.allreduce(tensors, c10d::AllreduceOptions{c10d::ReduceOp::MAX}); });
  e = tensors[0].data_ptr<float>();
  ObservedRange combined;
  bool any = false;
  for (int64_t c = 0; c < n; ++c) {
    const bool has = e[n + c] != kNone;
    combined.min.push_back(has ? -e[c] : 0.0f);
    combined.max.push_back(has ? e[n + c] : 0.0f);
    combined.has.push_back(has ? 1 : 0);
    any = any || has;
  }
  // Per tensor, "no finite value anywhere" is the empty range, as observe_range reports it.
  range = any || per_channel ? combined : ObservedRange();
}

DataParallel::DataParallel(GraphModule model, c10::intrusive_ptr<c10d::ProcessGroup> group,
                           DataParallelOptions options)
    : model_(std::move(model)), group_(std::move(group)) {
  if (!model_ || !group_) throw Error("DataParallel needs a model and a process group");
  if (options.synchronize_batch_norm) {
    // The model keeps the group alive for as long as it keeps the reducers.
    model_->set_batch_stats_reducer(
        [group = group_](at::Tensor& sums) { all_reduce_sum(sums, *group); });
  }
  if (!options.synchronize_observers) return;
  const auto& specs = model_->graph().quantizers();
  for (auto [name, quantizer] : model_->quantizers()) {
    const auto spec = specs.find(name);
    if (spec == specs.end() || spec->second.is_weight) continue;
    FakeQuantizeImpl* q = quantizer.get();
    quantizer->set_range_reducer([group = group_, q](ObservedRange& range) {
      const at::Tensor& state = q->activation_post_process->min_val;
      const bool per_channel = q->options().per_channel();
      const int64_t channels = per_channel ? std::max<int64_t>(state.numel(), 1) : 1;
      all_reduce_range(range, channels, per_channel, *group);
    });
  }
}

void all_reduce_sum(const at::Tensor& tensor, c10d::ProcessGroup& group) {
  std::vector<at::Tensor> tensors = {tensor};
  wait([&] { return group.allreduce(tensors, c10d::AllreduceOptions{c10d::ReduceOp::SUM}); });
}

void average_gradients(const std::vector<at::Tensor>& all_parameters, c10d::ProcessGroup& group) {
  // Parameters that learn nothing (a symmetric learnable quantizer's zero point) get no gradient.
  std::vector<at::Tensor> parameters;
  for (const at::Tensor& p : all_parameters) {
    if (p.requires_grad()) parameters.push_back(p);
  }
  int64_t total = 0;
  for (const at::Tensor& p : parameters) total += p.numel();
  if (total == 0) return;
  at::Tensor flat = at::zeros({total}, at::kFloat);
  int64_t offset = 0;
  for (const at::Tensor& p : parameters) {
    if (p.grad().defined()) flat.narrow(0, offset, p.numel()).copy_(p.grad().reshape({-1}));
    offset += p.numel();
  }
  all_reduce_sum(flat, group);
  flat.div_(static_cast<double>(group.getSize()));
  offset = 0;
  for (const at::Tensor& p : parameters) {
    const at::Tensor mean = flat.narrow(0, offset, p.numel()).view(p.sizes());
    if (p.grad().defined()) {
      p.mutable_grad().copy_(mean);
    } else {
      p.mutable_grad() = mean.clone();
    }
    offset += p.numel();
  }
}

void DataParallel::broadcast_state() {
  std::vector<at::Tensor> tensors;
  for (const at::Tensor& p : model_->parameters()) tensors.push_back(p);
  for (const at::Tensor& b : model_->buffers()) tensors.push_back(b);
  const at::NoGradGuard no_grad;
  // One broadcast per tensor keeps every dtype (flags, counters) as it is.
  for (const at::Tensor& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    at::Tensor data = t.detach();
    std::vector<at::Tensor> one = {data.is_contiguous() ? data : data.contiguous()};
    wait([&] { return group_->broadcast(one, c10d::BroadcastOptions{}); });
    if (!data.is_contiguous()) data.copy_(one[0]);
  }
}

void DataParallel::average_gradients() {
  distributed::average_gradients(model_->parameters(), *group_);
}

int DataParallel::rank() const { return group_->getRank(); }
int DataParallel::world_size() const { return group_->getSize(); }

}  // namespace linquant::distributed
