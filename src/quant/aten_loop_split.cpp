#include "aten_loop_split.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace linquant {
namespace {

// hardswish_backward(1, 3) is 1 on the vector path (x >= 3 passes the gradient) and 1.5 on
// the scalar one (x <= 3 scales it by x / 3 + 0.5). An odd length shorter than ATen's grain
// runs as one chunk: a prefix of whole steps, then the tail.
constexpr int64_t kProbeLength = 255;

int64_t probe_step() {
  const at::Tensor grad = at::ones({kProbeLength}, at::kFloat);
  const at::Tensor x = at::full({kProbeLength}, 3.0, at::kFloat);
  const at::Tensor dx = at::hardswish_backward(grad, x).contiguous();
  const float* d = dx.data_ptr<float>();
  int64_t vector_prefix = 0;
  while (vector_prefix < kProbeLength && d[vector_prefix] == 1.0f) ++vector_prefix;
  for (int64_t i = vector_prefix; i < kProbeLength; ++i) {
    if (d[i] != 1.5f) return 0;
  }
  for (int64_t step = 8; step <= 128; step *= 2) {
    if (vector_prefix == kProbeLength - kProbeLength % step) return step;
  }
  return 0;
}

}  // namespace

int64_t aten_vector_loop_step() {
  static const int64_t step = probe_step();
  return step;
}

AtenLoopSplit aten_loop_split_here(int64_t numel) {
  const int64_t threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  return AtenLoopSplit(numel, aten_vector_loop_step(), threads);
}

}  // namespace linquant
