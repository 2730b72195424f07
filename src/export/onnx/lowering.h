// Library-internal: what the ONNX graph walk (graph_to_onnx.cpp) and the per-family op
// lowerings share: the graph under construction, the graph value -> ONNX value map, the
// integer (QuantizeLinear) form of quantized values with one DequantizeLinear per consumer,
// and recorded constants.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../graph/activation_qparams.h"
#include "../graph/data_dependence.h"
#include "../graph/node_error.h"
#include "../graph/shaped_graph.h"
#include "linquant/export/onnx/save.h"
#include "linquant/ir/graph.h"
#include "onnx_builder.h"

namespace linquant::onnx::lowering {

using graph_export::ActivationQParams;
using graph_export::ConstantValues;
using graph_export::fail;
using graph_export::normalize_axis;
using graph_export::number_attr;
using graph_export::spatial_ints;

// A graph value held as the integer output of a QuantizeLinear.
struct QuantizedValue {
  std::string integer;
  ActivationQParams qparams;
};

class Context {
 public:
  // output_names: the model output name a node producing that value takes directly.
  Context(const ir::Graph& graph, OnnxBuilder& builder, const SaveOptions& options,
          std::map<ir::ValueId, std::string> output_names, const ConstantValues* constants);

  const ir::Graph& graph() const { return graph_; }
  OnnxBuilder& builder() { return builder_; }
  int64_t opset() const { return options_.opset; }
  bool integer_bias() const { return options_.integer_bias; }
  bool uint8_weights() const { return options_.uint8_weights; }

  // The float value of input k of `node`: the value itself, a DequantizeLinear of its own for
  // a quantized value (one per consumer: runtimes fuse each consumer with its DequantizeLinear),
  // or an initializer for a value that does not depend on the input data.
  std::string input(const ir::Node& node, size_t k = 0);
  void define(ir::ValueId id, std::string name);
  void define_quantized(ir::ValueId id, QuantizedValue value);
  const QuantizedValue* quantized(ir::ValueId id) const;
  bool is_defined(ir::ValueId id) const;
  // The float value of a graph output (a DequantizeLinear of its own if it is quantized).
  std::string output_value(ir::ValueId id, const std::string& name);

  // QuantizeLinear / DequantizeLinear with an activation quantizer's parameters.
  std::string quantize(const std::string& x, const ActivationQParams& q, const std::string& name);
  std::string dequantize(const QuantizedValue& value, const std::string& name);

  const std::vector<int64_t>& shape(ir::ValueId id) const;
  const at::Tensor& model_tensor(const ir::Node& node, const std::string& key) const;
  // The recorded value of input k, which must not depend on the input data.
  bool is_constant(ir::ValueId id) const;
  const at::Tensor constant_tensor(const ir::Node& node, size_t k) const;

  // Name for the value a node's output k becomes: the model output name for a graph output
  // the node produces directly, else the graph value's name.
  std::string output_name(const ir::Node& node, size_t k = 0) const;
  // "<output name>_<suffix>", for a node's helper values and initializers.
  std::string helper_name(const ir::Node& node, const std::string& suffix) const;

  // Constants shared across the graph (scales, zero points, shapes) by what they hold.
  std::string float_scalar(float value);
  std::string int64s(const std::vector<int64_t>& values);

  // Initializers named after a model tensor, created once (modules called twice share them).
  std::map<std::string, std::string>& tensor_values() { return tensor_values_; }

 private:
  std::string zero_point(const ActivationQParams& q);

  const ir::Graph& graph_;
  OnnxBuilder& builder_;
  const SaveOptions& options_;
  std::map<ir::ValueId, std::string> output_names_;
  const ConstantValues* constants_;
  std::map<ir::ValueId, std::string> floats_;
  std::map<ir::ValueId, QuantizedValue> quantized_;
  std::map<std::pair<ir::ValueId, const ir::Node*>, std::string> dequantized_;
  std::map<uint32_t, std::string> float_scalars_;
  std::map<std::vector<int64_t>, std::string> int64_lists_;
  std::map<std::pair<bool, int64_t>, std::string> zero_points_;
  std::map<std::string, std::string> tensor_values_;
};

// One lowering per op family; each emits the node's ONNX nodes and defines its outputs.
using LowerFn = void (*)(const ir::Node& node, Context& context);
// nullptr for ops without an ONNX mapping (graph_to_onnx.cpp checks them first).
LowerFn find_lowering(ir::Op op);

void lower_weighted(const ir::Node& node, Context& context);             // weighted_ops.cpp
void lower_matmul(const ir::Node& node, Context& context);               // weighted_ops.cpp
void lower_activation(const ir::Node& node, Context& context);           // activation_ops.cpp
void lower_pool(const ir::Node& node, Context& context);                 // pool_ops.cpp
void lower_shape_op(const ir::Node& node, Context& context);             // tensor_ops.cpp
void lower_passthrough(const ir::Node& node, Context& context);          // tensor_ops.cpp
void lower_elementwise(const ir::Node& node, Context& context);          // tensor_ops.cpp
void lower_normalization(const ir::Node& node, Context& context);        // norm_ops.cpp
void lower_quantize_dequantize(const ir::Node& node, Context& context);  // quantization_ops.cpp

// quantization_ops.cpp: ops whose output is on their input's quantization grid (max pooling,
// reshapes, transposes) run in float between a DequantizeLinear and a QuantizeLinear with the
// input's parameters, which changes no value and lets runtimes run them on the integers.
void define_on_input_grid(const ir::Node& node, const std::string& y, Context& context);

// reduce_ops: ReduceMean over `axes` (an attribute before opset 18, an input from 18 on).
std::string reduce_mean(Context& context, const std::string& x, const std::vector<int64_t>& axes,
                        bool keep_dims, const std::string& name);

// Checks done before anything is built: a mapping for every op, a finalized graph, weights
// the opset can hold. Throws ExportError naming the node and the fix.
void check_exportable(const ir::Graph& graph, const SaveOptions& options);

}  // namespace linquant::onnx::lowering
