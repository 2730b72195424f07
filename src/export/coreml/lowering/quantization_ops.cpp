// Finalized activation quantizers (quantize_dequantize nodes) as iOS17 quantize/dequantize
// pairs, with coremltools' zero-point rewrites (reference 6.3), the dequantize -> quantize
// pair elimination, and the integer-reshape fold only where parameters match (Appendix C 1).
#include <algorithm>
#include <cmath>

#include "linquant/export/coreml/half.h"
#include "lowering.h"

namespace linquant::coreml::lowering {
namespace {

// The quantize/dequantize parameters after coremltools' nullify_redundant_quantization_zero_point:
// zero point 0 is dropped; uint8 with 128 and int8 with -128 become the other type without one
// (the integers shift by 128, the dequantized values do not change).
struct MilQuantization {
  DType dtype = DType::UInt8;
  bool has_zero_point = false;
  int64_t zero_point = 0;
};

MilQuantization mil_quantization(const ActivationQParams& q) {
  MilQuantization m;
  m.dtype = q.quant_min < 0 ? DType::Int8 : DType::UInt8;
  m.zero_point = q.zero_point;
  if (m.dtype == DType::UInt8 && q.zero_point == 128) {
    m.dtype = DType::Int8;
    m.zero_point = 0;
  } else if (m.dtype == DType::Int8 && q.zero_point == -128) {
    m.dtype = DType::UInt8;
    m.zero_point = 0;
  }
  m.has_zero_point = m.zero_point != 0;
  return m;
}

void check_qparams(const ir::Node& node, const ActivationQParams& q,
                   const LoweringContext& context) {
  graph_export::check_activation_qparams(node, q, "Core ML");
  const auto scale = static_cast<float>(q.scale);
  if (context.float_dtype() == DType::Float16) {
    // The dequantized values must be fp16 numbers too. coremltools keeps a quantize or
    // dequantize whose scale overflows fp16 in fp32, but the values it hands to the next fp16
    // op still become inf; no fp16 program computes them, so say so instead of writing one.
    constexpr double kHalfMax = 65504.0;
    const double largest = q.scale * static_cast<double>(std::max(q.zero_point - q.quant_min,
                                                                  q.quant_max - q.zero_point));
    const float h = half_bits_to_float(float_to_half_bits(scale));
    if (h == 0.0f || std::isinf(h) || largest > kHalfMax) {
      fail(node, "activation scale " + std::to_string(q.scale) + " (values up to " +
                     std::to_string(largest) +
                     ") does not fit fp16, whose largest number is "
                     "65504 and smallest scale 6e-8: an fp16 program would compute inf or 0 "
                     "here; export with ComputePrecision::Float32");
    }
  }
}

TensorValue zero_point_value(const MilQuantization& m) {
  if (m.dtype == DType::Int8) {
    return TensorValue::scalar_int8(static_cast<std::int8_t>(m.zero_point));
  }
  return TensorValue::scalar_uint8(static_cast<std::uint8_t>(m.zero_point));
}

Var dequantize(const ir::Node& node, const IntegerForm& form, LoweringContext& context) {
  const MilQuantization m = mil_quantization(form.qparams);
  Args args = {{"input", form.integer}, {"scale", context.float_scalar(form.qparams.scale)}};
  if (m.has_zero_point) args.push_back({"zero_point", zero_point_value(m)});
  return context.builder().add_op("dequantize", context.output_name(node), args,
                                  TensorType{context.float_dtype(), form.integer.type().shape});
}

// True when a flatten/reshape reading a value quantized with `qparams` can run on the integer
// tensor: its only reader requantizes with the same parameters.
bool folds_as_integer(const ir::Node& node, const ActivationQParams& qparams,
                      const ir::Graph& graph) {
  if (node.op != ir::Op::flatten && node.op != ir::Op::reshape) return false;
  const ir::ValueId out = node.outputs.at(0);
  if (graph.is_graph_output(out)) return false;
  const std::vector<size_t> readers = graph.consumers(out);
  if (readers.size() != 1) return false;
  const ir::Node& next = graph.nodes()[readers[0]];
  // Only a requantization with the very same parameters makes the float reshape redundant;
  // anything else would read [0, 1] as some other range (Appendix C item 1).
  return next.op == ir::Op::quantize_dequantize && ActivationQParams::of(next) == qparams;
}

}  // namespace

bool can_reshape_as_integer(const ir::Node& node, const LoweringContext& context) {
  const IntegerForm* form = context.integer_form(node.inputs.at(0));
  return form && folds_as_integer(node, form->qparams, context.graph());
}

void lower_quantize_dequantize(const ir::Node& node, LoweringContext& context) {
  const ActivationQParams qparams = ActivationQParams::of(node);
  check_qparams(node, qparams, context);
  const ir::Graph& graph = context.graph();
  const ir::ValueId in = node.inputs.at(0);
  const ir::ValueId out = node.outputs.at(0);
  // The dequantize is left out when every reader is a reshape that runs on the integers.
  bool needs_float = graph.is_graph_output(out);
  for (size_t reader : graph.consumers(out)) {
    needs_float = needs_float || !folds_as_integer(graph.nodes()[reader], qparams, graph);
  }

  IntegerForm form;
  if (const IntegerForm* known = context.integer_form(in); known && known->qparams == qparams) {
    form = *known;
    if (context.is_defined(in)) {
      // dequantize -> quantize with identical parameters is the identity (coremltools'
      // dequantize_quantize_pair_elimination): reuse the value.
      context.define(out, context.var(in));
      needs_float = false;
    }
  } else {
    const MilQuantization m = mil_quantization(qparams);
    const Var x = context.input(node);
    Args args = {{"input", x}, {"scale", context.float_scalar(qparams.scale)}};
    if (m.has_zero_point) args.push_back({"zero_point", zero_point_value(m)});
    args.push_back({"output_dtype", TensorValue::scalar_string(dtype_name(m.dtype))});
    const Var q = context.builder().add_op("quantize", context.helper_name(node, "quantized"),
                                           args, TensorType{m.dtype, x.type().shape});
    form = IntegerForm{q, qparams};
  }
  context.define_integer(out, form);
  if (needs_float) context.define(out, dequantize(node, form, context));
}

}  // namespace linquant::coreml::lowering
