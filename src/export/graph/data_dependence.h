// Library-internal, shared by the exporters: which graph values depend on the input data.
// Exported models have fixed shapes, so every other value (sizes and the arithmetic on them,
// constants, model tensors used as values, and what is computed from those only: masks,
// position tables, index tensors) is a constant of the model, taken from one recorded run;
// only data-dependent values need an op of their own.
#pragma once

#include <vector>

#include "linquant/ir/graph.h"

namespace linquant::graph_export {

// By value id.
std::vector<bool> data_dependent_values(const ir::Graph& graph);
// A node none of whose outputs depends on the input data needs no op.
bool needs_lowering(const ir::Node& node, const std::vector<bool>& dependent);

}  // namespace linquant::graph_export
