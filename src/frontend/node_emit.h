// Appending captured ops to the graph with the naming rule of docs/ir.md.
#pragma once

#include <vector>

#include "linquant/ir/graph.h"

namespace linquant::frontend {

// Appends `op` and returns its outputs. The node is named after its module for module calls
// ("layer1.0.conv1", then "layer1.0.conv1_1" when the module runs twice) and after the op for
// functional calls ("add", "add_1").
std::vector<ir::ValueId> emit_node(ir::Graph& graph, ir::Op op, std::vector<ir::ValueId> inputs,
                                   ir::Attributes attrs, const ir::Scope& scope,
                                   int num_outputs = 1);

// Appends `op` under the given node name, with one output per entry of `output_types`.
std::vector<ir::ValueId> emit_named_node(ir::Graph& graph, ir::Op op,
                                         std::vector<ir::ValueId> inputs, ir::Attributes attrs,
                                         const ir::Scope& scope,
                                         const std::vector<ir::ValueType>& output_types,
                                         const std::string& name);

}  // namespace linquant::frontend
