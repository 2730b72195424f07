#include "adaptive_windows.h"

#include <cstddef>

namespace linquant::graph_export {

std::vector<float> adaptive_average_matrix(int64_t in, int64_t out) {
  std::vector<float> m(static_cast<size_t>(out * in), 0.0f);
  for (int64_t i = 0; i < out; ++i) {
    const int64_t begin = i * in / out;
    const int64_t end = ((i + 1) * in + out - 1) / out;
    for (int64_t j = begin; j < end; ++j) {
      m[static_cast<size_t>(i * in + j)] = 1.0f / static_cast<float>(end - begin);
    }
  }
  return m;
}

}  // namespace linquant::graph_export
