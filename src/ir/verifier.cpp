// Structural checks run after capture and after every pass, so a broken pass fails at once
// with the node it broke instead of deep inside a training step.
#include <set>
#include <vector>

#include "linquant/common/error.h"
#include "linquant/ir/graph.h"

namespace linquant::ir {
namespace {

// Attributes each op cannot run without.
std::vector<const char*> required_attributes(Op op) {
  switch (op) {
    case Op::conv: return {"weight", "stride", "padding", "dilation", "groups"};
    case Op::conv_transpose: return {"weight", "stride", "padding", "dilation", "groups", "output_padding"};
    case Op::linear: return {"weight"};
    case Op::embedding: return {"weight", "padding_idx", "scale_grad_by_freq", "sparse"};
    case Op::batch_norm: return {"running_mean", "running_var", "eps", "momentum"};
    case Op::layer_norm: return {"normalized_shape", "eps"};
    case Op::leaky_relu: return {"negative_slope"};
    case Op::softmax:
    case Op::log_softmax: return {"dim"};
    case Op::elu: return {"alpha"};
    case Op::max_pool: return {"kernel_size", "stride", "padding", "dilation", "ceil_mode"};
    case Op::avg_pool: return {"kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"};
    case Op::adaptive_avg_pool: return {"output_size"};
    case Op::mean: return {"dims", "keepdim"};
    case Op::flatten: return {"start_dim", "end_dim"};
    case Op::reshape: return {"shape"};
    case Op::permute: return {"dims"};
    case Op::transpose: return {"dim0", "dim1"};
    case Op::cat: return {"dim"};
    case Op::fake_quantize: return {"quantizer"};
    case Op::quantize_dequantize: return {"scale", "zero_point", "quant_min", "quant_max"};
    case Op::float_module: return {"module"};
    case Op::torch_op: return {"schema"};
    case Op::constant: return {"value"};
    case Op::model_tensor: return {"tensor"};
    case Op::list: return {"element_type"};
    default: return {};
  }
}

const std::vector<const char*> kTensorAttributes = {"weight", "bias", "running_mean",
                                                    "running_var", "tensor"};

// linquant's own ops compute on tensors; the generic and structural ops on anything.
bool reads_any_value(Op op) {
  return op == Op::torch_op || op == Op::list || op == Op::unpack || op == Op::float_module;
}

[[noreturn]] void fail(const Node& node, const std::string& problem) {
  throw Error("invalid graph at node '" + node.name + "' (" + to_string(node.op) + "): " +
              problem);
}

}  // namespace

void verify(const Graph& graph) {
  std::set<ValueId> defined(graph.inputs().begin(), graph.inputs().end());
  std::set<std::string> names;
  for (const Node& node : graph.nodes()) {
    if (!names.insert(node.name).second) fail(node, "the node name is used twice");
    const OpInfo& info = op_info(node.op);
    const bool binary_with_scalar = node.inputs.size() == 1 && node.attrs.has("scalar");
    if (info.num_inputs >= 0 && static_cast<int>(node.inputs.size()) != info.num_inputs) {
      fail(node, "expects " + std::to_string(info.num_inputs) + " inputs, has " +
                     std::to_string(node.inputs.size()));
    }
    if (info.num_inputs < 0 && node.inputs.empty() && !reads_any_value(node.op)) {
      fail(node, "has no inputs");
    }
    const bool binary = node.op == Op::add || node.op == Op::sub || node.op == Op::mul ||
                        node.op == Op::div;
    if (binary && node.inputs.size() != 2 && !binary_with_scalar) {
      fail(node, "needs two tensor inputs, or one and a 'scalar' attribute");
    }
    for (ValueId input : node.inputs) {
      if (!defined.count(input)) {
        fail(node, "reads %" + graph.value(input).name + " before it is defined");
      }
      if (!reads_any_value(node.op) && graph.value(input).type != ValueType::tensor) {
        fail(node, "reads %" + graph.value(input).name + ", which is not a tensor");
      }
    }
    for (const char* key : required_attributes(node.op)) {
      if (!node.attrs.has(key)) fail(node, std::string("is missing attribute '") + key + "'");
    }
    for (const char* key : kTensorAttributes) {
      if (node.attrs.has(key) && !graph.has_tensor(node.attrs.s(key))) {
        fail(node, std::string("attribute '") + key + "' names the unknown tensor '" +
                       node.attrs.s(key) + "'");
      }
    }
    for (const char* key : {"quantizer", "weight_quantizer"}) {
      if (node.attrs.has(key) && !graph.quantizers().count(node.attrs.s(key))) {
        fail(node, std::string("attribute '") + key + "' names the unknown quantizer '" +
                       node.attrs.s(key) + "'");
      }
    }
    for (ValueId output : node.outputs) {
      if (!defined.insert(output).second) fail(node, "redefines a value");
    }
  }
  for (ValueId output : graph.outputs()) {
    if (!defined.count(output)) {
      throw Error("invalid graph: output %" + graph.value(output).name + " is never defined");
    }
  }
}

}  // namespace linquant::ir
