// Library-internal, shared by the exporters: PyTorch's adaptive average pooling of one axis as
// a matrix, for output sizes whose windows overlap or differ in size.
#pragma once

#include <cstdint>
#include <vector>

namespace linquant::graph_export {

// Row-major [out, in]: row i averages PyTorch's adaptive window i of an axis of length `in`,
// [floor(i * in / out), ceil((i + 1) * in / out)).
std::vector<float> adaptive_average_matrix(int64_t in, int64_t out);

}  // namespace linquant::graph_export
