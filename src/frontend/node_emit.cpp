// Node naming: readable, unique names derived from the module or the op (docs/ir.md).
#include "node_emit.h"

namespace linquant::frontend {

std::vector<ir::ValueId> emit_node(ir::Graph& graph, ir::Op op, std::vector<ir::ValueId> inputs,
                                   ir::Attributes attrs, const ir::Scope& scope,
                                   int num_outputs) {
  ir::Node node;
  node.op = op;
  node.inputs = std::move(inputs);
  node.attrs = std::move(attrs);
  node.scope = scope;
  const bool module_call = !scope.functional && !scope.module_name.empty();
  node.name = graph.unique_node_name(module_call ? scope.module_name : ir::to_string(op));
  const size_t index = graph.add_node(std::move(node), num_outputs);
  return graph.nodes()[index].outputs;
}

std::vector<ir::ValueId> emit_named_node(ir::Graph& graph, ir::Op op,
                                         std::vector<ir::ValueId> inputs, ir::Attributes attrs,
                                         const ir::Scope& scope,
                                         const std::vector<ir::ValueType>& output_types,
                                         const std::string& name) {
  ir::Node node;
  node.op = op;
  node.inputs = std::move(inputs);
  node.attrs = std::move(attrs);
  node.scope = scope;
  node.name = name;
  const size_t index = graph.add_node(std::move(node), output_types);
  return graph.nodes()[index].outputs;
}

}  // namespace linquant::frontend
