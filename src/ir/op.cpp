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

// {name, inputs, weighted, activation, output rule, required attributes, reads any value};
// activations and their rules follow the coremltools backend config tables (reference 3.4).
constexpr std::array<Entry, 43> kOps{{
    {Op::conv,
     {"conv", 1, true, false, OQ::own_observer, "weight stride padding dilation groups", false}},
    {Op::conv_transpose,
     {"conv_transpose", 1, true, false, OQ::own_observer,
      "weight stride padding dilation groups output_padding", false}},
    {Op::linear, {"linear", 1, true, false, OQ::own_observer, "weight", false}},
    // Reference 3.4: a per-channel weight quantizer; indices and output are not observed.
    {Op::embedding,
     {"embedding", 1, true, false, OQ::not_quantized,
      "weight padding_idx scale_grad_by_freq sparse", false}},
    {Op::batch_norm,
     {"batch_norm", 1, false, false, OQ::own_observer, "running_mean running_var eps momentum",
      false}},
    {Op::layer_norm,
     {"layer_norm", 1, false, false, OQ::not_quantized, "normalized_shape eps", false}},
    {Op::relu, {"relu", 1, false, true, OQ::own_observer, "", false}},
    {Op::relu6, {"relu6", 1, false, true, OQ::own_observer, "", false}},
    {Op::leaky_relu, {"leaky_relu", 1, false, true, OQ::own_observer, "negative_slope", false}},
    {Op::hardswish, {"hardswish", 1, false, true, OQ::own_observer, "", false}},
    {Op::hardsigmoid, {"hardsigmoid", 1, false, true, OQ::fixed_qparams, "", false}},
    {Op::sigmoid, {"sigmoid", 1, false, true, OQ::fixed_qparams, "", false}},
    {Op::tanh, {"tanh", 1, false, true, OQ::fixed_qparams, "", false}},
    {Op::softmax, {"softmax", 1, false, true, OQ::fixed_qparams, "dim", false}},
    {Op::log_softmax, {"log_softmax", 1, false, true, OQ::own_observer, "dim", false}},
    {Op::gelu, {"gelu", 1, false, true, OQ::own_observer, "", false}},
    {Op::silu, {"silu", 1, false, true, OQ::own_observer, "", false}},
    {Op::elu, {"elu", 1, false, true, OQ::own_observer, "alpha", false}},
    {Op::max_pool,
     {"max_pool", 1, false, false, OQ::share_with_input,
      "kernel_size stride padding dilation ceil_mode", false}},
    {Op::avg_pool,
     {"avg_pool", 1, false, false, OQ::share_with_input,
      "kernel_size stride padding ceil_mode count_include_pad", false}},
    {Op::adaptive_avg_pool,
     {"adaptive_avg_pool", 1, false, false, OQ::share_with_input, "output_size", false}},
    {Op::mean, {"mean", 1, false, false, OQ::share_with_input, "dims keepdim", false}},
    {Op::flatten, {"flatten", 1, false, false, OQ::share_with_input, "start_dim end_dim", false}},
    {Op::reshape, {"reshape", 1, false, false, OQ::not_quantized, "shape", false}},
    {Op::permute, {"permute", 1, false, false, OQ::not_quantized, "dims", false}},
    {Op::transpose, {"transpose", 1, false, false, OQ::not_quantized, "dim0 dim1", false}},
    {Op::cat, {"cat", -1, false, false, OQ::share_with_input, "dim", false}},
    {Op::identity, {"identity", 1, false, false, OQ::share_with_input, "", false}},
    {Op::dropout, {"dropout", 1, false, false, OQ::not_quantized, "", false}},
    {Op::add, {"add", -1, false, false, OQ::own_observer, "", false}},
    {Op::sub, {"sub", -1, false, false, OQ::own_observer, "", false}},
    {Op::mul, {"mul", -1, false, false, OQ::own_observer, "", false}},
    {Op::div, {"div", -1, false, false, OQ::not_quantized, "", false}},
    {Op::matmul, {"matmul", 2, false, false, OQ::own_observer, "", false}},
    {Op::einsum, {"einsum", -1, false, false, OQ::own_observer, "equation", false}},
    {Op::fake_quantize, {"fake_quantize", 1, false, false, OQ::not_quantized, "quantizer", false}},
    {Op::quantize_dequantize,
     {"quantize_dequantize", 1, false, false, OQ::not_quantized,
      "scale zero_point quant_min quant_max", false}},
    {Op::float_module, {"float_module", -1, false, false, OQ::not_quantized, "module", true}},
    {Op::torch_op, {"torch_op", -1, false, false, OQ::not_quantized, "schema", true}},
    {Op::constant, {"constant", 0, false, false, OQ::not_quantized, "value", false}},
    {Op::model_tensor, {"model_tensor", 0, false, false, OQ::not_quantized, "tensor", false}},
    {Op::list, {"list", -1, false, false, OQ::not_quantized, "element_type", true}},
    {Op::unpack, {"unpack", 1, false, false, OQ::not_quantized, "", true}},
}};

}  // namespace

const OpInfo& op_info(Op op) {
  for (const Entry& entry : kOps) {
    if (entry.op == op) return entry.info;
  }
  return kOps[0].info;
}

const std::vector<Op>& all_ops() {
  static const std::vector<Op> ops = [] {
    std::vector<Op> all;
    for (const Entry& entry : kOps) all.push_back(entry.op);
    return all;
  }();
  return ops;
}

std::string to_string(Op op) { return op_info(op).name; }

std::optional<Op> parse_op(const std::string& name) {
  for (const Entry& entry : kOps) {
    if (name == entry.info.name) return entry.op;
  }
  return std::nullopt;
}

}  // namespace linquant::ir
