// The operations of linquant's graph IR, with the facts the passes need about each:
// how coremltools quantizes its output, and which operations it fuses with.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace linquant::ir {

enum class Op {
  // Weighted: their weights get weight fake-quantizers.
  conv,            // attrs: weight, bias?, stride, padding, dilation, groups, spatial_dims
  conv_transpose,  // attrs: as conv, plus output_padding
  linear,          // attrs: weight, bias?
  embedding,       // attrs: weight, padding_idx, scale_grad_by_freq, sparse; input: indices
  // Normalization.
  batch_norm,  // attrs: weight?, bias?, running_mean, running_var, eps, momentum
  layer_norm,  // attrs: normalized_shape, weight?, bias?, eps
  // Activations.
  relu,
  relu6,
  leaky_relu,  // attrs: negative_slope
  hardswish,
  hardsigmoid,
  sigmoid,
  tanh,
  softmax,      // attrs: dim
  log_softmax,  // attrs: dim
  gelu,         // attrs: approximate ("none" | "tanh")
  silu,
  elu,  // attrs: alpha
  // Pooling.
  max_pool,  // attrs: kernel_size, stride, padding, dilation, ceil_mode, spatial_dims
  avg_pool,  // attrs: kernel_size, stride, padding, ceil_mode, count_include_pad, spatial_dims
  adaptive_avg_pool,  // attrs: output_size
  mean,               // attrs: dims, keepdim
  // Shape and data movement.
  flatten,    // attrs: start_dim, end_dim
  reshape,    // attrs: shape
  permute,    // attrs: dims
  transpose,  // attrs: dim0, dim1
  cat,        // attrs: dim; any number of inputs
  identity,
  dropout,  // attrs: p
  // Elementwise binary ops on two tensors, or a tensor and the scalar attr "scalar".
  add,
  sub,
  mul,
  div,
  matmul,
  einsum,  // attrs: equation; inputs: the operands (torch.einsum's tensor list)
  // Quantization.
  fake_quantize,        // attrs: quantizer (name of the FakeQuantize module)
  quantize_dequantize,  // attrs: scale, zero_point, quant_min, quant_max (finalized activations)
  // A submodule kept as an opaque float call (non_traceable_module_names).
  float_module,  // attrs: module (qualified name)
  // Any other LibTorch operator, run as TorchScript runs it (dispatcher or JIT operator
  // registry), in float: it is quantized only where a quantized op consumes its output.
  torch_op,  // attrs: schema ("aten::squeeze.dim"); inputs: every schema argument, in order;
             // outputs: every schema return
  // Values that are not activations.
  constant,      // attrs: value (Constant); no inputs
  model_tensor,  // attrs: tensor (a graph tensor used as a value: x * self.scale); no inputs
  list,          // attrs: element_type ("Tensor", "int", "float", "bool", "Tensor?", "tuple")
  unpack,        // one list or tuple input; one output per element
};

// How coremltools' backend config treats an op's output (reference section 3.4).
enum class OutputQuantization {
  own_observer,     // gets its own output fake-quantizer
  share_with_input, // output shares the quantizer of its (first) input
  fixed_qparams,    // fixed scale/zero point (sigmoid 1/256, tanh 2/256 with 128)
  not_quantized,    // stays float; quantized only where a quantized op consumes it
};

// One row of the op table (src/ir/op.cpp): everything the layers below the frontend need to
// know about an op besides how to run and export it (runtime/op_kernels.cpp and one lowering
// per exporter, each with a test that every op is covered).
struct OpInfo {
  const char* name;
  int num_inputs;  // -1: variadic
  bool weighted;
  bool is_activation;  // may fuse after conv/linear (coremltools' activation list + ReLU)
  OutputQuantization output;
  // Attribute keys the op cannot run without, space-separated ("weight stride padding").
  const char* required_attributes;
  // Reads values of any type (ints, lists, None); the other ops read tensors only.
  bool reads_any_value;
};

const OpInfo& op_info(Op op);
// Every op, in declaration order.
const std::vector<Op>& all_ops();
std::string to_string(Op op);
std::optional<Op> parse_op(const std::string& name);

}  // namespace linquant::ir
