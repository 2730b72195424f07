// The prepare pipeline, in coremltools' order (reference 3.1).
#include "linquant/passes/passes.h"

namespace linquant::passes {

void prepare_graph(ir::Graph& graph, const LinearQuantizerConfig& config) {
  const QConfigTable qconfigs = assign_qconfigs(graph, config);
  fuse_patterns(graph, qconfigs);
  insert_quantizers(graph, qconfigs);
  if (config.quantization_scheme() == QuantizationScheme::symmetric) {
    make_nonnegative_outputs_affine(graph);
  }
  fix_fused_activation_ranges(graph);
  remove_quantizer_after_dropout(graph);
  ir::verify(graph);
}

}  // namespace linquant::passes
