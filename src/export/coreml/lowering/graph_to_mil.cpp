// The graph walk: checks the whole graph against the target first (unsupported ops,
// unfinalized graphs, 4-bit weights before iOS18, missing shapes), then emits the model
// inputs, the weights (hoisted to the top, as coremltools' programs have them), every node
// in order, and the model outputs under their final names.
#include <c10/util/Exception.h>

#include <set>

#include "../../graph/finalized_check.h"
#include "linquant/export/coreml/identifier.h"
#include "linquant/export/coreml/save.h"
#include "linquant/ir/attribute_keys.h"
#include "lowering.h"

namespace linquant::coreml {
namespace {

using lowering::fail;
using lowering::node_label;

void check_node(const ir::Node& node, Target target) {
  graph_export::check_finalized(node, "Core ML");
  const bool unmapped =
      lowering::find_lowering(node.op) == nullptr ||
      (node.op == ir::Op::torch_op &&
       lowering::find_torch_op_lowering(node.attrs.s(ir::attr::schema, "")) == nullptr);
  if (unmapped) {
    fail(node, graph_export::unmapped_op(node, "Core ML"));
  }
  if (node.op == ir::Op::quantize_dequantize && target < Target::iOS17) {
    fail(node, "activation quantization (quantize/dequantize) needs target iOS17 or later, not " +
                   to_string(target) + "; export with SaveOptions::target = Target::iOS17");
  }
  if (ir::op_info(node.op).weighted) lowering::check_weight_target(node, target);
  const bool many_outputs = node.op == ir::Op::torch_op || node.op == ir::Op::unpack;
  if (!many_outputs && node.outputs.size() != 1) {
    fail(node, "has " + std::to_string(node.outputs.size()) + " outputs; the export handles "
               "single-output ops only");
  }
}

// Explicit names must be usable as they are; renaming them silently would surprise the caller.
std::vector<std::string> feature_names(const ir::Graph& graph, const std::vector<ir::ValueId>& ids,
                                       const std::vector<std::string>& given, const char* role,
                                       NameRegistry& registry) {
  if (!given.empty() && given.size() != ids.size()) {
    throw ExportError(std::string("SaveOptions::") + role + "_names has " +
                      std::to_string(given.size()) + " names for " + std::to_string(ids.size()) +
                      " graph " + role + "s");
  }
  std::vector<std::string> names;
  for (size_t k = 0; k < ids.size(); ++k) {
    if (given.empty()) {
      names.push_back(registry.claim(graph.value(ids[k]).name));
      continue;
    }
    if (!is_valid_identifier(given[k])) {
      throw ExportError(std::string("model ") + role + " name '" + given[k] +
                        "' is not a Core ML identifier ([A-Za-z_][A-Za-z0-9_@]*)");
    }
    if (registry.contains(given[k])) {
      throw ExportError(std::string("model ") + role + " name '" + given[k] + "' is used twice");
    }
    names.push_back(registry.claim(given[k]));
  }
  return names;
}

void check_shapes(const ir::Graph& graph) {
  for (ir::ValueId id : graph.inputs()) {
    if (graph.value(id).shape.empty()) {
      throw ExportError("graph input %" + graph.value(id).name + " has no recorded shape: save() "
                        "records shapes from SaveOptions::input_shapes, or prepare the model "
                        "(GraphModule::record_shapes) first");
    }
  }
}

}  // namespace

namespace lowering {

void check_exportable(const ir::Graph& graph, const SaveOptions& options) {
  if (graph.inputs().empty() || graph.outputs().empty()) {
    throw ExportError("the graph needs at least one input and one output to become a Core ML "
                      "model");
  }
  const std::vector<bool> dependent = data_dependent_values(graph);
  for (const ir::Node& node : graph.nodes()) {
    // Values that do not depend on the input data are recorded constants; a prepared graph
    // is refused wherever its quantizers sit.
    if (!needs_lowering(node, dependent) && node.op != ir::Op::fake_quantize) continue;
    graph_export::with_node_context(node, [&] { check_node(node, options.target); });
  }
  NameRegistry registry;
  feature_names(graph, graph.inputs(), options.input_names, "input", registry);
  feature_names(graph, graph.outputs(), options.output_names, "output", registry);
}

}  // namespace lowering

ProgramBuilder build_program(const ir::Graph& graph, const SaveOptions& options) {
  lowering::check_exportable(graph, options);
  const graph_export::ShapedGraph shaped(graph, options.input_shapes);
  return lowering::build_program(shaped.graph(), options, &shaped.constants());
}

ProgramBuilder lowering::build_program(const ir::Graph& graph, const SaveOptions& options,
                                       const ConstantValues* constants) {
  lowering::check_exportable(graph, options);
  check_shapes(graph);

  NameRegistry registry;
  const std::vector<std::string> input_names =
      feature_names(graph, graph.inputs(), options.input_names, "input", registry);
  const std::vector<std::string> output_names =
      feature_names(graph, graph.outputs(), options.output_names, "output", registry);

  // fp16 model features exist from iOS16; before that an fp16 program keeps an fp32
  // interface and casts inside, as coremltools does.
  const bool fp16 = options.precision == ComputePrecision::Float16;
  const bool cast_io = fp16 && options.target < Target::iOS16;
  const DType io_dtype = fp16 && !cast_io ? DType::Float16 : DType::Float32;

  // Ops producing a graph output take its name directly unless a cast or identity must follow.
  std::map<ir::ValueId, std::string> direct_names;
  std::set<ir::ValueId> inputs(graph.inputs().begin(), graph.inputs().end());
  for (size_t k = 0; k < graph.outputs().size(); ++k) {
    const ir::ValueId id = graph.outputs()[k];
    if (!cast_io && !inputs.count(id) && !direct_names.count(id)) {
      direct_names[id] = output_names[k];
    }
  }

  ProgramBuilder builder(options.target);
  const std::set<std::string> reserved(output_names.begin(), output_names.end());
  const bool has_constants = constants && !constants->known.empty();
  lowering::LoweringContext context(graph, builder, options.precision, direct_names, reserved,
                                    has_constants ? constants : nullptr);
  const std::vector<bool> dependent = lowering::data_dependent_values(graph);
  for (size_t k = 0; k < graph.inputs().size(); ++k) {
    const ir::ValueId id = graph.inputs()[k];
    // Integer inputs (token ids) are int32 features.
    const auto recorded = graph.value(id).dtype;
    const bool integer = recorded && !c10::isFloatingType(*recorded);
    Var x = builder.add_input(input_names[k],
                              TensorType{integer ? DType::Int32 : io_dtype, graph.value(id).shape});
    if (cast_io && !integer) {
      x = builder.add_op("cast", input_names[k] + "_to_fp16",
                         {{"x", x}, {"dtype", TensorValue::scalar_string("fp16")}},
                         TensorType{DType::Float16, x.type().shape});
    }
    context.define(id, x);
  }
  for (const ir::Node& node : graph.nodes()) {
    if (ir::op_info(node.op).weighted && lowering::needs_lowering(node, dependent)) {
      graph_export::with_node_context(node, [&] { lowering::weight_var(node, context); });
    }
  }
  for (const ir::Node& node : graph.nodes()) {
    if (!has_constants || lowering::needs_lowering(node, dependent)) {
      graph_export::with_node_context(node,
                                      [&] { lowering::find_lowering(node.op)(node, context); });
    }
  }

  std::vector<Var> outputs;
  std::set<std::string> taken;
  for (size_t k = 0; k < graph.outputs().size(); ++k) {
    const std::string& wanted = output_names[k];
    Var var = context.var(graph.outputs()[k]);
    if (cast_io) {
      var = builder.add_op("cast", wanted,
                           {{"x", var}, {"dtype", TensorValue::scalar_string("fp32")}},
                           TensorType{DType::Float32, var.type().shape});
    } else if (var.name() != wanted || taken.count(var.name())) {
      // An input, a value that vanished (identity, dropout) or one listed twice: a model
      // output needs an op of its own.
      var = builder.add_op("identity", wanted, {{"x", var}}, var.type());
    }
    if (var.name() != wanted) {
      throw ExportError("model output name '" + wanted + "' is taken by another value of the "
                        "program; choose another name in SaveOptions::output_names");
    }
    taken.insert(var.name());
    outputs.push_back(var);
  }
  builder.set_outputs(outputs);
  return builder;
}

}  // namespace linquant::coreml
