// Facts about ops that several passes share: which activations fuse, which producers are
// non-negative, what a node's output quantization is. Internal to the passes layer.
#pragma once

#include "linquant/ir/graph.h"

namespace linquant::passes {

// Weighted ops: conv, conv_transpose, linear.
bool is_weighted(const ir::Node& node);
// Activations coremltools fuses after conv/linear/binary ops: any activation module, ReLU
// also as a function; functional activations only after binary ops (`after_binary`).
bool is_fusable_activation(const ir::Node& node, bool after_binary);
// How the node's output is quantized, with the functional exceptions: torch.sigmoid,
// torch.tanh, F.softmax and F.batch_norm stay float; only the modules are quantized.
ir::OutputQuantization output_rule(const ir::Node& node);
// ReLU (module or function) and the ReLU6 module, except after a standalone BatchNorm
// (coremltools' always-affine list lacks BNReLU2d).
bool is_nonnegative_producer(const ir::Graph& graph, const ir::Node& node);
// The fixed output range of sigmoid-like ops, if the op has one.
std::optional<QParam> fixed_output_qparams(ir::Op op);
// The node that produced `value`, or null for graph inputs.
const ir::Node* producer_of(const ir::Graph& graph, ir::ValueId value);
// Every fake_quantize node using `quantizer`.
std::vector<size_t> nodes_using_quantizer(const ir::Graph& graph, const std::string& quantizer);

}  // namespace linquant::passes
