// Text form of a graph, for error messages, `linquant inspect` and test failure output.
#include <sstream>

#include "linquant/ir/attribute_keys.h"
#include "linquant/ir/graph.h"

namespace linquant::ir {
namespace {

std::string value_ref(const Graph& graph, ValueId id) {
  std::ostringstream text;
  text << "%" << graph.value(id).name;
  const auto& shape = graph.value(id).shape;
  if (!shape.empty()) {
    text << ":[";
    for (size_t k = 0; k < shape.size(); ++k) text << (k ? "," : "") << shape[k];
    text << "]";
  }
  return text.str();
}

}  // namespace

std::string to_string(const Graph& graph) {
  std::ostringstream text;
  text << "graph(";
  for (size_t k = 0; k < graph.inputs().size(); ++k) {
    text << (k ? ", " : "") << value_ref(graph, graph.inputs()[k]);
  }
  text << ")\n";
  for (const Node& node : graph.nodes()) {
    text << "  ";
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      text << (k ? ", " : "") << value_ref(graph, node.outputs[k]);
    }
    // A generic op prints as the LibTorch operator it calls.
    const bool generic = node.op == Op::torch_op && node.attrs.has(ir::attr::schema);
    text << " = " << (generic ? node.attrs.s(ir::attr::schema) : to_string(node.op));
    bool first = true;
    for (const auto& [key, value] : node.attrs.all()) {
      if (generic && key == "schema") continue;
      text << (first ? "[" : ", ") << key << "=" << to_string(value);
      first = false;
    }
    if (!first) text << "]";
    text << "(";
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      text << (k ? ", " : "") << "%" << graph.value(node.inputs[k]).name;
    }
    text << ")";
    if (!node.scope.module_name.empty() || !node.scope.module_type.empty()) {
      text << "  # " << (node.scope.module_name.empty() ? "<root>" : node.scope.module_name)
           << ": " << node.scope.module_type << (node.scope.functional ? " (functional)" : "");
    }
    text << "\n";
  }
  text << "  return (";
  for (size_t k = 0; k < graph.outputs().size(); ++k) {
    text << (k ? ", " : "") << "%" << graph.value(graph.outputs()[k]).name;
  }
  text << ")\n";
  return text.str();
}

}  // namespace linquant::ir
