// The op table: spellings, arity and coremltools' output quantization rule per op.
#include "linquant/ir/op.h"

#include <array>

namespace linquant::ir {
namespace {

using OQ = OutputQuantization;

struct Entry {
  Op op;
  OpInfo info;
};

// {name, inputs, weighted, activation, output rule}; activations and their rules follow the
// coremltools backend config tables (reference section 3.4).
constexpr std::array<Entry, 42> kOps{{
    {Op::conv, {"conv", 1, true, false, OQ::own_observer}},
    {Op::conv_transpose, {"conv_transpose", 1, true, false, OQ::own_observer}},
    {Op::linear, {"linear", 1, true, false, OQ::own_observer}},
    // Reference 3.4: a per-channel weight quantizer; indices and output are not observed.
    {Op::embedding, {"embedding", 1, true, false, OQ::not_quantized}},
    {Op::batch_norm, {"batch_norm", 1, false, false, OQ::own_observer}},
    {Op::layer_norm, {"layer_norm", 1, false, false, OQ::not_quantized}},
    {Op::relu, {"relu", 1, false, true, OQ::own_observer}},
    {Op::relu6, {"relu6", 1, false, true, OQ::own_observer}},
    {Op::leaky_relu, {"leaky_relu", 1, false, true, OQ::own_observer}},
    {Op::hardswish, {"hardswish", 1, false, true, OQ::own_observer}},
    {Op::hardsigmoid, {"hardsigmoid", 1, false, true, OQ::fixed_qparams}},
    {Op::sigmoid, {"sigmoid", 1, false, true, OQ::fixed_qparams}},
    {Op::tanh, {"tanh", 1, false, true, OQ::fixed_qparams}},
    {Op::softmax, {"softmax", 1, false, true, OQ::fixed_qparams}},
    {Op::log_softmax, {"log_softmax", 1, false, true, OQ::own_observer}},
    {Op::gelu, {"gelu", 1, false, true, OQ::own_observer}},
    {Op::silu, {"silu", 1, false, true, OQ::own_observer}},
    {Op::elu, {"elu", 1, false, true, OQ::own_observer}},
    {Op::max_pool, {"max_pool", 1, false, false, OQ::share_with_input}},
    {Op::avg_pool, {"avg_pool", 1, false, false, OQ::share_with_input}},
    {Op::adaptive_avg_pool, {"adaptive_avg_pool", 1, false, false, OQ::share_with_input}},
    {Op::mean, {"mean", 1, false, false, OQ::share_with_input}},
    {Op::flatten, {"flatten", 1, false, false, OQ::share_with_input}},
    {Op::reshape, {"reshape", 1, false, false, OQ::not_quantized}},
    {Op::permute, {"permute", 1, false, false, OQ::not_quantized}},
    {Op::transpose, {"transpose", 1, false, false, OQ::not_quantized}},
    {Op::cat, {"cat", -1, false, false, OQ::share_with_input}},
    {Op::identity, {"identity", 1, false, false, OQ::share_with_input}},
    {Op::dropout, {"dropout", 1, false, false, OQ::not_quantized}},
    {Op::add, {"add", -1, false, false, OQ::own_observer}},
    {Op::sub, {"sub", -1, false, false, OQ::own_observer}},
    {Op::mul, {"mul", -1, false, false, OQ::own_observer}},
    {Op::div, {"div", -1, false, false, OQ::not_quantized}},
    {Op::matmul, {"matmul", 2, false, false, OQ::own_observer}},
    {Op::fake_quantize, {"fake_quantize", 1, false, false, OQ::not_quantized}},
    {Op::quantize_dequantize, {"quantize_dequantize", 1, false, false, OQ::not_quantized}},
    {Op::float_module, {"float_module", -1, false, false, OQ::not_quantized}},
    {Op::torch_op, {"torch_op", -1, false, false, OQ::not_quantized}},
    {Op::constant, {"constant", 0, false, false, OQ::not_quantized}},
    {Op::model_tensor, {"model_tensor", 0, false, false, OQ::not_quantized}},
    {Op::list, {"list", -1, false, false, OQ::not_quantized}},
    {Op::unpack, {"unpack", 1, false, false, OQ::not_quantized}},
}};

}  // namespace

const OpInfo& op_info(Op op) {
  for (const Entry& entry : kOps) {
    if (entry.op == op) return entry.info;
  }
  return kOps[0].info;
}

std::string to_string(Op op) { return op_info(op).name; }

std::optional<Op> parse_op(const std::string& name) {
  for (const Entry& entry : kOps) {
    if (name == entry.info.name) return entry.op;
  }
  return std::nullopt;
}

}  // namespace linquant::ir
