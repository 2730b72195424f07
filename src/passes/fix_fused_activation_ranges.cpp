// Reference 3.5 item 3: a conv/linear fused with sigmoid, hardsigmoid, softmax or tanh first
// gets an ordinary output quantizer (the block's config); its range is then pinned to the
// activation's fixed range, unless the output is concatenated (a cat group must keep one
// observed range for all its members).
#include "linquant/ir/attribute_keys.h"
#include "linquant/passes/passes.h"
#include "op_rules.h"

namespace linquant::passes {

void fix_fused_activation_ranges(ir::Graph& graph) {
  for (const ir::Node& node : graph.nodes()) {
    if (!node.attrs.has(ir::attr::fused_with)) continue;
    const auto fixed = fixed_output_qparams(node.op);
    if (!fixed) continue;
    for (size_t user : graph.consumers(node.outputs[0])) {
      const ir::Node& fq = graph.nodes()[user];
      if (fq.op != ir::Op::fake_quantize) continue;
      const std::string& quantizer = fq.attrs.s(ir::attr::quantizer);
      bool concatenated = false;
      for (size_t member : nodes_using_quantizer(graph, quantizer)) {
        for (size_t reader : graph.consumers(graph.nodes()[member].outputs[0])) {
          concatenated = concatenated || graph.nodes()[reader].op == ir::Op::cat;
        }
      }
      if (concatenated) continue;
      auto& options = graph.quantizers().at(quantizer).options;
      options.fixed_qparams = fixed;
      options.scheme = QuantizationScheme::affine;
    }
  }
}

}  // namespace linquant::passes
