#include "node_error.h"

#include "linquant/ir/attribute_keys.h"

namespace linquant::graph_export {

std::string node_label(const ir::Node& node) {
  return "node '" + node.name + "' (" + ir::to_string(node.op) + "): ";
}

void fail(const ir::Node& node, const std::string& message) {
  throw ExportError(node_label(node) + message);
}

double number_attr(const ir::Node& node, const std::string& key) {
  if (!node.attrs.has(key)) fail(node, "attribute '" + key + "' is missing");
  const ir::AttributeValue& value = node.attrs.all().at(key);
  if (const auto* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&value)) return *d;
  if (const auto* b = std::get_if<bool>(&value)) return *b ? 1.0 : 0.0;
  fail(node, "attribute '" + key + "' is " + ir::to_string(value) + ", not a number");
}

int64_t normalize_axis(const ir::Node& node, int64_t axis, size_t rank) {
  const auto r = static_cast<int64_t>(rank);
  const int64_t normalized = axis < 0 ? axis + r : axis;
  if (normalized < 0 || normalized >= r) {
    fail(node, "dimension " + std::to_string(axis) + " is out of range for a rank-" +
                   std::to_string(rank) + " tensor");
  }
  return normalized;
}

std::vector<int64_t> spatial_ints(const ir::Node& node, const std::string& key, size_t dims,
                                  std::optional<int64_t> fallback) {
  if (!node.attrs.has(key) && fallback) return std::vector<int64_t>(dims, *fallback);
  const std::vector<int64_t>& values = node.attrs.ints(key);
  if (values.size() == 1 && dims > 1) return std::vector<int64_t>(dims, values[0]);
  if (values.size() != dims) {
    fail(node, "attribute '" + key + "' has " + std::to_string(values.size()) + " entries for " +
                   std::to_string(dims) + " spatial dimensions");
  }
  return values;
}

std::string unmapped_op(const ir::Node& node, const std::string& format) {
  const std::string op = node.op == ir::Op::torch_op ? node.attrs.s(ir::attr::schema, "torch_op")
                                                     : ir::to_string(node.op);
  std::string where =
      node.scope.module_name.empty()
          ? " in the root module (" + node.scope.module_type + ")"
          : " in module '" + node.scope.module_name + "' (" + node.scope.module_type + ")";
  if (!node.scope.source.empty()) where += " at " + node.scope.source;
  return "op '" + op + "'" + where + " has no " + format + " mapping yet";
}

const at::Tensor& model_tensor(const ir::Graph& graph, const ir::Node& node,
                               const std::string& key) {
  const std::string& name = node.attrs.s(key);
  if (!graph.has_tensor(name)) {
    fail(node, "attribute '" + key + "' names the tensor '" + name + "', which the graph lacks");
  }
  return graph.tensor(name).tensor;
}

}  // namespace linquant::graph_export
