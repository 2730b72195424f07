// Library-internal, shared by the exporters: a finalized weight as integers on its grid.
#pragma once

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "linquant/ir/graph.h"

namespace linquant::graph_export {

// A finalized weight on its integer grid: weight = scale[c] * (q - zero_point[c]) with c the
// index along `axis` (axis -1: one scale for the whole tensor).
struct GridWeight {
  std::vector<int64_t> shape;
  std::vector<int32_t> q;
  std::vector<float> scale;
  std::vector<int32_t> zero_point;
  int64_t axis = -1;  // -1: per tensor
  int64_t bits = 8;

  bool is_signed() const {
    // coremltools' rule: unsigned storage iff every value and every zero point is >= 0.
    const bool q_unsigned = std::all_of(q.begin(), q.end(), [](int32_t v) { return v >= 0; });
    const bool zp_unsigned =
        std::all_of(zero_point.begin(), zero_point.end(), [](int32_t v) { return v >= 0; });
    return !(q_unsigned && zp_unsigned);
  }
  bool fits(int32_t lo, int32_t hi) const {
    auto in = [&](int32_t v) { return v >= lo && v <= hi; };
    return std::all_of(q.begin(), q.end(), in) &&
           std::all_of(zero_point.begin(), zero_point.end(), in);
  }
  bool has_offset() const {
    return std::any_of(zero_point.begin(), zero_point.end(), [](int32_t v) { return v != 0; });
  }
};

// Recovers q from the finalized float weight of a weighted node and checks that
// scale * (q - zero_point) gives the weight back bit for bit: what finalize() guarantees, and
// what makes the export lossless. Throws ExportError naming the node otherwise.
GridWeight read_grid_weight(const ir::Node& node, const ir::Graph& graph);

// A tensor's values as float32, in row-major order.
std::vector<float> float_vector(const at::Tensor& tensor);

}  // namespace linquant::graph_export
