// Symmetric scheme only (reference 3.5 items 1-2): a quantizer after a non-negative producer
// uses the full [0, 255] range with zero point 0 (affine) instead of [128, 255]. Marks are
// per quantizer group: members reached through share-qparams ops follow their group.
#include <set>

#include "linquant/ir/attribute_keys.h"
#include "linquant/passes/passes.h"
#include "op_rules.h"

namespace linquant::passes {
namespace {

using ir::Op;

const ir::Node* producer_before_quantizer(const ir::Graph& graph, const ir::Node& fq) {
  return producer_of(graph, fq.inputs[0]);
}

bool is_fixed(const ir::Graph& graph, const std::string& quantizer) {
  return graph.quantizers().at(quantizer).options.fixed_qparams.has_value();
}

// The fake_quantize node feeding input `k` of `node` (null if the input is float).
const ir::Node* input_quantizer_node(const ir::Graph& graph, const ir::Node& node, size_t k) {
  const ir::Node* p = producer_of(graph, node.inputs[k]);
  return p && p->op == Op::fake_quantize ? p : nullptr;
}

// The output quantizer node right after `node`, if any.
const ir::Node* output_quantizer_node(const ir::Graph& graph, const ir::Node& node) {
  for (size_t user : graph.consumers(node.outputs[0])) {
    if (graph.nodes()[user].op == Op::fake_quantize) return &graph.nodes()[user];
  }
  return nullptr;
}

}  // namespace

void make_nonnegative_outputs_affine(ir::Graph& graph) {
  std::set<std::string> affine;
  // 1. Quantizers right after ReLU-like producers.
  for (const ir::Node& node : graph.nodes()) {
    if (node.op != Op::fake_quantize) continue;
    const ir::Node* producer = producer_before_quantizer(graph, node);
    if (producer && is_nonnegative_producer(graph, *producer))
      affine.insert(node.attrs.s(ir::attr::quantizer));
  }
  // 2. add/mul with all-affine inputs; cat groups with any symmetric input stay symmetric.
  for (const ir::Node& node : graph.nodes()) {
    const bool combination = node.op == Op::add || node.op == Op::mul || node.op == Op::cat;
    if (!combination || node.inputs.size() < 2 || !output_quantizer_node(graph, node)) continue;
    const ir::Node* out = output_quantizer_node(graph, node);
    // add + relu is a non-negative producer already handled above.
    if (out->inputs[0] != node.outputs[0]) continue;
    bool all_affine = true;
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const ir::Node* in = input_quantizer_node(graph, node, k);
      if (!in) {
        all_affine = false;
        continue;
      }
      const std::string& q = in->attrs.s(ir::attr::quantizer);
      bool input_affine = is_fixed(graph, q);
      if (!input_affine && affine.count(q)) {
        // In a cat group, a member counts as affine only if its producer is non-negative
        // or a share-qparams op that inherits the group's mark.
        const ir::Node* producer = producer_before_quantizer(graph, *in);
        input_affine = node.op != Op::cat || !producer || is_nonnegative_producer(graph, *producer) ||
                       output_rule(*producer) == ir::OutputQuantization::share_with_input;
      }
      all_affine = all_affine && input_affine;
    }
    const std::string& out_q = out->attrs.s(ir::attr::quantizer);
    if (all_affine) {
      affine.insert(out_q);
    } else if (node.op == Op::cat) {
      affine.erase(out_q);
    }
  }
  for (const std::string& name : affine) {
    auto& spec = graph.quantizers().at(name);
    if (!spec.options.fixed_qparams) spec.options.scheme = QuantizationScheme::affine;
  }
}

}  // namespace linquant::passes
