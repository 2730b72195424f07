// Which elements ATen 1.13's element-wise CPU loops (cpu_kernel_vec) hand to their scalar
// lambda instead of their vector one, for contiguous float32 operands of n elements. Most ops
// give the same bits either way; a few do not (hardswish_backward at x == 3 and at NaN), and a
// kernel that fuses such an op must pick the same rule per element to keep ATen's bits.
//
// ATen splits [0, n) into at most `threads` equal chunks of at least 32768 elements
// (at::parallel_for with TensorIterator's grain, OpenMP's team size), and within each chunk
// runs the vector lambda on whole groups of `step` elements (two vectors) from the chunk's
// start; the chunk's last (length % step) elements take the scalar lambda.
#pragma once

#include <algorithm>
#include <cstdint>

namespace linquant {

class AtenLoopSplit {
 public:
  // threads: the intra-op threads ATen would use (1 inside a parallel region).
  AtenLoopSplit(int64_t numel, int64_t step, int64_t threads)
      : numel_(numel), step_(step), chunk_(chunk_length(numel, threads)) {}

  // True when ATen computes element i with the scalar lambda.
  bool scalar_at(int64_t i) const {
    const int64_t begin = i / chunk_ * chunk_;
    const int64_t length = std::min(numel_, begin + chunk_) - begin;
    return i - begin >= length - length % step_;
  }

 private:
  static constexpr int64_t kAtenGrain = 32768;

  static int64_t chunk_length(int64_t numel, int64_t threads) {
    if (numel <= kAtenGrain || threads <= 1) return std::max<int64_t>(numel, 1);
    const int64_t chunks = std::min(threads, (numel + kAtenGrain - 1) / kAtenGrain);
    return (numel + chunks - 1) / chunks;
  }

  int64_t numel_;
  int64_t step_;
  int64_t chunk_;
};

// The vector loop's step of the running ATen (16 for AVX2 and baseline builds, 32 with its
// AVX-512 kernels), found once by running hardswish_backward on a probe; 0 when the probe
// matches no such loop (then callers keep the unfused ops).
int64_t aten_vector_loop_step();

// AtenLoopSplit for n elements with the running ATen's step (aten_vector_loop_step(), which
// must be found) on the threads ATen would use right now on this thread.
AtenLoopSplit aten_loop_split_here(int64_t numel);

}  // namespace linquant
