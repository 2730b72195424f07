// Which lowering handles each IR op, and why the few without one have none (fake_quantize:
// a prepared, unfinalized graph; float_module: an opaque call; graph_to_mil.cpp turns both
// into errors before anything is built; constant and model_tensor values never depend on the
// input data and become `const` ops where they are read). Every op is in one of the two
// switches: tests/export/coreml_save/op_table_test.cpp checks it.
#include "lowering.h"

namespace linquant::coreml::lowering {

LowerFn find_lowering(ir::Op op) {
  using ir::Op;
  switch (op) {
    case Op::conv:
    case Op::conv_transpose:
    case Op::linear:
    case Op::embedding: return lower_weighted;
    case Op::matmul: return lower_matmul;
    case Op::einsum:
      return lower_einsum;
    case Op::batch_norm:
    case Op::layer_norm: return lower_normalization;
    case Op::relu:
    case Op::relu6:
    case Op::leaky_relu:
    case Op::hardswish:
    case Op::hardsigmoid:
    case Op::sigmoid:
    case Op::tanh:
    case Op::softmax:
    case Op::log_softmax:
    case Op::gelu:
    case Op::silu:
    case Op::elu: return lower_activation;
    case Op::max_pool:
    case Op::avg_pool:
    case Op::adaptive_avg_pool:
    case Op::mean: return lower_pool;
    case Op::flatten:
    case Op::reshape:
    case Op::permute:
    case Op::transpose:
    case Op::cat: return lower_shape_op;
    case Op::identity:
    case Op::dropout: return lower_passthrough;
    case Op::add:
    case Op::sub:
    case Op::mul:
    case Op::div: return lower_elementwise;
    case Op::quantize_dequantize: return lower_quantize_dequantize;
    case Op::torch_op: return lower_torch_op;
    case Op::list: return lower_list;
    case Op::unpack: return lower_unpack;
    case Op::constant:
    case Op::model_tensor:
    case Op::fake_quantize:
    case Op::float_module: return nullptr;
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
