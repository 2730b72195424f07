// Library-internal, shared by the exporters: IR ops grouped by how an exporter treats them.
// Each exporter maps a family to its lowering, so a new op joins both by joining a family.
#pragma once

#include "linquant/ir/op.h"

namespace linquant::graph_export {

enum class OpFamily {
  weighted,  // conv, conv_transpose, linear, embedding: a model weight
  matmul,    // two data inputs
  einsum,
  normalization,  // batch_norm, layer_norm
  activation,     // relu .. elu, softmax, log_softmax
  pool,           // max/avg/adaptive pooling, mean
  shape,          // flatten, reshape, permute, transpose, cat
  passthrough,    // identity, dropout (inference)
  elementwise,    // add, sub, mul, div
  quantization,   // quantize_dequantize: a finalized activation quantizer
  torch_op,       // a generic LibTorch operator, by schema
  list,           // tensor lists between generic ops
  unpack,
  value,     // constant, model_tensor: never depends on the input data
  prepared,  // fake_quantize: only in prepared (unfinalized) graphs
  opaque,    // float_module: a submodule the capture did not enter
};

OpFamily family_of(ir::Op op);

}  // namespace linquant::graph_export
