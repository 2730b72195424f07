#include "grid_weight.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstring>
#include <string>

#include "linquant/ir/attribute_keys.h"
#include "node_error.h"

namespace linquant::graph_export {
namespace {

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

std::vector<float> float_vector(const at::Tensor& tensor) {
  const at::Tensor t = tensor.detach().to(at::kCPU).to(at::kFloat).contiguous();
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
}

GridWeight read_grid_weight(const ir::Node& node, const ir::Graph& graph) {
  GridWeight grid;
  const at::Tensor& weight = model_tensor(graph, node, ir::attr::weight);
  const std::vector<float> w = float_vector(weight);
  grid.shape = weight.sizes().vec();
  grid.scale = float_vector(model_tensor(graph, node, ir::attr::weight_scale));
  const at::Tensor zp = model_tensor(graph, node, ir::attr::weight_zero_point)
                            .detach()
                            .to(at::kCPU)
                            .to(at::kInt)
                            .contiguous();
  grid.zero_point.assign(zp.data_ptr<int32_t>(), zp.data_ptr<int32_t>() + zp.numel());
  grid.axis = node.attrs.i(ir::attr::weight_axis);
  grid.bits = node.attrs.i(ir::attr::weight_bits);
  const int64_t qmin = node.attrs.i(ir::attr::weight_quant_min);
  const int64_t qmax = node.attrs.i(ir::attr::weight_quant_max);

  const auto rank = static_cast<int64_t>(grid.shape.size());
  int64_t channels = 1;
  int64_t inner = 1;
  if (grid.axis >= 0) {
    if (grid.axis >= rank) {
      fail(node, "weight_axis " + std::to_string(grid.axis) + " is out of range");
    }
    channels = grid.shape[static_cast<size_t>(grid.axis)];
    for (int64_t d = grid.axis + 1; d < rank; ++d) inner *= grid.shape[static_cast<size_t>(d)];
  }
  if (static_cast<int64_t>(grid.scale.size()) != channels ||
      grid.zero_point.size() != grid.scale.size()) {
    fail(node, "weight_scale / weight_zero_point have " + std::to_string(grid.scale.size()) +
                   " / " + std::to_string(grid.zero_point.size()) + " entries, the weight has " +
                   std::to_string(channels) + " channels along axis " + std::to_string(grid.axis));
  }

  grid.q.resize(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    const size_t c =
        grid.axis >= 0 ? (i / static_cast<size_t>(inner)) % static_cast<size_t>(channels) : 0;
    const float s = grid.scale[c];
    const int32_t z = grid.zero_point[c];
    if (!(s > 0.0f) || !std::isfinite(s)) {
      fail(node, "weight scale " + std::to_string(s) + " of channel " + std::to_string(c) +
                     " is not a positive finite number");
    }
    const double q = std::nearbyint(static_cast<double>(w[i]) / static_cast<double>(s)) + z;
    if (q < static_cast<double>(qmin) || q > static_cast<double>(qmax)) {
      fail(node, "weight element " + std::to_string(i) + " maps to " + std::to_string(q) +
                     ", outside its quantization range [" + std::to_string(qmin) + ", " +
                     std::to_string(qmax) + "]");
    }
    grid.q[i] = static_cast<int32_t>(q);
    // The runtime's fake-quantize arithmetic: float(q - zp) * scale in float32.
    const float back = static_cast<float>(grid.q[i] - z) * s;
    if (!same_bits(back, w[i])) {
      fail(node, "the weight is not on its quantization grid (element " + std::to_string(i) + ": " +
                     std::to_string(w[i]) +
                     " is not scale * (q - zero_point)); export "
                     "the model returned by LinearQuantizer::finalize()");
    }
  }
  return grid;
}

}  // namespace linquant::graph_export
