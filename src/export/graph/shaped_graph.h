// Library-internal, shared by the exporters: the graph an exporter lowers, with every value's
// shape recorded (exported models have static shapes).
#pragma once

#include <ATen/core/ivalue.h>

#include <cstdint>
#include <vector>

#include "linquant/ir/graph.h"
#include "linquant/runtime/graph_module.h"

namespace linquant::graph_export {

// Values that do not depend on the input data, from one recorded run.
struct ConstantValues {
  std::vector<bool> known;          // by value id
  std::vector<c10::IValue> values;  // by value id, where known
};

class ShapedGraph {
 public:
  // Uses `graph` as it is when its recorded shapes are complete and match `input_shapes`
  // (empty: any); otherwise records them on a copy by running it once, in eval mode, on
  // zeros of `input_shapes` (or of the recorded input shapes). The copy shares the graph's
  // tensors and changes no state. Throws ExportError when no input shape is known.
  ShapedGraph(const ir::Graph& graph, const std::vector<std::vector<int64_t>>& input_shapes);

  const ir::Graph& graph() const { return module_ ? module_->graph() : *graph_; }
  bool recorded_here() const { return static_cast<bool>(module_); }
  // The values that do not depend on the input data, recorded in the same run; empty for
  // graphs without generic ops, whose constants are all attributes.
  const ConstantValues& constants() const { return constants_; }

 private:
  const ir::Graph* graph_ = nullptr;
  GraphModule module_{nullptr};
  ConstantValues constants_;
};

}  // namespace linquant::graph_export
