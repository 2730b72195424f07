// How linquant's element-wise kernels split work across LibTorch's intra-op threads.
// Callers must be built with OpenMP (ATen's parallel_for is an OpenMP loop compiled into the
// caller; src/CMakeLists.txt links OpenMP::OpenMP_CXX where this is used).
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

namespace linquant {

// Elements per parallel task: large enough that thread start-up does not dominate.
constexpr int64_t kParallelGrain = 32768;

// body(row) for rows [0, rows) of row_length elements each, whole rows per task.
template <typename Body>
void parallel_for_rows(int64_t rows, int64_t row_length, const Body& body) {
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(row_length, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) body(row);
  });
}

}  // namespace linquant
