// The graph walk: checks the whole graph first (ops with a mapping, a finalized graph, weights
// the opset can hold, names), then emits the model inputs, every node in order, and the model
// outputs under their final names.
#include <c10/util/Exception.h>

#include <set>

#include "../graph/finalized_check.h"
#include "../graph/op_family.h"
#include "linquant/ir/attribute_keys.h"
#include "lowering.h"

namespace linquant::onnx {
namespace {

using lowering::fail;

// What the opset can hold; the rest of the weight checks are shared (check_finalized).
void check_weight_opset(const ir::Node& node, int64_t opset) {
  if (!node.attrs.has(ir::attr::weight_scale) || node.attrs.i(ir::attr::weight_bits) != 4) return;
  if (opset < 21) {
    fail(node,
         "its weight is quantized to 4 bits; ONNX has int4/uint4 tensors from opset 21 "
         "(DequantizeLinear of int4), not " +
             std::to_string(opset) +
             ". Export with SaveOptions::opset = 21 (linquant export --opset 21), or "
             "quantize the weights to 8 bits");
  }
}

void check_node(const ir::Node& node, int64_t opset) {
  graph_export::check_finalized(node, "ONNX");
  if (lowering::find_lowering(node.op) == nullptr) {
    fail(node, graph_export::unmapped_op(node, "ONNX") +
                   " (the Core ML export may have one: linquant export --format coreml)");
  }
  if (ir::op_info(node.op).weighted) check_weight_opset(node, opset);
  if (node.outputs.size() != 1) {
    fail(node, "has " + std::to_string(node.outputs.size()) +
                   " outputs; the ONNX export handles single-output ops only");
  }
}

std::vector<std::string> value_names(const ir::Graph& graph, const std::vector<ir::ValueId>& ids,
                                     const std::vector<std::string>& given, const char* role,
                                     std::set<std::string>& taken) {
  if (!given.empty() && given.size() != ids.size()) {
    throw ExportError(std::string("SaveOptions::") + role + "_names has " +
                      std::to_string(given.size()) + " names for " + std::to_string(ids.size()) +
                      " graph " + role + "s");
  }
  std::vector<std::string> names;
  for (size_t k = 0; k < ids.size(); ++k) {
    std::string name = given.empty() ? graph.value(ids[k]).name : given[k];
    if (name.empty()) {
      throw ExportError(std::string("model ") + role + " name " + std::to_string(k) + " is empty");
    }
    if (!given.empty() && taken.count(name)) {
      throw ExportError(std::string("model ") + role + " name '" + name + "' is used twice");
    }
    for (int suffix = 1; taken.count(name); ++suffix) {
      name = graph.value(ids[k]).name + "_" + std::to_string(suffix);
    }
    taken.insert(name);
    names.push_back(name);
  }
  return names;
}

ElementType input_type(const ir::Graph& graph, ir::ValueId id) {
  const auto recorded = graph.value(id).dtype;
  // Integer inputs (token ids) are int64, as torch reads them.
  return recorded && !c10::isFloatingType(*recorded) ? ElementType::Int64 : ElementType::Float;
}

}  // namespace

namespace lowering {

LowerFn find_lowering(ir::Op op) {
  using graph_export::OpFamily;
  switch (graph_export::family_of(op)) {
    case OpFamily::weighted:
      return lower_weighted;
    case OpFamily::matmul:
      return lower_matmul;
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
    // Generic torch operators, tensor lists and einsum: the Core ML export's wider op set is
    // not mapped to ONNX yet. Constants and model tensors become initializers where read.
    case OpFamily::einsum:
    case OpFamily::torch_op:
    case OpFamily::list:
    case OpFamily::unpack:
    case OpFamily::value:
    case OpFamily::prepared:
    case OpFamily::opaque:
      return nullptr;
  }
  return nullptr;
}

void check_exportable(const ir::Graph& graph, const SaveOptions& options) {
  if (options.opset < kMinOpset || options.opset > kMaxOpset) {
    throw ExportError("opset " + std::to_string(options.opset) +
                      " is not supported: the ONNX "
                      "export writes opsets " +
                      std::to_string(kMinOpset) +
                      " (per-channel "
                      "DequantizeLinear) to " +
                      std::to_string(kMaxOpset));
  }
  if (graph.inputs().empty() || graph.outputs().empty()) {
    throw ExportError(
        "the graph needs at least one input and one output to become an ONNX "
        "model");
  }
  const std::vector<bool> dependent = graph_export::data_dependent_values(graph);
  for (const ir::Node& node : graph.nodes()) {
    if (!graph_export::needs_lowering(node, dependent) && node.op != ir::Op::fake_quantize) {
      continue;
    }
    graph_export::with_node_context(node, [&] { check_node(node, options.opset); });
  }
  std::set<std::string> taken;
  value_names(graph, graph.inputs(), options.input_names, "input", taken);
  value_names(graph, graph.outputs(), options.output_names, "output", taken);
}

}  // namespace lowering

int64_t minimum_opset(const ir::Graph& graph) {
  for (const ir::Node& node : graph.nodes()) {
    if (node.attrs.has(ir::attr::weight_scale) && node.attrs.i(ir::attr::weight_bits, 8) == 4) {
      return 21;
    }
  }
  return kMinOpset;
}

std::string model_bytes(const ir::Graph& graph, const SaveOptions& options) {
  lowering::check_exportable(graph, options);
  const graph_export::ShapedGraph shaped(graph, options.input_shapes);
  const ir::Graph& g = shaped.graph();

  std::set<std::string> taken;
  const std::vector<std::string> input_names =
      value_names(g, g.inputs(), options.input_names, "input", taken);
  const std::vector<std::string> output_names =
      value_names(g, g.outputs(), options.output_names, "output", taken);

  OnnxBuilder builder;
  for (const std::string& name : taken) builder.reserve(name);
  // Float ops producing a graph output take its name directly.
  std::map<ir::ValueId, std::string> direct;
  const std::set<ir::ValueId> inputs(g.inputs().begin(), g.inputs().end());
  for (size_t k = 0; k < g.outputs().size(); ++k) {
    if (!inputs.count(g.outputs()[k]) && !direct.count(g.outputs()[k])) {
      direct[g.outputs()[k]] = output_names[k];
    }
  }
  const bool has_constants = !shaped.constants().known.empty();
  lowering::Context context(g, builder, options, direct,
                            has_constants ? &shaped.constants() : nullptr);
  for (size_t k = 0; k < g.inputs().size(); ++k) {
    const ir::ValueId id = g.inputs()[k];
    builder.add_input(input_names[k], input_type(g, id), g.value(id).shape);
    context.define(id, input_names[k]);
  }
  const std::vector<bool> dependent = graph_export::data_dependent_values(g);
  for (const ir::Node& node : g.nodes()) {
    if (!graph_export::needs_lowering(node, dependent)) continue;
    graph_export::with_node_context(node, [&] { lowering::find_lowering(node.op)(node, context); });
  }
  std::set<std::string> written;
  for (size_t k = 0; k < g.outputs().size(); ++k) {
    const ir::ValueId id = g.outputs()[k];
    const std::string& wanted = output_names[k];
    std::string value = context.output_value(id, wanted);
    if (value != wanted || written.count(value)) {
      // An input, a value that vanished (identity, dropout) or one listed twice.
      value = builder.add("Identity", {value}, wanted);
    }
    if (value != wanted) {
      throw ExportError("model output name '" + wanted +
                        "' is taken by another value; choose "
                        "another name in SaveOptions::output_names");
    }
    written.insert(value);
    builder.add_output(wanted, ElementType::Float, g.value(id).shape);
  }
  return builder.serialize(options.opset, {{"linquant.opset", std::to_string(options.opset)}});
}

}  // namespace linquant::onnx
