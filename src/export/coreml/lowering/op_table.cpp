// Which lowering handles each IR op, and why the few without one have none (fake_quantize:
// a prepared, unfinalized graph; float_module: an opaque call; graph_to_mil.cpp turns both
// into errors before anything is built; constant and model_tensor values never depend on the
// input data and become `const` ops where they are read). Every op is in one of the two
// switches: tests/export/coreml_save/op_table_test.cpp checks it.
#include "../../graph/op_family.h"
#include "lowering.h"

namespace linquant::coreml::lowering {

LowerFn find_lowering(ir::Op op) {
  using graph_export::OpFamily;
  switch (graph_export::family_of(op)) {
    case OpFamily::weighted:
      return lower_weighted;
    case OpFamily::matmul:
      return lower_matmul;
    case OpFamily::einsum:
      return lower_einsum;
    case OpFamily::normalization:
      return lower_normalization;
    case OpFamily::activation:
      return lower_activation;
    case OpFamily::pool:
      return lower_pool;
    case OpFamily::shape:
      return lower_shape_op;
    case OpFamily::passthrough:
      return lower_passthrough;
    case OpFamily::elementwise:
      return lower_elementwise;
    case OpFamily::quantization:
      return lower_quantize_dequantize;
    case OpFamily::torch_op:
      return lower_torch_op;
    case OpFamily::list:
      return lower_list;
    case OpFamily::unpack:
      return lower_unpack;
    case OpFamily::value:
    case OpFamily::prepared:
    case OpFamily::opaque:
      return nullptr;
  }
  return nullptr;
}

const char* unlowered_reason(ir::Op op) {
  using ir::Op;
  switch (op) {
    case Op::constant:
    case Op::model_tensor:
      return "never depends on the input data: a const op where it is read";
    case Op::fake_quantize:
      return "only in prepared graphs: export the finalized model (quantize_dequantize)";
    case Op::float_module:
      return "an opaque submodule call: the exporter cannot see inside it";
    default: return nullptr;
  }
}

}  // namespace linquant::coreml::lowering
