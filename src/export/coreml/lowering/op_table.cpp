// Which lowering handles each IR op. Ops left out have no Core ML mapping: fake_quantize
// (a prepared, unfinalized graph), float_module (an opaque call), and, for now, the generic
// torch_op with the value ops that feed it; graph_to_mil.cpp turns them into errors naming
// the operator, module and source line before anything is built.
#include "lowering.h"

namespace linquant::coreml::lowering {

LowerFn find_lowering(ir::Op op) {
  using ir::Op;
  switch (op) {
    case Op::conv:
    case Op::conv_transpose:
    case Op::linear: return lower_weighted;
    case Op::matmul: return lower_matmul;
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
    case Op::fake_quantize:
    case Op::float_module:
    case Op::torch_op:
    case Op::constant:
    case Op::model_tensor:
    case Op::list:
    case Op::unpack: return nullptr;
  }
  return nullptr;
}

}  // namespace linquant::coreml::lowering
