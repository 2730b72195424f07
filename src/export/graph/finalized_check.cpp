#include "finalized_check.h"

#include "linquant/ir/attribute_keys.h"
#include "node_error.h"

namespace linquant::graph_export {

void check_finalized(const ir::Node& node, const std::string& format) {
  if (node.op == ir::Op::fake_quantize) {
    fail(node,
         "the graph is prepared but not finalized (fake quantizers in place); export the "
         "model LinearQuantizer::finalize() returns");
  }
  if (node.op == ir::Op::float_module) {
    fail(node, "submodule '" + node.attrs.s(ir::attr::module, "?") +
                   "' is kept as an opaque float call (non_traceable_module_names), which "
                   "cannot be exported to " +
                   format + "; capture it instead (take it out of non_traceable_module_names)");
  }
  if (!ir::op_info(node.op).weighted) return;
  if (node.attrs.has(ir::attr::weight_quantizer) || node.attrs.has(ir::attr::bn_running_var)) {
    fail(node,
         "the graph is prepared but not finalized (weight fake-quantizer or fused "
         "BatchNorm still in place); export the model LinearQuantizer::finalize() returns");
  }
  if (!node.attrs.has(ir::attr::weight_scale)) return;
  for (const char* key :
       {ir::attr::weight_zero_point, ir::attr::weight_axis, ir::attr::weight_quant_min,
        ir::attr::weight_quant_max, ir::attr::weight_bits}) {
    if (!node.attrs.has(key)) {
      fail(node, std::string("quantized weight without '") + key + "' metadata");
    }
  }
  const int64_t bits = node.attrs.i(ir::attr::weight_bits);
  if (bits != 8 && bits != 4) {
    fail(node, "weights quantized to " + std::to_string(bits) + " bits cannot be exported to " +
                   format + " (8-bit and 4-bit weights only)");
  }
}

}  // namespace linquant::graph_export
