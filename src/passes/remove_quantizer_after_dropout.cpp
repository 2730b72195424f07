// Dropout is the identity at inference, so a quantizer right after it would only re-quantize
// a value already quantized right before it, with a range inflated by 1 / (1 - p) during
// training (reference 3.5 item 5). The consumer reads the dropout output directly.
#include "linquant/ir/attribute_keys.h"
#include "linquant/passes/passes.h"
#include "op_rules.h"

namespace linquant::passes {

void remove_quantizer_after_dropout(ir::Graph& graph) {
  for (size_t n = 0; n < graph.nodes().size(); ++n) {
    const ir::Node& node = graph.nodes()[n];
    if (node.op != ir::Op::fake_quantize) continue;
    const ir::Node* dropout = producer_of(graph, node.inputs[0]);
    if (!dropout || dropout->op != ir::Op::dropout) continue;
    const ir::Node* before = producer_of(graph, dropout->inputs[0]);
    if (!before || before->op != ir::Op::fake_quantize) continue;
    const std::string quantizer = node.attrs.s(ir::attr::quantizer);
    graph.replace_uses(node.outputs[0], node.inputs[0]);
    graph.remove_node(n);
    if (nodes_using_quantizer(graph, quantizer).empty()) graph.remove_quantizer(quantizer);
    --n;
  }
}

}  // namespace linquant::passes
