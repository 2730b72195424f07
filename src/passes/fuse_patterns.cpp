// Pattern fusion (reference 3.4). BatchNorm after a conv/linear is folded into that node
// (the QAT Conv-BN math needs both); activations stay separate nodes marked `fused_with`,
// which tells the placement pass not to quantize between them.
#include "linquant/ir/attribute_keys.h"
#include "linquant/passes/passes.h"
#include "op_rules.h"

namespace linquant::passes {
namespace {

using ir::Op;

// The only consumer of `node`'s output, if it has exactly one and is not a graph output
// (fusing would otherwise hide a value someone else reads).
std::optional<size_t> sole_consumer(const ir::Graph& graph, const ir::Node& node) {
  if (node.outputs.size() != 1 || graph.is_graph_output(node.outputs[0])) return std::nullopt;
  const auto users = graph.consumers(node.outputs[0]);
  if (users.size() != 1) return std::nullopt;
  return users[0];
}

bool is_configured_null(const QConfigTable& qconfigs, const ir::Node& node) {
  const auto it = qconfigs.find(node.name);
  return it == qconfigs.end() || !it->second.has_value();
}

bool bn_fits(const ir::Node& root, const ir::Node& bn) {
  if (bn.op != Op::batch_norm || bn.scope.functional) return false;
  if (root.op == Op::linear) return bn.scope.module_type == "BatchNorm1d";
  return true;
}

// Moves the BatchNorm's tensors and constants into the root node and deletes it.
void fold_batch_norm(ir::Graph& graph, size_t root_index, size_t bn_index) {
  const ir::Node bn = graph.nodes()[bn_index];
  ir::Node& root = graph.nodes()[root_index];
  const std::pair<const char*, const char*> moved[] = {
      {ir::attr::weight, ir::attr::bn_weight},
      {ir::attr::bias, ir::attr::bn_bias},
      {ir::attr::running_mean, ir::attr::bn_running_mean},
      {ir::attr::running_var, ir::attr::bn_running_var}};
  for (const auto& [from, to] : moved) {
    if (bn.attrs.has(from)) root.attrs.set(to, bn.attrs.s(from));
  }
  if (bn.attrs.has(ir::attr::num_batches_tracked)) {
    root.attrs.set(ir::attr::bn_num_batches_tracked, bn.attrs.s(ir::attr::num_batches_tracked));
  }
  root.attrs.set(ir::attr::bn_eps, bn.attrs.f("eps"));
  root.attrs.set(ir::attr::bn_momentum, bn.attrs.f("momentum"));
  root.attrs.set(ir::attr::bn_module, bn.scope.module_name);
  graph.replace_uses(bn.outputs[0], root.outputs[0]);
  graph.remove_node(bn_index);
}

void mark_fused(ir::Graph& graph, size_t act_index, const std::string& root_name) {
  graph.nodes()[act_index].attrs.set(ir::attr::fused_with, root_name);
}

}  // namespace

void fuse_patterns(ir::Graph& graph, const QConfigTable& qconfigs) {
  for (size_t n = 0; n < graph.nodes().size(); ++n) {
    const ir::Node& node = graph.nodes()[n];
    if (node.attrs.has(ir::attr::fused_with) || !qconfigs.count(node.name)) continue;
    const std::string root_name = node.name;

    if (is_weighted(node) && node.op != Op::embedding) {
      auto next = sole_consumer(graph, node);
      bool folded = false;
      if (next && bn_fits(node, graph.nodes()[*next])) {
        folded = true;
        if (is_configured_null(qconfigs, node)) {
          // A float block keeps its BatchNorm as is; it only follows the block's config.
          mark_fused(graph, *next, root_name);
          next = sole_consumer(graph, graph.nodes()[*next]);
        } else {
          fold_batch_norm(graph, n, *next);
          next = sole_consumer(graph, graph.nodes()[n]);
        }
      }
      // Linear + BatchNorm1d is a complete pattern: a ReLU after it stays separate.
      const bool act_allowed = !(folded && graph.nodes()[n].op == Op::linear);
      if (act_allowed && next && is_fusable_activation(graph.nodes()[*next], false)) {
        mark_fused(graph, *next, root_name);
      }
    } else if (node.op == Op::add || node.op == Op::mul || node.op == Op::matmul ||
               node.op == Op::einsum) {
      const auto next = sole_consumer(graph, node);
      if (next && is_fusable_activation(graph.nodes()[*next], true)) mark_fused(graph, *next, root_name);
    } else if (node.op == Op::batch_norm && !node.scope.functional &&
               node.scope.module_type == "BatchNorm2d") {
      const auto next = sole_consumer(graph, node);
      if (next && graph.nodes()[*next].op == Op::relu) mark_fused(graph, *next, root_name);
    }
  }
}

}  // namespace linquant::passes
