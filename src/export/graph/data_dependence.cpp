#include "data_dependence.h"

#include <set>
#include <string>

#include "linquant/ir/attribute_keys.h"

namespace linquant::graph_export {
namespace {

// Ops whose result depends on their input's shape (or type) only.
bool reads_only_shape(const ir::Node& node) {
  if (node.op != ir::Op::torch_op) return false;
  static const std::set<std::string> kShapeOnly = {
      "aten::size.int",   "aten::size",      "aten::dim",        "aten::numel",
      "prim::dtype",      "prim::device",    "aten::zeros_like", "aten::ones_like",
      "aten::new_zeros",  "aten::new_ones",  "aten::new_full",   "aten::full_like",
      "aten::empty_like", "aten::new_empty", "aten::len.Tensor"};
  return kShapeOnly.count(node.attrs.s(ir::attr::schema, "")) != 0;
}

}  // namespace

std::vector<bool> data_dependent_values(const ir::Graph& graph) {
  std::vector<bool> dependent(graph.num_values(), false);
  for (ir::ValueId id : graph.inputs()) dependent[static_cast<size_t>(id)] = true;
  for (const ir::Node& node : graph.nodes()) {
    bool any = false;
    if (!reads_only_shape(node)) {
      for (ir::ValueId id : node.inputs) any = any || dependent[static_cast<size_t>(id)];
    }
    // An opaque float call may hold state; treat its results as data.
    any = any || node.op == ir::Op::float_module;
    for (ir::ValueId id : node.outputs) dependent[static_cast<size_t>(id)] = any;
  }
  return dependent;
}

bool needs_lowering(const ir::Node& node, const std::vector<bool>& dependent) {
  for (ir::ValueId id : node.outputs) {
    if (dependent[static_cast<size_t>(id)]) return true;
  }
  return false;
}

}  // namespace linquant::graph_export
