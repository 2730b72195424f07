// Shapes for the export: exported models have static shapes, taken from the shapes the
// runtime recorded (prepare() records them) or recorded here for the shapes the caller asks for.
#include "shaped_graph.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "data_dependence.h"
#include "linquant/export/export_error.h"

namespace linquant::graph_export {
namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t k = 0; k < shape.size(); ++k) text += (k ? ", " : "") + std::to_string(shape[k]);
  return text + "]";
}

// Graphs with generic ops carry values (sizes, constants, model tensors used as values) that
// the program needs as recorded constants.
bool has_value_ops(const ir::Graph& graph) {
  for (const ir::Node& node : graph.nodes()) {
    if (node.op == ir::Op::torch_op || node.op == ir::Op::constant ||
        node.op == ir::Op::model_tensor || node.op == ir::Op::list || node.op == ir::Op::unpack) {
      return true;
    }
  }
  return false;
}

bool complete(const ir::Graph& graph) {
  for (ir::ValueId id : graph.inputs()) {
    if (graph.value(id).shape.empty()) return false;
  }
  // Rank-0 node outputs look unrecorded too; recording again is merely a little slower.
  for (const ir::Node& node : graph.nodes()) {
    for (ir::ValueId id : node.outputs) {
      if (graph.value(id).shape.empty()) return false;
    }
  }
  return true;
}

}  // namespace

ShapedGraph::ShapedGraph(const ir::Graph& graph,
                         const std::vector<std::vector<int64_t>>& input_shapes)
    : graph_(&graph) {
  const std::vector<ir::ValueId>& inputs = graph.inputs();
  std::vector<std::vector<int64_t>> shapes = input_shapes;
  if (!shapes.empty()) {
    if (shapes.size() != inputs.size()) {
      throw ExportError("SaveOptions::input_shapes has " + std::to_string(shapes.size()) +
                        " shapes for " + std::to_string(inputs.size()) + " graph inputs");
    }
    for (size_t k = 0; k < shapes.size(); ++k) {
      bool valid = !shapes[k].empty();
      for (int64_t d : shapes[k]) valid = valid && d >= 1;
      if (!valid) {
        throw ExportError("SaveOptions::input_shapes: " + shape_text(shapes[k]) + " for input %" +
                          graph.value(inputs[k]).name + " needs rank >= 1 and sizes >= 1");
      }
    }
  }
  bool same_inputs = true;
  for (size_t k = 0; k < shapes.size(); ++k) {
    same_inputs = same_inputs && graph.value(inputs[k]).shape == shapes[k];
  }
  const bool values = has_value_ops(graph);
  if (same_inputs && complete(graph) && !values) return;

  if (shapes.empty()) {
    for (ir::ValueId id : inputs) {
      if (graph.value(id).shape.empty()) {
        throw ExportError("graph input %" + graph.value(id).name +
                          " has no recorded shape; give "
                          "SaveOptions::input_shapes (exported models have fixed shapes)");
      }
      shapes.push_back(graph.value(id).shape);
    }
  }
  try {
    module_ = GraphModule(graph);
    module_->eval();
    std::vector<at::Tensor> zeros;
    for (size_t k = 0; k < shapes.size(); ++k) {
      const auto dtype = graph.value(inputs[k]).dtype;  // token ids stay integers
      zeros.push_back(at::zeros(shapes[k], at::TensorOptions().dtype(dtype.value_or(at::kFloat))));
    }
    if (values) {
      constants_.known = data_dependent_values(graph);
      constants_.known.flip();
      constants_.values = module_->record_values(zeros, constants_.known);
    } else {
      module_->record_shapes(zeros);
    }
  } catch (const c10::Error& e) {
    throw ExportError("cannot record shapes for these input shapes: " +
                      std::string(e.what_without_backtrace()));
  } catch (const Error& e) {
    throw ExportError(std::string("cannot record shapes for these input shapes: ") + e.what());
  }
}

}  // namespace linquant::graph_export
