// Data movement: flatten and reshape (to the recorded output shape, so 0 and -1 entries never
// reach Core ML), permute and transpose (MIL transpose), cat (concat), and the ops that vanish
// (identity, dropout in inference).
//
// A flatten/reshape between two quantizers with identical parameters runs on the integer
// tensor (quantize -> reshape -> dequantize), as coremltools' int_op_canonicalization does;
// with different parameters the float reshape stays between the two pairs (Appendix C 1).
#include <numeric>

#include "lowering.h"

namespace linquant::coreml::lowering {
namespace {

std::vector<int32_t> shape_param(const ir::Node& node, const Shape& shape) {
  return to_int32(node, shape);
}

Var reshape(const ir::Node& node, LoweringContext& context) {
  const ir::ValueId out = node.outputs.at(0);
  const Shape& shape = context.shape(out);
  if (can_reshape_as_integer(node, context)) {
    const IntegerForm form = *context.integer_form(node.inputs.at(0));
    const Var r = context.builder().add_op(
        "reshape", context.output_name(node),
        {{"x", form.integer}, {"shape", TensorValue::int32_list(shape_param(node, shape))}},
        TensorType{form.integer.type().dtype, shape});
    context.define_integer(out, IntegerForm{r, form.qparams});
    return Var();  // no float value: the following quantize_dequantize dequantizes r
  }
  return context.builder().add_op(
      "reshape", context.output_name(node),
      {{"x", context.input(node)}, {"shape", TensorValue::int32_list(shape_param(node, shape))}},
      context.output_type(node));
}

Var transpose(const ir::Node& node, LoweringContext& context) {
  const Var x = context.input(node);
  const size_t rank = x.type().rank();
  std::vector<int32_t> perm;
  if (node.op == ir::Op::permute) {
    const std::vector<int64_t>& dims = node.attrs.ints("dims");
    if (dims.size() != rank) fail(node, "permute dims do not match the input rank");
    for (int64_t d : dims) perm.push_back(static_cast<int32_t>(normalize_axis(node, d, rank)));
  } else {
    perm.resize(rank);
    std::iota(perm.begin(), perm.end(), 0);
    std::swap(perm[static_cast<size_t>(normalize_axis(node, node.attrs.i("dim0"), rank))],
              perm[static_cast<size_t>(normalize_axis(node, node.attrs.i("dim1"), rank))]);
  }
  return context.builder().add_op("transpose", context.output_name(node),
                                  {{"x", x}, {"perm", TensorValue::int32_list(perm)}},
                                  context.output_type(node));
}

Var concat(const ir::Node& node, LoweringContext& context) {
  std::vector<Var> values;
  for (size_t k = 0; k < node.inputs.size(); ++k) values.push_back(context.input(node, k));
  if (values.empty()) fail(node, "cat of no tensors");
  const size_t rank = values[0].type().rank();
  const auto axis = static_cast<int32_t>(normalize_axis(node, node.attrs.i("dim"), rank));
  return context.builder().add_op("concat", context.output_name(node),
                                  {{"values", values},
                                   {"axis", TensorValue::scalar_int32(axis)},
                                   {"interleave", TensorValue::scalar_bool(false)}},
                                  context.output_type(node));
}

}  // namespace

void lower_shape_op(const ir::Node& node, LoweringContext& context) {
  switch (node.op) {
    case ir::Op::flatten:
    case ir::Op::reshape: {
      const Var y = reshape(node, context);
      if (!y.name().empty()) context.define(node.outputs[0], y);
      return;
    }
    case ir::Op::permute:
    case ir::Op::transpose: return context.define(node.outputs[0], transpose(node, context));
    case ir::Op::cat: return context.define(node.outputs[0], concat(node, context));
    default: fail(node, "internal error: not a shape op");
  }
}

void lower_passthrough(const ir::Node& node, LoweringContext& context) {
  // identity, and dropout: an exported model runs inference, where dropout is the identity.
  const ir::ValueId in = node.inputs.at(0);
  context.define(node.outputs.at(0), context.input(node));
  if (const IntegerForm* form = context.integer_form(in)) {
    context.define_integer(node.outputs.at(0), *form);
  }
}

}  // namespace linquant::coreml::lowering
