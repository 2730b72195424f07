// The node a leaf module of the C++ frontend (torch::nn::Conv2d, ReLU, ...) becomes.
#pragma once

#include <optional>

#include "linquant/ir/graph.h"

namespace torch::nn {
class Module;
}  // namespace torch::nn

namespace linquant::frontend {

// Appends the node for `module` (named scope.module_name, whose tensors the graph already
// holds under that prefix) reading `input`; returns its output, or nullopt when linquant has
// no rule for the module's type. Throws for supported types in configurations the IR cannot
// express (e.g. padding "same").
std::optional<ir::ValueId> capture_sequential_layer(ir::Graph& graph,
                                                    const torch::nn::Module& module,
                                                    ir::ValueId input, const ir::Scope& scope);

}  // namespace linquant::frontend
