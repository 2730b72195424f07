#include "adaptive_windows.h"

#include <cstddef>
#include <string>

#include "node_error.h"

namespace linquant::graph_export {

AdaptivePooling adaptive_pooling(const ir::Node& node, const std::vector<int64_t>& in_shape) {
  AdaptivePooling p;
  p.out = node.attrs.ints("output_size");
  const size_t dims = p.out.size();
  const size_t rank = in_shape.size();
  if (dims < 1 || rank < dims + 1) fail(node, "output_size does not fit the input's rank");
  for (size_t d = 0; d < dims; ++d) {
    const size_t axis = rank - dims + d;
    if (p.out[d] < 1) fail(node, "output_size " + std::to_string(p.out[d]) + " is not positive");
    p.axes.push_back(static_cast<int64_t>(axis));
    p.in.push_back(in_shape[axis]);
    p.global = p.global && p.out[d] == 1;
    p.divides = p.divides && in_shape[axis] % p.out[d] == 0;
    p.kernel.push_back(in_shape[axis] / p.out[d]);
  }
  p.batched = rank == dims + 2;
  return p;
}

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
