// A command's data-parallel workers on c10d (src/distributed).
#include "worker_group.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include "linquant/common/error.h"
#include "linquant/common/warning.h"
#include "linquant/distributed/data_parallel.h"
#include "linquant/distributed/launch.h"

namespace linquant::apps {

WorkerGroup WorkerGroup::from_environment(std::chrono::seconds timeout) {
  WorkerGroup workers;
  const std::optional<distributed::WorkerPlacement> placement =
      distributed::placement_from_environment();
  if (!placement || placement->world_size == 1) return workers;
  workers.rank_ = placement->rank;
  workers.size_ = placement->world_size;
  workers.local_size_ = placement->local_world_size;
  workers.group_ = std::make_shared<const c10::intrusive_ptr<c10d::ProcessGroup>>(
      distributed::join(*placement, timeout));
  if (workers.rank_ != 0) {
    // Every worker computes the same warnings and progress; rank 0 shows them once.
    setenv("LINQUANT_PROGRESS", "off", 1);
    set_warning_handler([](const std::string&) {});
  }
  return workers;
}

const c10::intrusive_ptr<c10d::ProcessGroup>& WorkerGroup::process_group() const {
  if (!group_) throw Error("this process is not one of several workers");
  return *group_;
}

at::Tensor WorkerGroup::shard(const at::Tensor& batch_index) const {
  if (alone()) return batch_index;
  return batch_index.slice(0, rank_, batch_index.size(0), size_);
}

std::pair<int64_t, int64_t> WorkerGroup::share(int64_t count) const {
  return {count * rank_ / size_, count * (rank_ + 1) / size_};
}

void WorkerGroup::sum(std::vector<double>& values) const {
  if (alone() || values.empty()) return;
  distributed::all_reduce_sum(
      at::from_blob(values.data(), {static_cast<int64_t>(values.size())}, at::kDouble),
      *process_group());
}

void WorkerGroup::average_gradients(const std::vector<at::Tensor>& parameters) const {
  if (!alone()) distributed::average_gradients(parameters, *process_group());
}

}  // namespace linquant::apps
