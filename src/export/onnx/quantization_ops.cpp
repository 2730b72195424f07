// Finalized activation quantizers (quantize_dequantize nodes) as QuantizeLinear, whose integers
// each consumer reads through a DequantizeLinear of its own (context.cpp); a requantization
// with identical parameters reuses the integers (the pair is the identity). Ops that keep their
// input's grid are requantized with the same parameters.
#include "lowering.h"

namespace linquant::onnx::lowering {

void lower_quantize_dequantize(const ir::Node& node, Context& context) {
  const ActivationQParams q = ActivationQParams::of(node);
  graph_export::check_activation_qparams(node, q, "ONNX");
  const ir::ValueId in = node.inputs.at(0);
  if (const QuantizedValue* known = context.quantized(in); known && known->qparams == q) {
    context.define_quantized(node.outputs.at(0), *known);
    return;
  }
  const std::string x = context.input(node);
  context.define_quantized(
      node.outputs.at(0),
      QuantizedValue{context.quantize(x, q, context.helper_name(node, "quantized")), q});
}

void define_on_input_grid(const ir::Node& node, const std::string& y, Context& context) {
  const QuantizedValue* source = context.quantized(node.inputs.at(0));
  // A model output stays the float op's result, under its model name.
  if (!source || context.graph().is_graph_output(node.outputs.at(0))) {
    context.define(node.outputs.at(0), y);
    return;
  }
  const ActivationQParams q = source->qparams;
  context.define_quantized(
      node.outputs.at(0),
      QuantizedValue{context.quantize(y, q, context.helper_name(node, "quantized")), q});
}

}  // namespace linquant::onnx::lowering
