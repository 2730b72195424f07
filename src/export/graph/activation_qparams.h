// Library-internal, shared by the exporters: a finalized activation quantizer, as a
// quantize_dequantize node carries it.
#pragma once

#include <cstdint>

#include "linquant/ir/graph.h"

namespace linquant::graph_export {

struct ActivationQParams {
  double scale = 1.0;  // a float32 value held in a double
  int64_t zero_point = 0;
  int64_t quant_min = 0;
  int64_t quant_max = 255;

  static ActivationQParams of(const ir::Node& node);
  // Exact comparison on purpose: "same parameters" means bit-identical quantizers.
  bool operator==(const ActivationQParams& other) const;
  bool operator!=(const ActivationQParams& other) const { return !(*this == other); }
  bool is_signed() const { return quant_min < 0; }
  // The whole int8 [-128, 127] or uint8 [0, 255] grid, which the exported quantize ops saturate
  // to (a narrower range cannot be expressed by them).
  bool full_range() const;
};

// The checks every exporter makes before writing a quantize op: a full 8-bit range, the zero
// point inside it, a positive finite float32 scale. Throws ExportError naming the node.
void check_activation_qparams(const ir::Node& node, const ActivationQParams& q, const char* format);

}  // namespace linquant::graph_export
