// Library-internal, shared by the exporters: how an adaptive_avg_pool node's windows fall on
// its input, and PyTorch's adaptive average pooling of one axis as a matrix, for output sizes
// whose windows overlap or differ in size.
#pragma once

#include <cstdint>
#include <vector>

#include "linquant/ir/graph.h"

namespace linquant::graph_export {

struct AdaptivePooling {
  std::vector<int64_t> axes;    // the pooled axes: the last output_size.size() ones
  std::vector<int64_t> in;      // their input sizes
  std::vector<int64_t> out;     // output_size
  std::vector<int64_t> kernel;  // in / out, per axis
  bool global = true;           // every output size is 1
  bool divides = true;          // every input size is a multiple of its output size
  bool batched = false;         // the input is [N, C, *pooled]: what pooling ops take
};

// Throws ExportError naming the node when output_size does not fit the input's shape.
AdaptivePooling adaptive_pooling(const ir::Node& node, const std::vector<int64_t>& in_shape);

// Row-major [out, in]: row i averages PyTorch's adaptive window i of an axis of length `in`,
// [floor(i * in / out), ceil((i + 1) * in / out)).
std::vector<float> adaptive_average_matrix(int64_t in, int64_t out);

}  // namespace linquant::graph_export
