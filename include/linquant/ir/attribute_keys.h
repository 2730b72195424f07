// Names of the node attributes that more than one layer reads or writes. The layers agree on
// an attribute through these constants, never through a repeated string literal, so a rename
// or a typo is a compile error. An attribute only one op's own code uses (an op's "stride" in
// its capture rule, kernel and lowering) is listed in the op table's required attributes
// (src/ir/op.cpp) and documented in docs/ir.md.
#pragma once

namespace linquant::ir::attr {

// Model tensors a node computes with, by qualified name (capture sets them; the runtime,
// finalize, report and exporters read them).
inline constexpr char weight[] = "weight";
inline constexpr char bias[] = "bias";
inline constexpr char running_mean[] = "running_mean";
inline constexpr char running_var[] = "running_var";
inline constexpr char num_batches_tracked[] = "num_batches_tracked";
// model_tensor nodes: the tensor used as a value.
inline constexpr char tensor[] = "tensor";

// Generic and structural ops.
inline constexpr char schema[] = "schema";              // torch_op: "aten::squeeze.dim"
inline constexpr char value[] = "value";                // constant: an ir::Constant
inline constexpr char element_type[] = "element_type";  // list: "Tensor", "int", ...
inline constexpr char module[] = "module";              // float_module: the submodule called

// Set by the passes (fusion and quantizer placement), read by runtime, finalize and report.
inline constexpr char quantizer[] = "quantizer";                // fake_quantize: its module
inline constexpr char weight_quantizer[] = "weight_quantizer";  // weighted ops
inline constexpr char fused_with[] = "fused_with";              // an activation: its root node
// A BatchNorm folded into the conv/linear before it: the BatchNorm's tensors and constants.
inline constexpr char bn_weight[] = "bn_weight";
inline constexpr char bn_bias[] = "bn_bias";
inline constexpr char bn_running_mean[] = "bn_running_mean";
inline constexpr char bn_running_var[] = "bn_running_var";
inline constexpr char bn_num_batches_tracked[] = "bn_num_batches_tracked";
inline constexpr char bn_eps[] = "bn_eps";
inline constexpr char bn_momentum[] = "bn_momentum";
inline constexpr char bn_module[] = "bn_module";

// Every attribute above whose value names a model tensor.
inline constexpr const char* tensor_keys[] = {
    weight,    bias,    running_mean,    running_var,    num_batches_tracked,   tensor,
    bn_weight, bn_bias, bn_running_mean, bn_running_var, bn_num_batches_tracked};
// Every attribute naming a quantizer module.
inline constexpr const char* quantizer_keys[] = {quantizer, weight_quantizer};

// Set by finalize, read by the exporters: a quantize_dequantize node's parameters ...
inline constexpr char scale[] = "scale";
inline constexpr char zero_point[] = "zero_point";
inline constexpr char quant_min[] = "quant_min";
inline constexpr char quant_max[] = "quant_max";
inline constexpr char activation_quantizer[] = "activation_quantizer";
// Set by finalize for a learnable (LSQ) quantizer: the node computes x / scale, as the
// quantizer did, rather than x * (1 / scale).
inline constexpr char divides_by_scale[] = "divides_by_scale";
// ... and a weighted node's finalized weight grid.
inline constexpr char weight_bits[] = "weight_bits";
inline constexpr char weight_scale[] = "weight_scale";
inline constexpr char weight_zero_point[] = "weight_zero_point";
inline constexpr char weight_axis[] = "weight_axis";
inline constexpr char weight_quant_min[] = "weight_quant_min";
inline constexpr char weight_quant_max[] = "weight_quant_max";

}  // namespace linquant::ir::attr
