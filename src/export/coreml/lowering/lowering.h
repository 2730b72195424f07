// Library-internal: what the graph walk (graph_to_mil.cpp) and the per-family op lowerings
// share: the program under construction, the graph value -> MIL variable map, the integer
// forms of quantized values, constants in the program's precision, and naming.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../../graph/activation_qparams.h"
#include "../../graph/data_dependence.h"
#include "../../graph/node_error.h"
#include "../../graph/shaped_graph.h"
#include "linquant/export/coreml/export_error.h"
#include "linquant/export/coreml/mil_builder.h"
#include "linquant/export/coreml/save.h"
#include "linquant/export/coreml/target.h"
#include "linquant/ir/graph.h"

namespace linquant::coreml::lowering {

using graph_export::ActivationQParams;
using graph_export::ConstantValues;
using graph_export::data_dependent_values;
using graph_export::fail;
using graph_export::needs_lowering;
using graph_export::node_label;
using graph_export::normalize_axis;
using graph_export::number_attr;
using graph_export::spatial_ints;

// A graph value that also exists as the integer output of a MIL quantize op (before its
// dequantize): the integer-reshape fold and the dequantize -> quantize pair elimination use it.
struct IntegerForm {
  Var integer;
  ActivationQParams qparams;
};

class LoweringContext {
 public:
  // output_names: the names of the ops producing graph outputs directly (by value);
  // reserved_names: every model output name, which no other op may take.
  LoweringContext(const ir::Graph& graph, ProgramBuilder& builder, ComputePrecision precision,
                  std::map<ir::ValueId, std::string> output_names,
                  std::set<std::string> reserved_names, const ConstantValues* constants);

  const ir::Graph& graph() const { return graph_; }
  ProgramBuilder& builder() { return builder_; }
  Target target() const { return builder_.target(); }
  ComputePrecision precision() const { return precision_; }
  // fp16 or fp32: the element type of every float tensor inside the program.
  DType float_dtype() const;

  // Constants in the program's float precision.
  TensorValue float_values(Shape shape, const std::vector<float>& values) const;
  TensorValue float_scalar(double value) const;
  TensorValue float_tensor(const at::Tensor& tensor) const;
  // The graph tensor an attribute of `node` names ("weight", "running_mean", ...).
  const at::Tensor& model_tensor(const ir::Node& node, const std::string& key) const;

  // Graph values -> program variables.
  void define(ir::ValueId id, const Var& var);
  bool is_defined(ir::ValueId id) const { return vars_.count(id) != 0; }
  const Var& var(ir::ValueId id) const;
  // Input k of a node, which must have a variable; a value that does not depend on the input
  // data becomes a `const` op the first time it is read.
  const Var& input(const ir::Node& node, size_t k = 0) const;
  // The recorded value of a value that does not depend on the input data (sizes, constants,
  // model tensors); fails naming the node otherwise.
  bool is_constant(ir::ValueId id) const;
  const c10::IValue& constant(const ir::Node& node, size_t k) const;
  int64_t constant_int(const ir::Node& node, size_t k) const;
  double constant_double(const ir::Node& node, size_t k) const;
  std::vector<int64_t> constant_ints(const ir::Node& node, size_t k) const;  // int or int[]
  // The variables of a list of tensors (a list node's output, or a split's).
  void define_list(ir::ValueId id, std::vector<Var> vars);
  std::vector<Var> list(const ir::Node& node, size_t k) const;
  void define_integer(ir::ValueId id, const IntegerForm& form);
  const IntegerForm* integer_form(ir::ValueId id) const;

  // Recorded shapes and the float type of a value.
  const Shape& shape(ir::ValueId id) const;
  TensorType float_type(ir::ValueId id) const;
  TensorType output_type(const ir::Node& node) const { return float_type(node.outputs.at(0)); }

  // Name of the op producing a node's output: the model output name for graph outputs, else
  // the value's name as a MIL identifier, moved aside ("<name>_value") when a model output
  // is to be called that.
  std::string output_name(const ir::Node& node) const;
  // "<output name>_<suffix>", for the helper ops and constants of one node.
  std::string helper_name(const ir::Node& node, const std::string& suffix) const;

  // Weight and bias variables by tensor name: nodes calling one module share them.
  std::map<std::string, Var>& tensor_vars() { return tensor_vars_; }

 private:
  // `name`, with "_value" appended while it is a model output name.
  std::string unreserved(std::string name) const;

  const ir::Graph& graph_;
  ProgramBuilder& builder_;
  ComputePrecision precision_;
  std::map<ir::ValueId, std::string> output_names_;
  std::set<std::string> reserved_names_;
  const ConstantValues* constants_;
  mutable std::map<ir::ValueId, Var> vars_;  // constants are added when first read
  std::map<ir::ValueId, std::vector<Var>> lists_;
  std::map<ir::ValueId, IntegerForm> integer_forms_;
  std::map<std::string, Var> tensor_vars_;
};

std::vector<std::int32_t> to_int32(const ir::Node& node, const std::vector<int64_t>& values);

// graph_to_mil.cpp: everything that can be checked without building anything (ops with a
// mapping, a finalized graph, target requirements such as 4-bit weights -> iOS18, feature
// names). Throws ExportError naming the node and the fix.
void check_exportable(const ir::Graph& graph, const SaveOptions& options);

// The program for a graph whose shapes (and constants, when it has generic ops) are recorded.
ProgramBuilder build_program(const ir::Graph& graph, const SaveOptions& options,
                             const ConstantValues* constants);

// One lowering per op family; each emits the node's ops and defines its outputs.
using LowerFn = void (*)(const ir::Node& node, LoweringContext& context);
// nullptr for ops without a Core ML mapping (op_table.cpp) ...
LowerFn find_lowering(ir::Op op);
// ... which say why here (nullptr for the ops that have one).
const char* unlowered_reason(ir::Op op);

void lower_weighted(const ir::Node& node, LoweringContext& context);      // conv_ops.cpp
void lower_matmul(const ir::Node& node, LoweringContext& context);        // conv_ops.cpp
void lower_einsum(const ir::Node& node, LoweringContext& context);        // einsum_ops.cpp
void lower_activation(const ir::Node& node, LoweringContext& context);    // activation_ops.cpp
void lower_pool(const ir::Node& node, LoweringContext& context);          // pool_ops.cpp
void lower_shape_op(const ir::Node& node, LoweringContext& context);      // shape_ops.cpp
void lower_passthrough(const ir::Node& node, LoweringContext& context);   // shape_ops.cpp
void lower_elementwise(const ir::Node& node, LoweringContext& context);   // elementwise_ops.cpp
void lower_normalization(const ir::Node& node, LoweringContext& context); // norm_ops.cpp
// quantization_ops.cpp
void lower_quantize_dequantize(const ir::Node& node, LoweringContext& context);
// torch_ops.cpp: generic torch_op nodes, by operator (find_torch_op_lowering), and the list
// and unpack nodes that carry tensor lists between them.
void lower_torch_op(const ir::Node& node, LoweringContext& context);
void lower_list(const ir::Node& node, LoweringContext& context);
void lower_unpack(const ir::Node& node, LoweringContext& context);
// resample_ops.cpp: products with one [out, in] matrix per resampled axis (the last one or
// two axes of x; row-major values), named after the node's output ...
struct AxisMatrix {
  int64_t out = 0;
  int64_t in = 0;
  std::vector<float> values;
};
Var resample_axes(const ir::Node& node, LoweringContext& context, Var x,
                  const std::vector<AxisMatrix>& matrices);
// ... and the torch operators built on them or on gathers.
void lower_upsample_bilinear(const ir::Node& node, LoweringContext& context);
void lower_upsample_nearest(const ir::Node& node, LoweringContext& context);
void lower_pixel_shuffle(const ir::Node& node, LoweringContext& context);
void lower_group_norm(const ir::Node& node, LoweringContext& context);  // norm_ops.cpp
// recurrent_ops.cpp
void lower_lstm(const ir::Node& node, LoweringContext& context);
void lower_gru(const ir::Node& node, LoweringContext& context);
// nullptr for operators without a Core ML mapping ("aten::squeeze.dim", then "aten::squeeze").
LowerFn find_torch_op_lowering(const std::string& schema);

// quantization_ops.cpp: true when a reshape/flatten node's input is an integer form whose
// only reader chain ends in a quantize_dequantize with the same parameters, so the reshape
// may run on the integer tensor (reference Appendix C items 1 and 9).
bool can_reshape_as_integer(const ir::Node& node, const LoweringContext& context);

// weight_constants.cpp: the weight of a conv/conv_transpose/linear node as a const (float
// weights) or a constexpr dequantization (quantized weights), created once per tensor.
Var weight_var(const ir::Node& node, LoweringContext& context);
// Checks done before anything is built (after graph_export::check_finalized): the target
// able to hold the weight (4-bit needs iOS18, any quantized weight iOS16).
void check_weight_target(const ir::Node& node, Target target);

}  // namespace linquant::coreml::lowering
