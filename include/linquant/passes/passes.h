// The graph passes that turn a captured float graph into a prepared QAT graph, in the order
// prepare() runs them. Each pass lives in its own file under src/passes/.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "linquant/config/linear_quantizer_config.h"
#include "linquant/ir/graph.h"

namespace linquant::passes {

// Node name -> the config that applies to it (nullopt = not quantized). Nodes whose op is
// never quantized (reshape, layer_norm, ...) are absent.
using QConfigTable = std::map<std::string, OptionalModuleConfig>;

// Config application with coremltools' precedence: module name (and its parents), then
// module type (functional ops by "torch.add"-style names), then the global config.
QConfigTable assign_qconfigs(const ir::Graph& graph, const LinearQuantizerConfig& config);
// The module_type_configs keys that name no module type of the graph and none of the names its
// functional ops go by (e.g. a misspelt "Conv2D"): entries that have no effect.
std::vector<std::string> unmatched_type_configs(const ir::Graph& graph,
                                                const LinearQuantizerConfig& config);

// Pattern fusion (reference 3.4): BatchNorm folded into the preceding conv/linear node
// (attrs bn_*); activations after conv/linear/BN/add/mul/matmul marked `fused_with`.
// A block whose root is configured null keeps its BatchNorm node (marked `fused_with`), so
// the whole block stays float.
void fuse_patterns(ir::Graph& graph, const QConfigTable& qconfigs);

// Weight and activation fake-quantizers with coremltools' placement rules: inputs of
// quantized ops, own/shared/fixed output quantizers, cat groups.
void insert_quantizers(ir::Graph& graph, const QConfigTable& qconfigs);

// Symmetric scheme only: outputs of non-negative producers (ReLU, ReLU6, fused conv-relu,
// relu(add)) become affine; add/mul whose inputs are all affine too; a cat with any
// symmetric input keeps its whole group symmetric.
void make_nonnegative_outputs_affine(ir::Graph& graph);

// A fused conv/linear whose activation is sigmoid, hardsigmoid, softmax or tanh gets the
// activation's fixed output range, unless its output is concatenated.
void fix_fused_activation_ranges(ir::Graph& graph);

// Dropout is the identity at inference: a quantizer right after it, when one sits right
// before it, is removed.
void remove_quantizer_after_dropout(ir::Graph& graph);

// All of the above, then ir::verify.
void prepare_graph(ir::Graph& graph, const LinearQuantizerConfig& config);

}  // namespace linquant::passes
