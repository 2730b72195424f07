#include "activation_qparams.h"

#include <cmath>
#include <string>

#include "linquant/ir/attribute_keys.h"
#include "node_error.h"

namespace linquant::graph_export {

ActivationQParams ActivationQParams::of(const ir::Node& node) {
  ActivationQParams q;
  q.scale = node.attrs.f(ir::attr::scale);
  q.zero_point = node.attrs.i(ir::attr::zero_point);
  q.quant_min = node.attrs.i(ir::attr::quant_min);
  q.quant_max = node.attrs.i(ir::attr::quant_max);
  return q;
}

bool ActivationQParams::operator==(const ActivationQParams& other) const {
  return scale == other.scale && zero_point == other.zero_point && quant_min == other.quant_min &&
         quant_max == other.quant_max;
}

bool ActivationQParams::full_range() const {
  return (quant_min == 0 && quant_max == 255) || (quant_min == -128 && quant_max == 127);
}

void check_activation_qparams(const ir::Node& node, const ActivationQParams& q,
                              const char* format) {
  if (!q.full_range()) {
    fail(node, "activation range [" + std::to_string(q.quant_min) + ", " +
                   std::to_string(q.quant_max) + "] cannot be exported: " + format +
                   "'s quantize op uses the full uint8 [0, 255] or int8 [-128, 127] range");
  }
  if (q.zero_point < q.quant_min || q.zero_point > q.quant_max) {
    fail(node, "zero point " + std::to_string(q.zero_point) + " is outside [" +
                   std::to_string(q.quant_min) + ", " + std::to_string(q.quant_max) + "]");
  }
  const auto scale = static_cast<float>(q.scale);
  if (!(scale > 0.0f) || !std::isfinite(scale)) {
    fail(node, "activation scale " + std::to_string(q.scale) + " is not a positive finite number");
  }
}

}  // namespace linquant::graph_export
