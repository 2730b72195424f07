#include "op_family.h"

namespace linquant::graph_export {

OpFamily family_of(ir::Op op) {
  using ir::Op;
  switch (op) {
    case Op::conv:
    case Op::conv_transpose:
    case Op::linear:
    case Op::embedding:
      return OpFamily::weighted;
    case Op::matmul:
      return OpFamily::matmul;
    case Op::einsum:
      return OpFamily::einsum;
    case Op::batch_norm:
    case Op::layer_norm:
      return OpFamily::normalization;
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
    case Op::elu:
      return OpFamily::activation;
    case Op::max_pool:
    case Op::avg_pool:
    case Op::adaptive_avg_pool:
    case Op::mean:
      return OpFamily::pool;
    case Op::flatten:
    case Op::reshape:
    case Op::permute:
    case Op::transpose:
    case Op::cat:
      return OpFamily::shape;
    case Op::identity:
    case Op::dropout:
      return OpFamily::passthrough;
    case Op::add:
    case Op::sub:
    case Op::mul:
    case Op::div:
      return OpFamily::elementwise;
    case Op::quantize_dequantize:
      return OpFamily::quantization;
    case Op::torch_op:
      return OpFamily::torch_op;
    case Op::list:
      return OpFamily::list;
    case Op::unpack:
      return OpFamily::unpack;
    case Op::constant:
    case Op::model_tensor:
      return OpFamily::value;
    case Op::fake_quantize:
      return OpFamily::prepared;
    case Op::float_module:
      return OpFamily::opaque;
  }
  return OpFamily::opaque;
}

}  // namespace linquant::graph_export
